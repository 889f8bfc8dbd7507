"""The sandbox's fake KOT and SenseLink servers, exercised over loopback HTTP with plain requests."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.clock import JST
from connectors.sandbox import start_sandbox

ALL_FIELDS = (
    "hiredDate,birthDate,resignationDate,emailAddresses,lastNamePhonetics,firstNamePhonetics"
)


@pytest.fixture(autouse=True)
def _noon(request):
    """Pin KOT's clock at 12:00 JST so no test meets a forbidden window by chance."""
    if "sandbox" in request.fixturenames:
        sb = request.getfixturevalue("sandbox")
        sb.clock.set(datetime.combine(sb.day, datetime.min.time(), JST).replace(hour=12))


# --- helpers -------------------------------------------------------------------------------------
def kot(sb, path, method="GET", token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token or sb.kot_token}"}
    return requests.request(method, sb.kot_url + path, headers=headers, timeout=5, **kwargs)


def signature(sb, *, timestamp=None, app_key=None, secret=None):
    ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
    digest = hashlib.md5(f"{ts}#{secret or sb.app_secret}".encode()).hexdigest()
    return {"app_key": app_key or sb.app_key, "timestamp": ts, "sign": digest}


def sl(sb, path, method="GET", params=None, files=None, signed=None, **kwargs):
    query = {**(signed or signature(sb)), **(params or {})}
    return requests.request(
        method, sb.senselink_url + path, params=query, files=files, timeout=5, **kwargs
    )


def form(**fields):
    """A multipart body the way requests builds one for plain fields."""
    return {name: (None, value) for name, value in fields.items()}


def records_query(sb, day, page=1, size=100, **extra):
    params = {
        "date_time_from": f"{day} 00:00:00",
        "date_time_to": f"{day} 23:59:59",
        "page": page,
        "size": size,
        **extra,
    }
    return sl(sb, "api/v5/record/list", params=params)


def punch(sb, key, when, code=1, day=None):
    body = {"date": (day or when.date()).isoformat(), "time": when.isoformat(), "code": code}
    return kot(sb, f"/daily-workings/timerecord/{key}", "POST", json=body)


def at(sb, hour, minute=0, second=0):
    return datetime(sb.day.year, sb.day.month, sb.day.day, hour, minute, second, tzinfo=JST)


# --- KOT: authentication and forbidden windows ---------------------------------------------------
def test_kot_rejects_missing_or_wrong_bearer_token(sandbox):
    missing = requests.get(sandbox.kot_url + "/employees", timeout=5)
    wrong = kot(sandbox, "/employees", token="nope")
    for response in (missing, wrong):
        assert response.status_code == 403
        assert response.json() == {"errors": [{"message": "認証に失敗しました", "code": 100}]}
    assert kot(sandbox, "/employees").status_code == 200


def test_kot_token_available_checks_header_and_path_token(sandbox):
    ok = kot(sandbox, f"/tokens/{sandbox.kot_token}/available")
    assert ok.status_code == 200 and ok.json() == {"available": True}
    assert kot(sandbox, "/tokens/other/available").json() == {"available": False}
    no_header = requests.get(f"{sandbox.kot_url}/tokens/{sandbox.kot_token}/available", timeout=5)
    assert no_header.status_code == 403


def test_kot_ip_allow_list(sandbox):
    sandbox.kot.allowed_ips = {"10.1.2.3"}
    assert kot(sandbox, "/divisions").json()["errors"][0]["code"] == 100
    sandbox.kot.allowed_ips = {"127.0.0.1"}
    assert kot(sandbox, "/divisions").status_code == 200


@pytest.mark.parametrize(
    ("hour", "minute", "forbidden"),
    [
        (8, 29, False),
        (8, 30, True),
        (9, 59, True),
        (10, 0, False),
        (17, 30, True),
        (18, 29, True),
        (18, 30, False),
    ],
)
def test_kot_forbidden_window_edges(sandbox, hour, minute, forbidden):
    sandbox.clock.set(at(sandbox, hour, minute))
    response = kot(sandbox, "/divisions")
    if forbidden:
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == 104
        assert "08:30 ~ 10:00, 17:30 ~ 18:30" in response.json()["errors"][0]["message"]
    else:
        assert response.status_code == 200


def test_kot_forbidden_window_uses_tokyo_time_whatever_the_clock_zone(sandbox):
    sandbox.clock.set(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))  # 09:00 JST
    assert kot(sandbox, "/employees").json()["errors"][0]["code"] == 104
    sandbox.clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # 12:00 JST
    assert kot(sandbox, "/employees").status_code == 200


