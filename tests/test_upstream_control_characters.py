"""Text every database takes (issue 18 item 7): a NUL or another control character in anything
read upstream never stops a tenant. PostgreSQL refuses NUL (DataError) where SQLite takes it, so
these tests matter most on PostgreSQL. Keys (job numbers, KOT codes) are refused — the item
becomes one error line and the rest of the run goes on — and free text is cleaned."""

from __future__ import annotations

import json

import pytest
import responses

from connectors.errors import ApiError
from connectors.kot import KotClient
from connectors.record_feed import FeedCursor
from connectors.senselink import SenseLinkClient
from connectors.text import clean, has_control, shown
from connectors.throttle import AdaptiveLimiter
from integrations.fields import fit
from integrations.models import PunchLedger, RealtimeState, SyncError, SyncRun
from integrations.services.punches import invalid_job_number_message
from tests.sync_world import (
    DAY,
    at,
    configure,
    only_records,
    poll_at,
    punches,
    realtime_run,
    recognise,
    run_now,
    small_kot,
)

pytestmark = pytest.mark.django_db

STAFF = [
    {"code": "0042", "last_name": "山田", "first_name": "太郎"},
    {"code": "A0004", "last_name": "佐藤", "first_name": "花子"},
    {"code": "2022", "last_name": "鈴木", "first_name": "一郎"},
]


def test_keys_are_shown_escaped_and_free_text_is_cleaned():
    assert shown("A\x000042") == "A\\x000042"
    assert shown("20\x1f22") == "20\\x1f22"
    assert shown("x\ud800\\") == "x\\ud800\\\\"  # a backslash too: two keys never look alike
    assert len(shown("\x00" * 1000)) == 200
    assert clean("山\x00田\t太郎\r\n") == "山田 太郎  "
    assert clean("ok") == "ok"
    assert not has_control(clean("".join(map(chr, range(0x00, 0xA0))) + "\udc80"))


# ----------------------------------------------------------------------------- attendance


def test_an_attendance_run_with_control_characters_in_job_numbers_goes_on(world):
    """One line per refused number (two records of it, one line), every other punch once."""
    small_kot(world.sandbox, *STAFF, {"code": "X\x0001", "last_name": "制御"})
    configure(world.acme, attendance_mode="clock_in_out")
    only_records(
        world.sandbox,
        DAY,
        ("0042", at(9)),
        ("A\x000004", at(9, 5)),
        ("A\x000004", at(18, 1)),
        ("20\x1f22", at(9, 10)),
        ("2022", at(9, 15)),
        ("0042", at(18)),
        ("X\x0001", at(9, 20)),
    )

    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)

    assert run.status == SyncRun.Status.PARTIAL, (run.status, run.message)
    assert punches(world.sandbox, "0042") == [
        ("1", "2026-11-24T09:00:00+09:00"),
        ("2", "2026-11-24T18:00:00+09:00"),
    ]
    assert punches(world.sandbox, "2022") == [("1", "2026-11-24T09:15:00+09:00")]
    assert punches(world.sandbox, "A0004") == []  # "A\x000004" is never taken for A0004
    assert run.created_count == 3
    errors = sorted(run.errors.values_list("employee_code", "code", "message"))
    assert [(code, kind) for code, kind, _message in errors] == [
        ("20\\x1f22", "invalid_job_number"),
        ("A\\x000004", "invalid_job_number"),
        ("X\\x0001", "invalid_job_number"),
    ]
    assert all(not has_control(message) for _code, _kind, message in errors)
    assert "従業員番号:A\\x000004 に使用できない文字" in errors[1][2]

    # A second run posts nothing again and says the same, once per number.
    again = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert (again.created_count, again.skipped_count, again.failed_count) == (0, 3, 3)
    assert len(world.sandbox.kot.punches) == 3


def test_a_day_with_only_refused_numbers_reports_them_and_reads_no_kot(world):
    small_kot(world.sandbox, *STAFF)
    only_records(world.sandbox, DAY, ("\x00", at(9)), ("0042\x00", at(9, 1)))
    world.sandbox.reset_counts()
    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.FAILURE
    assert sorted(run.errors.values_list("employee_code", flat=True)) == ["0042\\x00", "\\x00"]
    assert world.sandbox.request_counts()["GET /employees"] == 0


