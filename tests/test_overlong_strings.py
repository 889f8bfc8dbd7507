"""Upstream strings of any length fit their columns (issue 13 item 5): with KOT codes and
SenseLink job numbers of 65 and 1,000 characters (the sandbox's overlong mode) a run ends
PARTIAL with its per-employee errors saved (codes cut with "…") and the punches that landed
counted — on PostgreSQL, which refuses an over-long value, as on SQLite, which never checks."""

from __future__ import annotations

from collections import Counter

import pytest

from integrations.fields import fit
from integrations.models import SyncError, SyncRun
from tests.sync_world import DAY, configure, run_now

pytestmark = pytest.mark.django_db

LENGTHS = [65, 1000]


def test_fit_cuts_with_a_marker_only_when_needed():
    assert fit("0042", 64) == "0042"
    assert fit("x" * 64, 64) == "x" * 64
    cut = fit("y" * 65, 64)
    assert len(cut) == 64 and cut == "y" * 63 + "…"


def test_an_overlong_value_is_stored_cut_by_save_bulk_create_and_update(world):
    run = SyncRun.objects.create(tenant=world.acme, kind="attendance", trigger="manual")
    long_code = "Q" * 1000
    SyncError.objects.create(run=run, employee_code=long_code, code="c" * 80, message="m")
    SyncError.objects.bulk_create(
        [SyncError(run=run, employee_code=long_code, code="x", message="m")]
    )
    SyncError.objects.filter(run=run).update(employee_code="R" * 300)
    stored = list(SyncError.objects.filter(run=run).values_list("employee_code", "code"))
    assert stored == [("R" * 63 + "…", "c" * 63 + "…"), ("R" * 63 + "…", "x")]


@pytest.mark.parametrize("length", LENGTHS)
def test_attendance_with_overlong_codes_ends_partial_and_counts_what_landed(world, length):
    sandbox = world.sandbox
    codes = sandbox.make_overlong(length)
    assert all(len(code) == length for code in codes)
    records = sandbox.senselink.records_for(DAY)
    long_unknown = sandbox.senselink.extra_job_numbers[0]
    assert len(long_unknown) == length and any(r["job_number"] == long_unknown for r in records)

    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)

    assert run.status == SyncRun.Status.PARTIAL, (run.status, run.message)
    assert run.error_type == SyncRun.ErrorType.NONE
    # Every punch that landed in KOT is counted, each once.
    held = Counter((p["employeeKey"], p["code"]) for p in sandbox.kot.punches)
    assert held and max(held.values()) == 1
    assert run.created_count == sum(held.values())
    # The employees with overlong KOT codes were matched by their (equally long) job numbers.
    recognised = {r["job_number"] for r in records} & set(codes)
    for code in recognised:
        key = sandbox.kot.employee_by_code(code)["key"]
        assert (key, "1") in held, f"the punch of {code[:10]}… did not land"
    # The unknown, overlong job number is a per-employee error, saved cut with the marker.
    unknown = run.errors.get(code="unknown_employee", employee_code__startswith="Z")
    assert unknown.employee_code == long_unknown[:63] + "…"
    assert run.failed_count >= 1


@pytest.mark.parametrize("length", LENGTHS)
def test_employee_sync_with_overlong_codes_ends_partial_with_errors_saved(world, length):
    sandbox = world.sandbox
    codes = sandbox.make_overlong(length)
    configure(world.acme, creation_guard_count=1000)  # a first sync creates everybody

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.PARTIAL, (run.status, run.message)
    assert run.error_type == SyncRun.ErrorType.NONE
    created = [p for p in sandbox.senselink.persons.values() if p["id"] >= 10001]
    assert run.created_count == len(created) > 0
    failed = run.errors.filter(severity=SyncError.Severity.ERROR).exclude(employee_code="")
    long_ones = [e for e in failed if e.employee_code.endswith("…")]
    assert long_ones, [e.employee_code for e in failed]
    for error in long_ones:
        assert len(error.employee_code) == 64
        assert any(code.startswith(error.employee_code[:-1]) for code in codes)
    # Nobody was created with a job number SenseLink cannot hold.
    assert not any(len(p.get("job_number") or "") > 45 for p in sandbox.senselink.persons.values())