def test_kot_forbidden_window_still_allows_token_check_and_punches(sandbox):
    sandbox.clock.set(at(sandbox, 9, 0))
    key = sandbox.kot.employees[0]["key"]
    for path in (
        "/employees",
        "/employees/1001",
        "/divisions",
        f"/daily-workings/timerecord?start={sandbox.day}&end={sandbox.day}",
    ):
        assert kot(sandbox, path).json()["errors"][0]["code"] == 104, path
    assert kot(sandbox, f"/tokens/{sandbox.kot_token}/available").json() == {"available": True}
    assert punch(sandbox, key, at(sandbox, 8, 57)).status_code == 201
    sandbox.clock.clear()
    assert sandbox.clock.now().tzinfo is not None


# --- KOT: employees and divisions ----------------------------------------------------------------
def test_kot_employees_never_send_null_and_only_requested_fields(sandbox):
    plain = kot(sandbox, "/employees").json()
    assert plain and all("hiredDate" not in e and "emailAddresses" not in e for e in plain)
    assert {"key", "code", "lastName", "firstName", "divisionCode", "divisionName"} <= set(plain[0])

    some = kot(
        sandbox, "/employees", params={"additionalFields": "hiredDate,emailAddresses"}
    ).json()
    assert all("hiredDate" in e for e in some)
    assert not any({"birthDate", "resignationDate", "lastNamePhonetics"} & set(e) for e in some)

    full = kot(
        sandbox, "/employees", params={"additionalFields": ALL_FIELDS, "includeResigner": "true"}
    )
    assert "null" not in full.text
    employees = full.json()
    assert any("birthDate" not in e for e in employees)
    assert any("emailAddresses" not in e for e in employees)
    assert any(len(e.get("emailAddresses", [])) == 2 for e in employees)
    assert all(e["hiredDate"] for e in employees)


def test_kot_employees_leave_out_resigners_unless_asked(sandbox):
    day = sandbox.day.isoformat()
    params = {"additionalFields": "resignationDate", "date": day}
    active = kot(sandbox, "/employees", params=params).json()
    everyone = kot(sandbox, "/employees", params={**params, "includeResigner": "true"}).json()
    resigned = [e for e in everyone if e.get("resignationDate", "9999") < day]
    assert resigned, "the generated data has employees who resigned"
    assert len(everyone) == len(sandbox.kot.employees) == len(active) + len(resigned)
    assert not {e["key"] for e in resigned} & {e["key"] for e in active}
    # as of a date before someone resigned, they are still listed
    earliest = min(resigned, key=lambda e: e["resignationDate"])
    before = (
        (datetime.fromisoformat(earliest["resignationDate"]) - timedelta(days=1)).date().isoformat()
    )
    as_of_before = kot(sandbox, "/employees", params={"date": before}).json()
    assert earliest["key"] in {e["key"] for e in as_of_before}


def test_kot_employees_by_division_and_bad_date(sandbox):
    osaka = kot(sandbox, "/employees", params={"division": "200"}).json()
    assert osaka and {e["divisionName"] for e in osaka} == {"大阪支社"}
    bad = kot(sandbox, "/employees", params={"date": "2026-13-01"})
    assert bad.status_code == 400 and "errors" in bad.json()


def test_kot_employee_by_code_keeps_leading_zeros(sandbox):
    codes = [e["code"] for e in sandbox.kot.employees]
    assert any(c.startswith("0") for c in codes) and any(c[0].isalpha() for c in codes)
    zero = next(c for c in codes if c.startswith("0"))
    one = kot(sandbox, f"/employees/{zero}", params={"additionalFields": "hiredDate"})
    assert one.status_code == 200 and one.json()["code"] == zero and "hiredDate" in one.json()
    missing = kot(sandbox, "/employees/NOPE-1")
    assert missing.status_code == 400
    assert isinstance(missing.json()["errors"][0]["code"], int)


def test_kot_divisions(sandbox):
    divisions = kot(sandbox, "/divisions").json()
    assert [d["name"] for d in divisions] == ["本社", "大阪支社"]
    assert all(d["dayBorderTime"] == "00:00" for d in divisions)
    sandbox.kot.set_day_border("200", "05:00")
    sandbox.kot.set_day_border("300", "04:30", name="夜勤センター")
    borders = {d["code"]: d["dayBorderTime"] for d in kot(sandbox, "/divisions").json()}
    assert borders == {"100": "00:00", "200": "05:00", "300": "04:30"}


def test_kot_state_helpers(sandbox):
    sandbox.kot.remove_all_employees()
    assert kot(sandbox, "/employees").json() == []
    added = sandbox.kot.add_employee(
        code="0042", last_name="山田", first_name="太郎", birthDate=None
    )
    listed = kot(sandbox, "/employees", params={"additionalFields": "birthDate,hiredDate"}).json()
    assert listed == [{k: v for k, v in added.items() if k != "resignationDate"}]
    assert sandbox.kot.employee_by_code("0042")["key"] == added["key"]


