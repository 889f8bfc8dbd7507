"""Minute precision (issue 12 item 7): KOT's screens show HH:MM and whether it keeps the seconds
we send is undocumented, so a held punch of the same kind less than 60 s from ours is "already
there": a rerun never reports the portal's own punch as a conflict. Against the sandbox over
loopback HTTP, in its minutes-only reading too.
"""

from __future__ import annotations

import pytest

from integrations.models import ConnectSetting, SyncRun
from integrations.services.punches import same_minute
from tests.sync_world import DAY, at, only_records, punches, run_now, small_kot

pytestmark = pytest.mark.django_db

POST = "POST /v1.0/daily-workings/timerecord/{key}"


def test_same_minute_is_less_than_sixty_seconds_either_way():
    assert same_minute(at(8, 57, 0), at(8, 57, 59))
    assert same_minute(at(8, 56, 10), at(8, 57, 9))  # across a minute boundary: 59 s
    assert same_minute(at(8, 57, 41), at(8, 57, 0))
    assert not same_minute(at(8, 56, 3), at(8, 57, 3))  # 60 s
    assert not same_minute(at(8, 55, 59), at(8, 57, 3))


@pytest.fixture
def one_employee(world, sandbox):
    small_kot(sandbox, {"code": "0001"})
    world.acme.connect_settings.update(attendance_mode=ConnectSetting.AttendanceMode.CLOCK_IN)
    return sandbox.kot.employee_by_code("0001")["key"]


@pytest.mark.parametrize(
    ("held", "ours"),
    [
        (at(8, 57, 0), at(8, 57, 41)),  # KOT kept the minute only
        (at(8, 56, 10), at(8, 57, 9)),  # 59 s apart, across the minute
    ],
)
def test_a_held_punch_within_a_minute_is_ours(world, sandbox, one_employee, held, ours):
    sandbox.kot.add_punch(one_employee, DAY, held, 1)
    only_records(sandbox, DAY, ("0001", ours))
    sandbox.reset_counts()

    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)

    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert not run.errors.exists() and run.skipped_count == 1
    assert sandbox.request_counts()[POST] == 0
    assert len(punches(sandbox, "0001")) == 1


def test_a_held_punch_a_minute_or_more_away_is_a_conflict(world, sandbox, one_employee):
    sandbox.kot.add_punch(one_employee, DAY, at(8, 55, 59), 1)
    only_records(sandbox, DAY, ("0001", at(8, 57, 3)))

    run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)

    assert run.status != SyncRun.Status.SUCCESS  # its only punch is a conflict
    assert list(run.errors.values_list("code", flat=True)) == ["already_punched"]
    assert len(punches(sandbox, "0001")) == 1


def test_minutes_only_kot_rerun_and_timed_out_post_find_our_punch(
    world, sandbox, one_employee, settings
):
    settings.READ_TIMEOUT_SECONDS = 0.5
    sandbox.kot.configure(minutes_only=True)
    only_records(sandbox, DAY, ("0001", at(8, 57, 41)))
    # The POST is stored (at 08:57:00), but its answer never comes: the client reads the day
    # back and must recognise the punch it sent at 08:57:41.
    sandbox.faults.add("kot", "timeout_after_store", method="POST", delay=3.0)

    first = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)

    assert sandbox.request_counts()[POST] == 1  # timed out, never sent again
    assert first.status == SyncRun.Status.SUCCESS, first.message
    assert first.created_count == 1 and not first.errors.exists()
    assert punches(sandbox, "0001") == [("1", "2026-11-24T08:57:00+09:00")]

    again = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert again.status == SyncRun.Status.SUCCESS and not again.errors.exists()
    assert again.skipped_count == 1
    assert punches(sandbox, "0001") == [("1", "2026-11-24T08:57:00+09:00")]
