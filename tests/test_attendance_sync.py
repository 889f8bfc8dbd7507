"""Attendance sync SenseLink → KOT (SPEC 4.2), end to end against the sandbox."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.models import SyncRun
from tests.sync_world import DAY, at, configure, only_records, punches, run_now, small_kot

pytestmark = pytest.mark.django_db

STAFF = [
    {"code": "0042", "last_name": "山田", "first_name": "太郎"},
    {"code": "A0004", "last_name": "佐藤", "first_name": "花子"},
    {"code": "2022", "last_name": "鈴木", "first_name": "一郎"},
]


@pytest.fixture
def staff(world):
    small_kot(world.sandbox, *STAFF)
    return world


def test_clock_in_mode_posts_the_earliest_recognition_only(staff):
    only_records(staff.sandbox, DAY, ("0042", at(18, 2)), ("0042", at(8, 57, 3)), ("0042", at(12)))
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS
    assert punches(staff.sandbox, "0042") == [("1", "2026-11-24T08:57:03+09:00")]
    assert run.created_count == 1


def test_clock_in_out_mode_posts_earliest_and_latest(staff):
    configure(staff.acme, attendance_mode="clock_in_out")
    only_records(staff.sandbox, DAY, ("0042", at(18, 2)), ("0042", at(8, 57, 3)), ("0042", at(12)))
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS
    assert punches(staff.sandbox, "0042") == [
        ("1", "2026-11-24T08:57:03+09:00"),
        ("2", "2026-11-24T18:02:00+09:00"),
    ]


def test_a_single_recognition_gives_a_clock_in_only(staff):
    configure(staff.acme, attendance_mode="clock_in_out")
    only_records(staff.sandbox, DAY, ("A0004", at(9, 1)))
    run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert punches(staff.sandbox, "A0004") == [("1", "2026-11-24T09:01:00+09:00")]


def test_visitors_and_strangers_are_ignored(staff):
    only_records(
        staff.sandbox,
        DAY,
        ("0042", at(9), 1),
        ("2022", at(7), 2),  # a visitor who happens to carry an employee's number
        (None, at(6), 3),  # a stranger
    )
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS
    assert punches(staff.sandbox, "2022") == []
    assert len(staff.sandbox.kot.punches) == 1


def test_an_unknown_employee_number_is_reported_and_the_rest_go_on(staff):
    only_records(staff.sandbox, DAY, ("0042", at(9)), ("9999", at(9, 5)))
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.PARTIAL
    assert punches(staff.sandbox, "0042") == [("1", "2026-11-24T09:00:00+09:00")]
    [error] = run.errors.all()
    assert (error.employee_code, error.code, error.punch) == (
        "9999",
        "unknown_employee",
        "clock_in",
    )
    assert "9999" in error.message


def test_a_second_run_of_the_same_date_posts_nothing(staff):
    configure(staff.acme, attendance_mode="clock_in_out")
    only_records(staff.sandbox, DAY, ("0042", at(9)), ("0042", at(18)), ("2022", at(8, 30)))
    first = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    staff.sandbox.reset_counts()
    second = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert (first.created_count, second.created_count, second.skipped_count) == (3, 0, 3)
    assert second.status == SyncRun.Status.SUCCESS
    posts = [k for k in staff.sandbox.request_counts() if k.startswith("POST")]
    assert posts == []
    assert len(staff.sandbox.kot.punches) == 3


def test_a_different_punch_already_in_kot_gets_the_manuals_message(staff):
    key = staff.sandbox.kot.employee_by_code("2022")["key"]
    staff.sandbox.kot.add_punch(key, DAY, at(8, 45), 1)
    only_records(staff.sandbox, DAY, ("2022", at(9)))
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.FAILURE
    assert [e.message for e in run.errors.all()] == [
        "従業員コード:2022 の出勤は既に打刻済みです。KING OF TIME管理画面をご確認ください。"
    ]
    assert punches(staff.sandbox, "2022") == [("1", "2026-11-24T08:45:00+09:00")]


@pytest.mark.parametrize(
    "target_day,expected",
    [("previous", date(2026, 11, 24)), ("same", date(2026, 11, 25))],
)
def test_records_are_taken_from_midnight_to_midnight_jst(staff, target_day, expected):
    configure(staff.acme, attendance_mode="clock_in_out", attendance_target_day=target_day)
    only_records(
        staff.sandbox, date(2026, 11, 24), ("0042", at(23, 59, 59, day=date(2026, 11, 24)))
    )
    only_records(staff.sandbox, date(2026, 11, 25), ("0042", at(0, 0, 1, day=date(2026, 11, 25))))
    run = run_now(staff.acme, SyncRun.Kind.ATTENDANCE, expected)
    assert run.status == SyncRun.Status.SUCCESS
    stored = punches(staff.sandbox, "0042", expected)
    if expected == date(2026, 11, 24):
        assert stored == [("1", "2026-11-24T23:59:59+09:00")]
    else:
        assert stored == [("1", "2026-11-25T00:00:01+09:00")]


def test_generated_data_partial_run_counts_add_up(world):
    """The default sandbox day: most employees punch, unknown numbers are reported."""
    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status in (SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL)
    assert run.created_count == len(world.sandbox.kot.punches) > 0
    unknown = {e.employee_code for e in run.errors.filter(code="unknown_employee")}
    assert all(world.sandbox.kot.employee_by_code(code) is None for code in unknown)