# --- KOT: time records ---------------------------------------------------------------------------
def test_kot_punch_is_created_with_string_code_and_normalised_time(sandbox):
    employee = sandbox.kot.employees[0]
    when = at(sandbox, 8, 57, 3).astimezone(UTC)  # sent in UTC, stored as +09:00
    response = punch(sandbox, employee["key"], when, code=1, day=sandbox.day)
    assert response.status_code == 201
    expected_time = f"{sandbox.day}T08:57:03+09:00"
    assert response.json() == {
        "date": sandbox.day.isoformat(),
        "employeeKey": employee["key"],
        "timeRecord": {
            "time": expected_time,
            "code": "1",
            "name": "出勤",
            "divisionCode": employee["divisionCode"],
            "divisionName": employee["divisionName"],
        },
    }
    out = punch(sandbox, employee["key"], at(sandbox, 18, 2), code="2")
    assert out.json()["timeRecord"]["code"] == "2" and out.json()["timeRecord"]["name"] == "退勤"


def test_kot_duplicate_punches_are_stored_twice_and_read_back(sandbox):
    key = sandbox.kot.employees[1]["key"]
    for _ in range(2):
        assert punch(sandbox, key, at(sandbox, 9, 1)).status_code == 201
    assert len(sandbox.kot.punches_for(key, sandbox.day)) == 2
    days = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": sandbox.day, "end": sandbox.day, "employeeKeys": key},
    ).json()
    assert len(days) == 1 and days[0]["date"] == sandbox.day.isoformat()
    (working,) = days[0]["dailyWorkings"]
    assert working["employeeKey"] == key
    assert [r["code"] for r in working["timeRecord"]] == ["1", "1"]


@pytest.mark.parametrize(
    "body",
    [
        {"date": "2026-11-24", "time": "2026-11-24T08:57:03", "code": 1},  # no offset
        {"date": "2026-11-24", "time": "08:57", "code": 1},
        {"date": "24/11/2026", "time": "2026-11-24T08:57:03+09:00", "code": 1},
        {"date": "2026-11-24", "time": "2026-11-24T08:57:03+09:00", "code": 7},
        {"date": "2026-11-24", "time": "2026-11-24T08:57:03+09:00", "code": [1]},
    ],
)
def test_kot_punch_validation(sandbox, body):
    key = sandbox.kot.employees[0]["key"]
    response = kot(sandbox, f"/daily-workings/timerecord/{key}", "POST", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]
    assert sandbox.kot.punches == []


def test_kot_punch_for_unknown_employee_is_400(sandbox):
    assert punch(sandbox, "f" * 32, at(sandbox, 9, 0)).status_code == 400


def test_kot_timerecord_read_covers_each_date_and_empty_employees(sandbox):
    keys = [e["key"] for e in sandbox.kot.employees[:3]]
    start = sandbox.day - timedelta(days=2)
    punch(sandbox, keys[0], at(sandbox, 9, 0))
    days = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": start, "end": sandbox.day, "employeeKeys": ",".join(keys)},
    ).json()
    assert [d["date"] for d in days] == [(start + timedelta(days=n)).isoformat() for n in range(3)]
    assert all([w["employeeKey"] for w in d["dailyWorkings"]] == keys for d in days)
    assert days[0]["dailyWorkings"][0]["timeRecord"] == []
    assert len(days[2]["dailyWorkings"][0]["timeRecord"]) == 1
    assert days[2]["dailyWorkings"][1]["timeRecord"] == []


def test_kot_timerecord_read_by_division(sandbox):
    days = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": sandbox.day, "end": sandbox.day, "division": "200"},
    ).json()
    osaka = {e["key"] for e in sandbox.kot.employees if e["divisionCode"] == "200"}
    assert {w["employeeKey"] for w in days[0]["dailyWorkings"]} == osaka


def test_kot_timerecord_read_limits_the_span_to_62_days(sandbox):
    key = sandbox.kot.employees[0]["key"]
    start = sandbox.day - timedelta(days=61)
    ok = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": start, "end": sandbox.day, "employeeKeys": key},
    )
    assert ok.status_code == 200 and len(ok.json()) == 62
    too_long = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": start - timedelta(days=1), "end": sandbox.day, "employeeKeys": key},
    )
    assert too_long.status_code == 400
    (error,) = too_long.json()["errors"]
    assert error["message"] and isinstance(error["code"], int)
    backwards = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": sandbox.day, "end": start, "employeeKeys": key},
    )
    assert backwards.status_code == 400


def test_kot_timerecord_read_rejects_unknown_keys_and_overlong_urls(sandbox):
    unknown = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": sandbox.day, "end": sandbox.day, "employeeKeys": "zzz"},
    )
    assert unknown.status_code == 400
    many = ",".join(["0" * 32] * 300)
    too_long = kot(
        sandbox,
        "/daily-workings/timerecord",
        params={"start": sandbox.day, "end": sandbox.day, "employeeKeys": many},
    )
    assert too_long.status_code == 414


