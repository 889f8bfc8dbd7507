"""The sandbox's other readings of SenseLink (connectors/sandbox/senselink.py READINGS), at the
HTTP level: each switch does what its description says, and nothing else."""

from __future__ import annotations

import hashlib
import time
from io import StringIO

import pytest
import requests

from connectors.sandbox import READINGS, start_sandbox


def signed(sb) -> dict:
    ts = str(int(time.time() * 1000))
    return {
        "app_key": sb.app_key,
        "timestamp": ts,
        "sign": hashlib.md5(f"{ts}#{sb.app_secret}".encode()).hexdigest(),
    }


def sl(sb, path, method="GET", params=None, files=None):
    return requests.request(
        method,
        sb.senselink_url + path,
        params={**signed(sb), **(params or {})},
        files=files,
        timeout=5,
    ).json()


def create(sb, **fields):
    return sl(sb, "api/v1/user", "POST", files={k: (None, v) for k, v in fields.items()})


def test_every_reading_is_a_valid_set_of_switches():
    with start_sandbox() as sb:
        for name in READINGS:
            sb.senselink.apply_reading(name)
    with pytest.raises(ValueError, match="unknown SenseLink reading"):
        start_sandbox(senselink="no-such-reading")
    with pytest.raises(ValueError, match="bad value"):
        start_sandbox(senselink={"update_mode": "sometimes"})


def test_the_group_list_answers_data_data_newest_first(sandbox):
    body = sl(sandbox, "api/v1/group", params={"page": 1, "size": 2})
    assert body["code"] == 200
    assert [g["id"] for g in body["data"]["data"]] == [3, 2]
    assert body["data"]["total"] == 3 and body["data"]["page_size"] == 2


@pytest.mark.parametrize(
    ("answer", "check"),
    [
        ("person", lambda data: isinstance(data, dict) and data["job_number"] == "0042"),
        ("id", lambda data: isinstance(data, int)),
        ("null", lambda data: data is None),
        ("true", lambda data: data is True),
    ],
)
def test_create_answers(sandbox, answer, check):
    sandbox.senselink.configure(create_answer=answer)
    body = create(sandbox, name="山田", jobNumber="0042")
    assert body["code"] == 200 and check(body["data"])
    assert "0042" in sandbox.senselink.persons_by_job_number()


def test_an_unknown_group_is_param_invalid(sandbox):
    assert create(sandbox, name="山田", groups="99")["code"] == 30001


@pytest.mark.parametrize("sandbox", ["update-replaces"], indirect=True)
def test_a_replacing_update_clears_what_was_not_sent_the_photo_included(sandbox):
    person = sandbox.senselink.add_person(
        name="山田", job_number="0042", groups=[1], avatar="/a.jpg", remark="受付", mail="a@b.jp"
    )
    body = sl(
        sandbox, f"api/v1/user/update/{person['id']}", "POST", files={"mail": (None, "c@d.jp")}
    )
    stored = sandbox.senselink.persons[person["id"]]
    assert body["code"] == 200 and stored["mail"] == "c@d.jp"
    assert (stored["avatar"], stored["groups"], stored["remark"], stored["job_number"]) == (
        None,
        [],
        None,
        None,
    )


@pytest.mark.parametrize("sandbox", ["update-unsupported"], indirect=True)
def test_an_unsupported_update_is_a_404(sandbox):
    response = requests.post(
        sandbox.senselink_url + "api/v1/user/update/1",
        params=signed(sandbox),
        files={"name": (None, "x")},
        timeout=5,
    )
    assert response.status_code == 404


@pytest.mark.parametrize("sandbox", ["strict-fields"], indirect=True)
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "山田", "mail": ""}, 30001),
        ({"name": "山田", "birthday": ""}, 30001),
        ({"name": "山田", "position": "部長"}, 30001),  # a field this sandbox does not know
        ({"name": "山田", "jobNumber": "", "remark": ""}, 200),  # "" allowed by the manual
    ],
)
def test_strict_fields_refuse_empty_strings_the_manual_does_not_allow(sandbox, fields, code):
    assert create(sandbox, **fields)["code"] == code


@pytest.mark.parametrize("sandbox", ["persons-camelcase"], indirect=True)
def test_persons_listed_in_camel_case(sandbox):
    [first, *_] = sl(sandbox, "api/v1/user/list", params={"type": 1})["data"]["list"]
    assert "jobNumber" in first and "job_number" not in first


@pytest.mark.parametrize("sandbox", ["persons-without-job-number"], indirect=True)
def test_persons_listed_without_job_number(sandbox):
    persons = sl(sandbox, "api/v1/user/list", params={"type": 1})["data"]["list"]
    assert persons and all("job_number" not in p and "jobNumber" not in p for p in persons)


@pytest.mark.parametrize("sandbox", ["key-limited"], indirect=True)
def test_a_limited_key_is_refused_the_other_apis(sandbox):
    assert sl(sandbox, "api/v3/server/version")["code"] == 10010
    assert sl(sandbox, "api/v1/group")["code"] == 10010
    assert sl(sandbox, "api/v1/user/list", params={"type": 1})["code"] == 200


@pytest.mark.parametrize("sandbox", ["pages-ignored"], indirect=True)
def test_pages_ignored_answers_the_first_page_again(sandbox):
    for n in range(150):
        sandbox.senselink.add_person(name=f"x{n}", job_number=f"X{n}")
    one = sl(sandbox, "api/v1/user/list", params={"page": 1, "size": 100})["data"]["list"]
    two = sl(sandbox, "api/v1/user/list", params={"page": 2, "size": 100})["data"]["list"]
    assert {p["id"] for p in one} == {p["id"] for p in two} and len(two) == 100


def test_the_person_forms_received_are_kept(sandbox):
    create(sandbox, name="山田", jobNumber="0042")
    assert sandbox.senselink.received_forms == [
        ("create", [("name", "山田"), ("jobNumber", "0042")])
    ]


def test_the_command_takes_readings(monkeypatch):
    from django.core.management import call_command

    from integrations.management.commands import sandbox as command

    started = {}

    def fake_wait(self):
        started["readings"] = (self.sb.senselink.update_mode, self.sb.senselink.page_size_cap)

    real_print = command.Command._print

    def keep(self, sb):
        self.sb = sb
        real_print(self, sb)

    monkeypatch.setattr(command.Command, "_print", keep)
    monkeypatch.setattr(command.Command, "_wait", fake_wait)
    out = StringIO()
    call_command(
        "sandbox",
        "--kot-port",
        "0",
        "--senselink-port",
        "0",
        "--senselink-reading",
        "update-replaces",
        "--senselink-reading",
        "clamped-pages",
        stdout=out,
    )
    assert started["readings"] == ("replace", 50)
    assert "SenseLink readings: update-replaces, clamped-pages" in out.getvalue()