# ------------------------------------------------------------------------------ real time


def test_a_realtime_poll_with_a_nul_job_number_posts_the_rest_and_moves_on(rt):  # noqa: F811
    # KOT also lists an employee whose code holds NUL: its key is never stored (jsonb).
    rt.sandbox.kot.add_employee(code="9\x0099", last_name="制御")
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    recognise(rt, "00\x0043", at(8, 46))
    recognise(rt, "00\x0043", at(8, 47))
    recognise(rt, "0043", at(8, 48))

    report = poll_at(rt, at(8, 50))

    assert (report.status, report.posted, report.errors) == ("done", 2, 1)
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]
    assert punches(rt.sandbox, "0043") == [("1", "2026-11-24T08:48:00+09:00")]
    run = realtime_run(rt)
    [error] = run.errors.all()
    assert (error.employee_code, error.code) == ("00\\x0043", "invalid_job_number")
    assert (run.created_count, run.failed_count) == (2, 1)
    state = RealtimeState.objects.get(setting=rt.setting)
    last_id = max(r["id"] for r in rt.sandbox.senselink.records_for(DAY))
    # The feed advanced past the refused records.
    assert FeedCursor.from_json(state.feed_cursor).high == last_id
    assert "9\x0099" not in state.employee_keys and "0042" in state.employee_keys
    assert set(PunchLedger.objects.values_list("employee_code", flat=True)) == {"0042", "0043"}

    # The next poll reads nothing new: no second line, nothing posted.
    recognise(rt, "00\x0043", at(8, 55))
    report = poll_at(rt, at(8, 56))
    assert (report.posted, report.errors) == (0, 0)
    assert realtime_run(rt).errors.count() == 1


# --------------------------------------------------------------------------- employee sync


def test_an_employee_sync_with_control_characters_in_codes_and_names(world):
    sandbox = world.sandbox
    configure(world.acme, resigned_policy="delete", deletion_guard_percent=100)
    small_kot(
        sandbox,
        {
            "code": "0042",
            "last_name": "山\x00田",
            "first_name": "太\t郎",
            "emailAddresses": ["ya\x00mada@example.jp"],
        },
        {"code": "B\x000077", "last_name": "制御", "first_name": "次郎"},
        {"code": "B\x000077", "last_name": "同番", "first_name": "三郎"},  # one line per code
        # Held by SenseLink under the same refused number: never matched, so never deleted.
        {"code": "C\x1f01", "last_name": "退職", "resignationDate": "2026-01-31"},
        {"code": "D\x0001", "last_name": "在籍"},
    )
    held = sandbox.senselink.add_person(name="退職　者", job_number="C\x1f01")
    also = sandbox.senselink.add_person(name="在籍　者", job_number="D\x0001")
    before = len(sandbox.senselink.persons)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.PARTIAL, (run.status, run.message)
    assert run.created_count == 1 and run.deleted_count == 0
    yamada = sandbox.senselink.persons_by_job_number()["0042"]
    assert (yamada["name"], yamada["mail"]) == ("山田\u3000太 郎", "yamada@example.jp")
    errors = sorted(run.errors.values_list("employee_code", "code", "message"))
    assert [(code, kind) for code, kind, _message in errors] == [
        ("B\\x000077", "invalid_employee_code"),
        ("D\\x0001", "invalid_employee_code"),
    ]
    assert all(not has_control(message) for _code, _kind, message in errors)
    assert sandbox.senselink.persons[held["id"]] == held
    assert sandbox.senselink.persons[also["id"]] == also
    assert len(sandbox.senselink.persons) == before + 1

    # A second run: nothing created, deleted or recreated because of the refused numbers.
    again = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert (again.created_count, again.deleted_count, again.failed_count) == (0, 0, 2)
    assert len(sandbox.senselink.persons) == before + 1
    assert sandbox.senselink.persons[held["id"]] == held


# -------------------------------------------------------------------------------- parsers

KOT_URL = "https://kot.invalid/v1.0"
SL_URL = "https://link.invalid/"


def kot_client() -> KotClient:
    return KotClient(
        base_url=KOT_URL,
        token="t0ken",
        clock=lambda: at(12),
        max_retries=0,
        throttle_retries=0,
        limiter=AdaptiveLimiter(),
    )