# --- SenseLink: signature -----------------------------------------------------------------------
def test_senselink_version_with_a_good_signature(sandbox):
    response = sl(sandbox, "api/v3/server/version")
    assert response.status_code == 200
    assert response.json() == {"code": 200, "message": "OK", "data": "5.6.1"}


@pytest.mark.parametrize(
    ("signed", "code", "message"),
    [
        (lambda sb: signature(sb, secret="wrong"), 10003, "sign error"),
        (lambda sb: {**signature(sb), "sign": signature(sb)["sign"].upper()}, 10003, "sign error"),
        (lambda sb: {k: v for k, v in signature(sb).items() if k != "sign"}, 10003, "sign error"),
        (lambda sb: signature(sb, app_key="someone-else"), 10004, "app key not exist"),
        (
            lambda sb: {k: v for k, v in signature(sb).items() if k != "app_key"},
            10004,
            "app key not exist",
        ),
        (
            lambda sb: signature(sb, timestamp=int(time.time() * 1000) - 301_000),
            10005,
            "timestamp expired",
        ),
        (
            lambda sb: signature(sb, timestamp=int(time.time() * 1000) + 301_000),
            10005,
            "timestamp expired",
        ),
        (
            lambda sb: signature(sb, timestamp=int(time.time())),
            10005,
            "timestamp expired",
        ),  # seconds, not ms
    ],
)
def test_senselink_rejects_bad_signatures_with_an_envelope(sandbox, signed, code, message):
    response = sl(sandbox, "api/v3/server/version", signed=signed(sandbox))
    assert response.status_code == 200
    assert response.json() == {"code": code, "message": message, "data": None}


def test_senselink_timestamp_window_is_configurable(sandbox):
    sandbox.senselink.timestamp_window_ms = 1000
    stale = signature(sandbox, timestamp=int(time.time() * 1000) - 5000)
    assert sl(sandbox, "api/v3/server/version", signed=stale).json()["code"] == 10005
    sandbox.senselink.timestamp_window_ms = 10_000
    assert sl(sandbox, "api/v3/server/version", signed=stale).json()["code"] == 200


def test_senselink_ip_allow_list(sandbox):
    sandbox.senselink.allowed_ips = {"203.0.113.7"}
    assert sl(sandbox, "api/v3/server/version").json() == {
        "code": 10006,
        "message": "ip not allowed",
        "data": None,
    }
    sandbox.senselink.allowed_ips = {"203.0.113.7", "127.0.0.1"}
    assert sl(sandbox, "api/v3/server/version").json()["code"] == 200


# --- SenseLink: persons --------------------------------------------------------------------------
def test_senselink_person_list_pages_and_starts_with_hand_registered_persons(sandbox):
    page = sl(sandbox, "api/v1/user/list", params={"type": 1, "page": 1, "size": 2}).json()["data"]
    assert page["page_num"] == 1 and page["page_size"] == 2 and page["total"] == 3
    assert [p["job_number"] for p in page["list"]] == ["GUEST-01", None]
    rest = sl(sandbox, "api/v1/user/list", params={"type": 1, "page": 2, "size": 2}).json()["data"]
    assert [p["job_number"] for p in rest["list"]] == ["9999"]
    kot_codes = {e["code"] for e in sandbox.kot.employees}
    assert not kot_codes & set(sandbox.senselink.persons_by_job_number())


def test_senselink_person_list_as_plain_array(sandbox):
    sandbox.senselink.person_list_shape = "array"
    data = sl(sandbox, "api/v1/user/list", params={"type": 1, "page": 1, "size": 1}).json()["data"]
    assert isinstance(data, list) and len(data) == 3


def test_senselink_create_person_from_multipart(sandbox):
    response = sl(
        sandbox,
        "api/v1/user",
        "POST",
        files=form(
            name="山田\u3000太郎",
            jobNumber="0042",
            birthday="1990-01-02",
            entryTime="2020-04-01",
            mail="taro@example.co.jp",
            groups="1",
            remark="",
        )
        | {"avatarFile": ("face.jpg", b"\xff\xd8", "image/jpeg")},
    )
    body = response.json()
    assert body["code"] == 200
    person = body["data"]
    assert isinstance(person["id"], int)
    assert person["name"] == "山田\u3000太郎"
    assert (person["job_number"], person["birthday"], person["entry_time"], person["mail"]) == (
        "0042",
        "1990-01-02",
        "2020-04-01",
        "taro@example.co.jp",
    )
    assert person["groups"] == [1] and person["remark"] is None and person["avatar"]
    assert sandbox.senselink.persons[person["id"]] == person
    assert sandbox.senselink.persons_by_job_number()["0042"]["id"] == person["id"]


