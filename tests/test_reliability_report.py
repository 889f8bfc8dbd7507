"""Test runs write the reliability report's sections as untracked fragments; only `make reports`
(``python -m tests.fault_matrix_report``) writes docs/RELIABILITY.md, from those fragments."""

from __future__ import annotations

import pytest

from tests import fault_matrix_report as report

DOCUMENT = (
    report.PREAMBLE
    + "\n<!-- section:alpha -->\n## Alpha\n\nold alpha\n<!-- /section:alpha -->\n"
    + "\n<!-- section:beta -->\n## Beta\n\nold beta\n<!-- /section:beta -->\n"
)


@pytest.fixture
def fragments(tmp_path, monkeypatch):
    directory = tmp_path / "reports"
    monkeypatch.setattr(report, "FRAGMENTS_DIR", directory)
    return directory


def test_a_section_goes_to_a_fragment_and_the_tracked_document_is_left_alone(fragments):
    tracked = report.REPORT_PATH.read_bytes()

    report.write_section("alpha", "## Alpha\n\nnew alpha\n")

    assert report.REPORT_PATH.read_bytes() == tracked
    assert (fragments / "alpha.md").read_text() == "## Alpha\n\nnew alpha\n"
    assert report.read_section("alpha") == "## Alpha\n\nnew alpha"  # the newest text wins


def test_without_a_fragment_a_section_reads_as_committed(fragments):
    committed = report.read_section("fault-matrix")
    assert committed.startswith("## The fault matrix")


def test_a_section_name_is_a_plain_file_name(fragments):
    with pytest.raises(ValueError):
        report.write_section("../docs/RELIABILITY", "## x")


def test_reports_replace_sections_in_place_keep_the_rest_and_append_new_ones(tmp_path, fragments):
    document = tmp_path / "RELIABILITY.md"
    document.write_text(DOCUMENT)
    report.write_section("beta", "## Beta\n\nnew beta")
    report.write_section("gamma", "## Gamma\n\nnew gamma")

    lines = report.assemble(report=document, fragments=fragments)

    text = document.read_text()
    assert "old alpha" in text and "old beta" not in text
    assert text.index("new beta") < text.index("new gamma")  # beta stays where it was
    assert text.endswith("new gamma\n<!-- /section:gamma -->\n")
    assert report._section_of(text, "beta") == "## Beta\n\nnew beta"
    assert lines[0].startswith("alpha: kept as committed")
    assert lines[1].startswith("beta: from") and lines[2].startswith("gamma: from")
    report.assemble(report=document, fragments=fragments)
    assert document.read_text() == text  # assembling twice changes nothing


def test_the_reports_command_prints_where_each_section_came_from(
    tmp_path, fragments, monkeypatch, capsys
):
    document = tmp_path / "RELIABILITY.md"
    document.write_text(DOCUMENT)
    monkeypatch.setattr(report, "REPORT_PATH", document)
    report.write_section("beta", "## Beta\n\nnew beta")

    assert report.main(["--print"]) == 0

    out = capsys.readouterr().out
    assert "- alpha: kept as committed" in out
    assert "- beta: from" in out
    assert out.rstrip().endswith("new beta\n<!-- /section:beta -->")