def sl_client() -> SenseLinkClient:
    return SenseLinkClient(
        base_url=SL_URL, app_key="k", app_secret="s3cret", allow_private_hosts=True, max_retries=0
    )


def test_kot_parser_flags_a_bad_code_or_key_and_cleans_names():
    client = kot_client()
    bad = client._parse_employee({"key": "k1", "code": "A\x000042", "lastName": "山\x07田"}, 0)
    assert (bad.code, bad.key, bad.problem, bad.last_name) == ("", "", "A\\x000042", "山田")
    bad_key = client._parse_employee({"key": "k\x00", "code": "0042"}, 0)
    assert (bad_key.code, bad_key.key, bad_key.problem) == ("", "", "0042")
    good = client._parse_employee({"key": "k2", "code": "0043", "divisionCode": "1\x000"}, 0)
    assert (good.code, good.problem, good.division_code) == ("0043", None, None)
    day = [
        {
            "date": "2026-11-24",
            "dailyWorkings": [
                {
                    "employeeKey": key,
                    "timeRecord": [{"time": "2026-11-24T09:00:00+09:00", "code": 1}],
                }
                for key in ("k\x00", "k2")
            ],
        }
    ]
    assert [p.employee_key for p in client._parse_timerecords(day)] == ["k2"]


def test_kot_division_with_a_control_character_is_left_out():
    body = [{"code": "1\x000", "name": "x"}, {"code": "200", "name": "本\x00社"}]
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{KOT_URL}/divisions", body=json.dumps(body), status=200)
        divisions = kot_client().list_divisions()
    assert [(d.code, d.name) for d in divisions] == [("200", "本社")]


def test_remote_error_texts_lose_control_characters_before_the_secret_is_hidden():
    body = {"errors": [{"code": "1\x0099", "message": "bad t0k\x00en\x00 here"}]}
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{KOT_URL}/employees", body=json.dumps(body), status=400)
        with pytest.raises(ApiError) as caught:
            kot_client().list_employees()
    exc = caught.value
    for text in (exc.message, exc.detail, exc.remote_message, str(exc.remote_code)):
        assert not has_control(text) and "t0ken" not in text
    assert "bad *** here" in exc.message

    envelope = {"code": 40000, "message": "no\x00pe s3c\x00ret\x01", "data": None}
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{SL_URL}api/v1/group", body=json.dumps(envelope), status=200)
        with pytest.raises(ApiError) as caught:
            sl_client().list_groups()
    exc = caught.value
    for text in (exc.message, exc.detail, exc.remote_message):
        assert not has_control(text) and "s3cret" not in text


def test_senselink_parsers_flag_bad_job_numbers_and_clean_names():
    client = sl_client()
    record = client._parse_record(
        {"id": 1, "sign_time": 1764000000, "job_number": "00\x0042", "user_name": "山\x00田"}, 1
    )
    assert (record.job_number, record.problem, record.user_name) == (None, "00\\x0042", "山田")
    stripped = client._parse_record(
        {"id": 2, "sign_time": 1764000000, "job_number": " 0042\r\n"}, 1
    )
    assert (stripped.job_number, stripped.problem) == ("0042", None)  # stripped, as always
    person = client._parse_person(
        {"id": 3, "name": "佐\x00藤", "jobNumber": "\ud800", "mail": "a\x00@b.jp"}
    )
    assert (person.job_number, person.problem, person.name, person.mail) == (
        None,
        "\\ud800",
        "佐藤",
        "a@b.jp",
    )
    assert person.has_job_number_field  # a refused number is not "no job-number field"


def test_a_refused_job_number_error_line_is_stored_on_every_database(world):
    """What the engines store for a refused number: escaped, cut to the column, no NUL."""
    run = SyncRun.objects.create(tenant=world.acme, kind="attendance", trigger="manual")
    code = fit(shown("Z\x00" * 100), 64)
    SyncError.objects.create(
        run=run,
        employee_code=code,
        code="invalid_job_number",
        message=invalid_job_number_message(code),
    )
    assert SyncError.objects.get(run=run).employee_code == code
    assert SyncError.objects.filter(employee_code=code).count() == 1