def test_senselink_create_person_takes_repeated_groups(sandbox):
    files = [("name", (None, "佐藤\u3000花子")), ("groups", (None, "1")), ("groups", (None, "2"))]
    person = sl(sandbox, "api/v1/user", "POST", files=files).json()["data"]
    assert person["groups"] == [1, 2]


@pytest.mark.parametrize(
    "fields",
    [
        {"jobNumber": "1001"},  # no name
        {"name": "", "jobNumber": "1001"},
        {"name": "a", "jobNumber": "1" * 46},
        {"name": "a", "mail": "m" * 38 + "@example"},  # 46 characters
        {"name": "a", "birthday": "1990/01/02"},
        {"name": "a", "entryTime": "2020-02-30"},
        {"name": "a", "mobile": "0" * 21},
        {"name": "a", "groups": "abc"},
    ],
)
def test_senselink_create_person_rejects_invalid_fields(sandbox, fields):
    body = sl(sandbox, "api/v1/user", "POST", files=form(**fields)).json()
    assert body == {"code": 30001, "message": "Param Invalid", "data": None}
    assert len(sandbox.senselink.persons) == 3


def test_senselink_create_person_accepts_limits_exactly(sandbox):
    body = sl(
        sandbox,
        "api/v1/user",
        "POST",
        files=form(name="a", jobNumber="1" * 45, mail="m" * 37 + "@example"),
    ).json()
    assert body["code"] == 200


def test_senselink_create_person_needs_multipart(sandbox):
    body = sl(sandbox, "api/v1/user", "POST", data={"name": "a", "jobNumber": "1"}).json()
    assert body["code"] == 30001


def test_senselink_duplicate_job_number_is_refused(sandbox):
    body = sl(sandbox, "api/v1/user", "POST", files=form(name="x", jobNumber="GUEST-01")).json()
    assert body["code"] == 30002 and body["data"] is None


def test_senselink_update_person(sandbox):
    person = sandbox.senselink.add_person(
        name="山田\u3000太郎", job_number="1001", mail="a@example.jp", groups=[1]
    )
    body = sl(
        sandbox,
        f"api/v1/user/update/{person['id']}",
        "POST",
        files=form(name="山田\u3000次郎", mail="", birthday="1991-02-03"),
    ).json()
    assert body["code"] == 200
    updated = sandbox.senselink.persons[person["id"]]
    assert body["data"] == updated
    assert (updated["name"], updated["mail"], updated["birthday"], updated["job_number"]) == (
        "山田\u3000次郎",
        None,
        "1991-02-03",
        "1001",
    )
    assert updated["groups"] == [1]


def test_senselink_update_person_errors(sandbox):
    person = sandbox.senselink.add_person(name="a", job_number="1001")
    update = f"api/v1/user/update/{person['id']}"
    assert sl(sandbox, update, "POST", files=form(jobNumber="GUEST-01")).json()["code"] == 30002
    assert sl(sandbox, update, "POST", files=form(mail="x" * 46)).json()["code"] == 30001
    assert sl(sandbox, update, "POST", files=form(name="")).json()["code"] == 30001
    assert (
        sl(sandbox, update, "POST", files=form(jobNumber="1001")).json()["code"] == 200
    )  # its own number
    assert (
        sl(sandbox, "api/v1/user/update/999999", "POST", files=form(name="b")).json()["code"]
        == 30004
    )
    assert sandbox.senselink.persons[person["id"]]["name"] == "a"


def test_senselink_delete_person(sandbox):
    person = sandbox.senselink.add_person(name="a", job_number="1001")
    assert sl(sandbox, f"api/v1/user/delete/{person['id']}").json() == {
        "code": 200,
        "message": "OK",
        "data": None,
    }
    assert person["id"] not in sandbox.senselink.persons
    assert sl(sandbox, f"api/v1/user/delete/{person['id']}").json()["code"] == 30004


# --- SenseLink: records --------------------------------------------------------------------------
def test_senselink_records_page_without_total_until_a_short_page(make_sandbox):
    sb = make_sandbox(employees=120, recognitions_per_employee=2)
    expected = sb.senselink.records_for(sb.day)
    assert len(expected) > 200 and len(expected) % 100 != 0
    fetched, page = [], 1
    while True:
        data = records_query(sb, sb.day, page=page).json()["data"]
        assert set(data) == {"list", "page_num", "page_size"}  # no total
        assert (data["page_num"], data["page_size"]) == (page, 100)
        fetched += data["list"]
        if len(data["list"]) < 100:
            break
        page += 1
    assert fetched == expected
    assert [(r["sign_time"], r["id"]) for r in fetched] == sorted(
        (r["sign_time"], r["id"]) for r in fetched
    )
    assert len({r["id"] for r in fetched}) == len(fetched)
    per_employee = Counter(r["job_number"] for r in fetched if r["user_type"] == 1)
    assert {n for code, n in per_employee.items() if sb.kot.employee_by_code(code)} == {2}


def test_senselink_records_have_visitors_strangers_and_foreign_numbers(sandbox):
    response = records_query(sandbox, sandbox.day)
    records = sandbox.senselink.records_for(sandbox.day)
    strangers = [r for r in records if r["user_type"] == 3]
    visitors = [r for r in records if r["user_type"] == 2]
    assert strangers and visitors
    assert all(r["job_number"] is None and r["user_id"] == 0 for r in strangers)
    assert '"job_number": null' in response.text
    employee_numbers = {r["job_number"] for r in records if r["user_type"] == 1}
    assert {"9999", "X-777"} <= employee_numbers
    record = records[0]
    assert {
        "id",
        "sign_time",
        "sign_date",
        "sign_time_zone",
        "user_id",
        "user_name",
        "user_type",
        "job_number",
        "group_id",
        "group_name",
        "device_name",
        "device_ldid",
        "verify_score",
        "body_temperature",
        "mask",
        "abnormal_type",
    } <= set(record)
    assert record["sign_time_zone"] == "GMT+09:00" and isinstance(record["sign_time"], int)
    local = datetime.fromtimestamp(record["sign_time"], JST)
    assert record["sign_date"] == sandbox.day.isoformat() and 7 <= local.hour <= 21


def test_senselink_records_filter_by_type_and_time(sandbox):
    visitors = records_query(sandbox, sandbox.day, type=2).json()["data"]["list"]
    assert visitors and {r["user_type"] for r in visitors} == {2}
    morning = sl(
        sandbox,
        "api/v5/record/list",
        params={
            "date_time_from": f"{sandbox.day} 07:00:00",
            "date_time_to": f"{sandbox.day} 09:59:59",
            "size": 100,
        },
    ).json()["data"]["list"]
    assert morning and all(
        7 <= datetime.fromtimestamp(r["sign_time"], JST).hour < 10 for r in morning
    )


def test_senselink_records_exist_for_yesterday_and_across_midnight(sandbox):
    yesterday = sandbox.day - timedelta(days=1)
    assert sandbox.senselink.records_for(yesterday) and sandbox.senselink.records_for(sandbox.day)
    both = sl(
        sandbox,
        "api/v5/record/list",
        params={
            "date_time_from": f"{yesterday} 20:00:00",
            "date_time_to": f"{sandbox.day} 07:59:59",
            "size": 100,
        },
    ).json()["data"]["list"]
    assert {r["sign_date"] for r in both} == {yesterday.isoformat(), sandbox.day.isoformat()}


@pytest.mark.parametrize(
    "params",
    [
        {"size": 101},
        {"size": 0},
        {"page": 0},
        {"page": "x"},
        {"type": 4},
        {"date_time_from": None},
        {"date_time_from": "2026-11-24T00:00:00"},
        {"date_time_from": "2026-11-25 00:00:00", "date_time_to": "2026-11-24 00:00:00"},
    ],
)
def test_senselink_records_reject_bad_parameters(sandbox, params):
    query = {
        "date_time_from": "2026-11-24 00:00:00",
        "date_time_to": "2026-11-24 23:59:59",
        **params,
    }
    query = {k: v for k, v in query.items() if v is not None}
    assert sl(sandbox, "api/v5/record/list", params=query).json() == {
        "code": 30001,
        "message": "Param Invalid",
        "data": None,
    }


def test_senselink_records_can_be_replaced_and_added(sandbox):
    sandbox.senselink.set_records(sandbox.day, [])
    assert records_query(sandbox, sandbox.day).json()["data"]["list"] == []
    added = sandbox.senselink.add_record(
        when=at(sandbox, 8, 55), job_number="1001", user_name="鈴木\u3000大輔"
    )
    later = sandbox.senselink.add_record(when=at(sandbox, 7, 30), job_number="1001")
    listed = records_query(sandbox, sandbox.day).json()["data"]["list"]
    assert [r["id"] for r in listed] == [later["id"], added["id"]]
    assert added["sign_time"] == int(at(sandbox, 8, 55).timestamp()) and added["user_type"] == 1


# --- generated data ------------------------------------------------------------------------------
def test_same_seed_gives_the_same_world_and_another_seed_another(make_sandbox):
    day = datetime(2026, 11, 24).date()
    one, same, other = (make_sandbox(seed=s, day=day) for s in (7, 7, 8))
    assert one.kot.employees == same.kot.employees
    assert one.senselink.records_for(day) == same.senselink.records_for(day)
    assert one.senselink.persons == same.senselink.persons
    assert one.kot.employees != other.kot.employees
    assert one.senselink.records_for(day) != other.senselink.records_for(day)
    assert one.senselink.records_for(day) != one.senselink.records_for(day - timedelta(days=1))


def test_generated_employees_have_the_promised_variety(make_sandbox):
    sb = make_sandbox(employees=400, day=datetime(2026, 11, 24).date())
    employees = sb.kot.employees
    assert len(employees) == 400 and len({e["code"] for e in employees}) == 400
    assert len({e["key"] for e in employees}) == 400
    resigned = sum(1 for e in employees if e.get("resignationDate", "9999") < "2026-11-24")
    assert 8 <= resigned <= 40
    assert 20 <= sum(1 for e in employees if "emailAddresses" not in e) <= 70
    assert 20 <= sum(1 for e in employees if "birthDate" not in e) <= 70
    assert {e["divisionName"] for e in employees} == {"本社", "大阪支社"}
    assert all(e["hiredDate"] <= "2026-11-24" for e in employees)


def test_records_cover_most_active_employees(make_sandbox):
    sb = make_sandbox(employees=200)
    active = {
        e["code"]
        for e in sb.kot.employees
        if e.get("resignationDate", "9999") >= sb.day.isoformat()
    }
    seen = {r["job_number"] for r in sb.senselink.records_for(sb.day) if r["user_type"] == 1}
    assert 0.8 * len(active) <= len(seen & active) < len(active)
    counts = Counter(
        r["job_number"] for r in sb.senselink.records_for(sb.day) if r["job_number"] in active
    )
    assert 1 in counts.values() and max(counts.values()) <= 4


# --- faults ---------------------------------------------------------------------------------------
def test_fault_http500_html_then_normal_again(sandbox):
    sandbox.faults.add("kot", "http500_html", path="/employees")
    first = kot(sandbox, "/employees")
    assert first.status_code == 500 and first.headers["Content-Type"].startswith("text/html")
    assert "<html>" in first.text
    assert kot(sandbox, "/employees").status_code == 200


def test_fault_maintenance_on_both_services(sandbox):
    sandbox.faults.add("kot", "maintenance")
    sandbox.faults.add("senselink", "maintenance")
    response = kot(sandbox, "/divisions")
    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": "Resource Server Error.", "code": 300}]}
    assert sl(sandbox, "api/v3/server/version").status_code == 500


def test_fault_throttle(sandbox):
    sandbox.faults.add("kot", "throttle", method="POST")
    sandbox.faults.add("senselink", "throttle")
    key = sandbox.kot.employees[0]["key"]
    throttled = punch(sandbox, key, at(sandbox, 9, 0))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json() == {"code": "303", "message": "Too Many Requests"}
    assert sandbox.kot.punches == []
    assert sl(sandbox, "api/v3/server/version").status_code == 429


def test_fault_malformed_json(sandbox):
    sandbox.faults.add("kot", "malformed_json")
    sandbox.faults.add("senselink", "malformed_json")
    for response in (kot(sandbox, "/employees"), records_query(sandbox, sandbox.day)):
        assert response.status_code == 200
        with pytest.raises(ValueError):
            json.loads(response.text)


def test_fault_wrong_type(sandbox):
    sandbox.faults.add("kot", "wrong_type", path="/employees")
    sandbox.faults.add("kot", "wrong_type", method="POST")
    sandbox.faults.add("senselink", "wrong_type", path="record")
    assert isinstance(kot(sandbox, "/employees").json(), dict)
    posted = punch(sandbox, sandbox.kot.employees[0]["key"], at(sandbox, 9, 0)).json()
    assert isinstance(posted["timeRecord"]["code"], list)
    records = records_query(sandbox, sandbox.day).json()["data"]["list"]
    assert records and all(isinstance(r["sign_time"], str) for r in records)
    assert isinstance(
        sandbox.senselink.records_for(sandbox.day)[0]["sign_time"], int
    )  # the store is intact


def test_fault_empty(sandbox):
    sandbox.faults.add("kot", "empty", path="/employees")
    sandbox.faults.add("senselink", "empty", path="user/list")
    assert kot(sandbox, "/employees").json() == []
    assert sl(sandbox, "api/v1/user/list").json() == {"code": 200, "message": "OK", "data": []}


def test_fault_reset_closes_without_answer(sandbox):
    sandbox.faults.add("kot", "reset")
    with pytest.raises(requests.ConnectionError):
        kot(sandbox, "/divisions")
    assert kot(sandbox, "/divisions").status_code == 200


def test_fault_timeout_does_not_process_the_request(sandbox):
    sandbox.faults.add("kot", "timeout", method="POST", delay=2)
    key = sandbox.kot.employees[0]["key"]
    body = {"date": sandbox.day.isoformat(), "time": at(sandbox, 9, 0).isoformat(), "code": 1}
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{sandbox.kot_url}/daily-workings/timerecord/{key}",
            json=body,
            headers={"Authorization": f"Bearer {sandbox.kot_token}"},
            timeout=0.3,
        )
    assert sandbox.kot.punches == []


def test_fault_timeout_answers_504_after_the_delay(sandbox):
    sandbox.faults.add("senselink", "timeout", delay=0.2)
    assert sl(sandbox, "api/v3/server/version").status_code == 504


def test_fault_timeout_after_store_lands_the_write(sandbox):
    sandbox.faults.add("kot", "timeout_after_store", method="POST", delay=2)
    sandbox.faults.add("senselink", "timeout_after_store", path=r"^/api/v1/user$", delay=2)
    key = sandbox.kot.employees[0]["key"]
    body = {"date": sandbox.day.isoformat(), "time": at(sandbox, 9, 0).isoformat(), "code": 1}
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{sandbox.kot_url}/daily-workings/timerecord/{key}",
            json=body,
            headers={"Authorization": f"Bearer {sandbox.kot_token}"},
            timeout=0.3,
        )
    with pytest.raises(requests.Timeout):
        requests.post(
            sandbox.senselink_url + "api/v1/user",
            params=signature(sandbox),
            files=form(name="a", jobNumber="1001"),
            timeout=0.3,
        )
    assert len(sandbox.kot.punches_for(key, sandbox.day)) == 1
    assert "1001" in sandbox.senselink.persons_by_job_number()


def test_fault_signature(sandbox):
    sandbox.faults.add("senselink", "signature", times=None)
    for _ in range(3):
        assert sl(sandbox, "api/v3/server/version").json()["code"] == 10003
    sandbox.faults.clear()
    assert sl(sandbox, "api/v3/server/version").json()["code"] == 200


def test_fault_times_after_method_and_path(sandbox):
    sandbox.faults.add("kot", "maintenance", path="/divisions", after=1, times=2)
    statuses = [kot(sandbox, "/divisions").status_code for _ in range(5)]
    assert statuses == [200, 500, 500, 200, 200]
    assert kot(sandbox, "/employees").status_code == 200
    sandbox.faults.add("kot", "maintenance", method="POST")
    assert kot(sandbox, "/divisions").status_code == 200
    assert sandbox.faults.active()
    with pytest.raises(ValueError):
        sandbox.faults.add("kot", "no-such-kind")


# --- latency, counts, robustness ---------------------------------------------------------------
def test_latency_is_added_and_requests_overlap(sandbox):
    sandbox.latency = 0.3
    durations = []

    def call():
        started = time.monotonic()
        assert kot(sandbox, "/divisions").status_code == 200
        durations.append(time.monotonic() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(durations) >= 0.3
    assert time.monotonic() - started < 1.0  # four overlapping requests, not 1.2 s in a row


def test_request_counts_by_route_template(sandbox):
    key = sandbox.kot.employees[0]["key"]
    punch(sandbox, key, at(sandbox, 9, 0))
    punch(sandbox, key, at(sandbox, 18, 0), code=2)
    records_query(sandbox, sandbox.day)
    kot(sandbox, "/employees", token="bad")
    counts = sandbox.request_counts()
    assert counts["POST /v1.0/daily-workings/timerecord/{key}"] == 2
    assert counts["GET /api/v5/record/list"] == 1
    assert counts["GET /v1.0/employees"] == 1
    sandbox.reset_counts()
    assert sandbox.request_counts() == Counter()


def test_keep_alive_session_and_unknown_routes(sandbox):
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {sandbox.kot_token}"
        for _ in range(50):
            response = session.get(sandbox.kot_url + "/divisions", timeout=5)
            assert response.status_code == 200 and "close" not in response.headers.get(
                "Connection", ""
            )
        assert session.get(sandbox.kot_url + "/nothing-here", timeout=5).status_code == 404
    assert sl(sandbox, "api/v9/nothing").status_code == 404


def test_stop_cuts_held_requests_short():
    sb = start_sandbox(employees=3)
    sb.faults.add("kot", "timeout", delay=30)
    errors = []

    def call():
        try:
            kot(sb, f"/tokens/{sb.kot_token}/available")
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)  # let the request reach the server
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 3
    thread.join(timeout=5)
    assert errors
    sb.stop()  # twice is fine


def test_clock_offset_and_now_function():
    moment = datetime(2026, 11, 24, 17, 45, tzinfo=JST)
    sb = start_sandbox(employees=3, now=lambda: moment)
    try:
        assert sb.day == moment.date()
        assert kot(sb, "/divisions").json()["errors"][0]["code"] == 104
        sb.clock.offset = timedelta(hours=1)
        assert kot(sb, "/divisions").status_code == 200
    finally:
        sb.stop()


def test_management_command_parses_clock_offsets():
    from integrations.management.commands.sandbox import parse_offset

    assert parse_offset("+2h") == timedelta(hours=2)
    assert parse_offset("-30m") == timedelta(minutes=-30)
    assert parse_offset("1h30m") == timedelta(minutes=90)
    assert parse_offset("-02:30") == timedelta(minutes=-150)
    assert parse_offset("45") == timedelta(minutes=45)
