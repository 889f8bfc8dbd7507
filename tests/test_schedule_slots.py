"""Scheduled slots: the dispatcher turns every due slot into exactly one run, in JST, with the
right target date; a changed hour is honoured from the next slot; paused syncs are skipped;
racing dispatchers create one run per slot; missed slots follow the written policy."""

from __future__ import annotations

import os
import threading
import time
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from integrations.models import ConnectSetting, SyncRun
from integrations.queue import SEND_RUN_MAIL, WORKERS
from integrations.services.dispatch import dispatch
from integrations.services.reruns import rerun
from tests.conftest import JST, make_tenant
from tests.queue_helpers import orm_broker_only, queued, work
from tests.world import make_acme

ATTENDANCE = SyncRun.Kind.ATTENDANCE
EMPLOYEE = SyncRun.Kind.EMPLOYEE
SCHEDULED = ConnectSetting.Trigger.SCHEDULED


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=JST)


def scheduled_tenant(slug: str, *, created: datetime, **fields):
    """A tenant whose settings were last changed at ``created``."""
    with time_machine.travel(created, tick=False):
        return make_tenant(slug, **fields)


def walk(start: datetime, end: datetime, step: timedelta) -> None:
    """Dispatch every ``step`` from ``start`` to ``end`` on a frozen, moving clock."""
    with time_machine.travel(start, tick=False) as clock:
        moment = start
        while moment <= end:
            clock.move_to(moment)
            dispatch()
            moment += step


def slot_runs(tenant, kind: str) -> list[SyncRun]:
    return list(SyncRun.objects.filter(tenant=tenant, kind=kind).order_by("slot"))


def change(tenant, at: datetime, **fields) -> None:
    with time_machine.travel(at, tick=False):
        setting = tenant.connect_settings.get()
        for name, value in fields.items():
            setattr(setting, name, value)
        setting.full_clean()
        setting.save()


@pytest.mark.django_db
def test_every_slot_of_two_days_creates_exactly_one_run_with_its_target_date():
    acme = scheduled_tenant(
        "acme",
        created=jst(2026, 11, 24, 0, 0),
        attendance_trigger=SCHEDULED,
        attendance_hour=3,
        attendance_target_day="previous",
        employee_trigger=SCHEDULED,
        employee_interval="daily",
        employee_hour=2,
    )
    same = scheduled_tenant(
        "same-day",
        created=jst(2026, 11, 24, 0, 0),
        attendance_trigger=SCHEDULED,
        attendance_hour=23,
        attendance_target_day="same",
    )

    walk(jst(2026, 11, 24, 0, 0), jst(2026, 11, 26, 0, 0), timedelta(minutes=7))

    attendance = slot_runs(acme, ATTENDANCE)
    assert [(r.slot.astimezone(JST), r.target_date) for r in attendance] == [
        (jst(2026, 11, 24, 3), date(2026, 11, 23)),
        (jst(2026, 11, 25, 3), date(2026, 11, 24)),
    ]
    for run in attendance:
        assert run.trigger == SyncRun.Trigger.SCHEDULE
        assert run.triggered_by_label == "スケジュール"
        assert run.slot <= run.created_at < run.slot + timedelta(minutes=7)
        assert run.enqueued_at is not None  # handed to the cluster in the same minute
    employee = slot_runs(acme, EMPLOYEE)
    assert [r.slot.astimezone(JST) for r in employee] == [
        jst(2026, 11, 24, 2),
        jst(2026, 11, 25, 2),
    ]
    assert all(r.target_date is None for r in employee)
    assert [(r.slot.astimezone(JST), r.target_date) for r in slot_runs(same, ATTENDANCE)] == [
        (jst(2026, 11, 24, 23), date(2026, 11, 24)),
        (jst(2026, 11, 25, 23), date(2026, 11, 25)),
    ]
    assert slot_runs(same, EMPLOYEE) == []  # employee sync is manual for this tenant


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("target_day", "expected"),
    [("previous", date(2026, 11, 24)), ("same", date(2026, 11, 25))],
)
def test_a_midnight_slot_targets_the_previous_or_the_same_jst_day(target_day, expected):
    acme = scheduled_tenant(
        "acme",
        created=jst(2026, 11, 20),
        attendance_trigger=SCHEDULED,
        attendance_hour=0,
        attendance_target_day=target_day,
    )
    with time_machine.travel(jst(2026, 11, 25, 0, 0, 30), tick=False):
        dispatch()
    (run,) = slot_runs(acme, ATTENDANCE)
    assert run.slot == jst(2026, 11, 25, 0)
    assert run.target_date == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (
            jst(2026, 11, 20, 2),
            jst(2027, 1, 3),
            [jst(2026, 11, 30, 2), jst(2026, 12, 31, 2)],
        ),
        (jst(2027, 2, 20, 2), jst(2027, 3, 3), [jst(2027, 2, 28, 2)]),
        (jst(2028, 2, 20, 2), jst(2028, 3, 3), [jst(2028, 2, 29, 2)]),
    ],
    ids=["30-november-31-december", "28-february", "29-february-leap-year"],
)
def test_a_monthly_sync_on_the_31st_runs_on_a_shorter_months_last_day(start, end, expected):
    acme = scheduled_tenant(
        "acme",
        created=start - timedelta(days=1),
        employee_trigger=SCHEDULED,
        employee_interval="monthly",
        employee_day=31,
        employee_hour=2,
    )
    walk(start, end, timedelta(hours=3))  # 2:00, 5:00, ...: every day's 2:00 is visited
    assert [r.slot.astimezone(JST) for r in slot_runs(acme, EMPLOYEE)] == expected


@pytest.mark.django_db
def test_a_changed_hour_is_honoured_from_the_next_slot():
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=3
    )
    walk(jst(2026, 11, 25, 0), jst(2026, 11, 25, 4), timedelta(minutes=10))
    # Later the same day: 5 o'clock instead of 3 (a slot still ahead today).
    change(acme, jst(2026, 11, 25, 4, 30), attendance_hour=5)
    walk(jst(2026, 11, 25, 4, 30), jst(2026, 11, 26, 4), timedelta(minutes=10))
    # Then 2 o'clock, changed at 2:30: today's 2:00 slot lies before the change, so the next
    # slot is tomorrow's 2:00, and the old 5 o'clock no longer runs.
    change(acme, jst(2026, 11, 26, 2, 30), attendance_hour=2)
    walk(jst(2026, 11, 26, 4), jst(2026, 11, 27, 6), timedelta(minutes=10))

    assert [r.slot.astimezone(JST) for r in slot_runs(acme, ATTENDANCE)] == [
        jst(2026, 11, 25, 3),
        jst(2026, 11, 25, 5),
        jst(2026, 11, 27, 2),
    ]


@pytest.mark.django_db
def test_a_setting_changed_to_scheduled_after_todays_slot_starts_tomorrow():
    acme = make_acme()
    change(acme, jst(2026, 11, 25, 10), attendance_trigger=SCHEDULED, attendance_hour=3)
    walk(jst(2026, 11, 25, 10), jst(2026, 11, 26, 3, 5), timedelta(minutes=5))
    assert [r.slot.astimezone(JST) for r in slot_runs(acme, ATTENDANCE)] == [jst(2026, 11, 26, 3)]


@pytest.mark.django_db
def test_paused_syncs_and_inactive_tenants_are_skipped():
    acme = scheduled_tenant(
        "acme",
        created=jst(2026, 11, 20),
        attendance_trigger=SCHEDULED,
        attendance_hour=3,
        attendance_paused=True,
        employee_trigger=SCHEDULED,
        employee_hour=3,
    )
    suspended = scheduled_tenant(
        "suspended",
        created=jst(2026, 11, 20),
        status="suspended",
        attendance_trigger=SCHEDULED,
        attendance_hour=3,
    )
    with time_machine.travel(jst(2026, 11, 25, 3, 0, 20), tick=False):
        dispatch()
    assert slot_runs(acme, ATTENDANCE) == []
    assert len(slot_runs(acme, EMPLOYEE)) == 1
    assert not SyncRun.objects.filter(tenant=suspended).exists()


@pytest.mark.django_db
def test_resuming_a_paused_sync_does_not_run_the_slot_it_skipped():
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=3
    )
    change(acme, jst(2026, 11, 25, 2), attendance_paused=True)
    walk(jst(2026, 11, 25, 2), jst(2026, 11, 25, 3, 30), timedelta(minutes=10))
    change(acme, jst(2026, 11, 25, 3, 30), attendance_paused=False)
    walk(jst(2026, 11, 25, 3, 30), jst(2026, 11, 26, 3, 10), timedelta(minutes=10))
    assert [r.slot.astimezone(JST) for r in slot_runs(acme, ATTENDANCE)] == [jst(2026, 11, 26, 3)]
    assert not SyncRun.objects.filter(error_type=SyncRun.ErrorType.MISSED).exists()


@pytest.mark.django_db
def test_dispatching_twice_in_the_same_minute_creates_one_run_per_slot():
    tenants = [
        scheduled_tenant(
            f"t{i}",
            created=jst(2026, 11, 20),
            attendance_trigger=SCHEDULED,
            attendance_hour=3,
            employee_trigger=SCHEDULED,
            employee_hour=3,
        )
        for i in range(5)
    ]
    now = jst(2026, 11, 25, 3, 0, 10)
    first = dispatch(now=now)
    second = dispatch(now=now)
    third = dispatch(now=now + timedelta(minutes=1))
    assert first.scheduled == 10
    assert second.scheduled == third.scheduled == 0
    assert SyncRun.objects.count() == 10
    for tenant in tenants:
        assert len(slot_runs(tenant, ATTENDANCE)) == len(slot_runs(tenant, EMPLOYEE)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_in_two_threads_create_one_run_per_slot():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, and two clusters never share it")
    for i in range(30):
        scheduled_tenant(
            f"t{i}",
            created=jst(2026, 11, 20),
            attendance_trigger=SCHEDULED,
            attendance_hour=3,
            employee_trigger=SCHEDULED,
            employee_hour=3,
        )
    now = jst(2026, 11, 25, 3, 0, 10)
    barrier = threading.Barrier(2)
    failures = []

    def dispatcher():
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            dispatch(now=now)
        except Exception as exc:  # reported in the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert SyncRun.objects.count() == 60
    assert SyncRun.objects.values("tenant", "kind", "slot").distinct().count() == 60


@pytest.mark.django_db
def test_a_slot_found_late_but_within_the_grace_still_runs(settings):
    settings.SCHEDULE_MISSED_SLOT_GRACE_MINUTES = 180
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=3
    )
    dispatch(now=jst(2026, 11, 25, 1))  # the cluster's last beat before it went down
    dispatch(now=jst(2026, 11, 25, 5, 59))  # back up, 179 minutes after the slot
    (run,) = slot_runs(acme, ATTENDANCE)
    assert run.status == SyncRun.Status.QUEUED
    assert run.target_date == date(2026, 11, 24)
    assert run.enqueued_at is not None


@pytest.mark.django_db
def test_a_slot_missed_beyond_the_grace_is_recorded_once_as_failed_and_rerunnable(
    settings, django_capture_on_commit_callbacks
):
    orm_broker_only()
    settings.SCHEDULE_MISSED_SLOT_GRACE_MINUTES = 180
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=3
    )
    dispatch(now=jst(2026, 11, 25, 1))  # last beat, then the cluster is down until 7:00
    with django_capture_on_commit_callbacks(execute=True):
        report = dispatch(now=jst(2026, 11, 25, 7))
        dispatch(now=jst(2026, 11, 25, 7, 1))
    assert mail.outbox == []  # the dispatcher sends nothing itself: a task on the workers does
    work(WORKERS, SEND_RUN_MAIL)

    assert report.missed == 1
    (run,) = slot_runs(acme, ATTENDANCE)
    assert run.status == SyncRun.Status.FAILURE
    assert run.error_type == SyncRun.ErrorType.MISSED
    assert run.target_date == date(2026, 11, 24)
    assert "2026年11月25日 03時のスケジュール実行" in run.message
    assert "実行を見送りました" in run.message
    (error,) = run.errors.all()
    assert error.code == "missed"
    assert len(mail.outbox) == 2  # the contact's and support's
    assert "FAILURE" in mail.outbox[0].subject

    with time_machine.travel(jst(2026, 11, 25, 12), tick=False):
        request = rerun(run=run)
    assert request.created
    assert request.run.trigger == SyncRun.Trigger.RERUN
    assert request.run.rerun_of == run
    assert request.run.target_date == date(2026, 11, 24)


@pytest.mark.django_db
def test_without_an_earlier_heartbeat_nothing_is_recorded_as_missed():
    # A first deploy (or a first dispatch ever) must not flood every tenant with "missed" runs.
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=3
    )
    dispatch(now=jst(2026, 11, 25, 12))
    assert slot_runs(acme, ATTENDANCE) == []
    assert queued(func=SEND_RUN_MAIL) == []


@pytest.mark.django_db
def test_a_slot_run_created_inside_a_kot_window_waits_for_its_end():
    acme = scheduled_tenant(
        "acme", created=jst(2026, 11, 20), attendance_trigger=SCHEDULED, attendance_hour=8
    )
    dispatch(now=jst(2026, 11, 25, 7, 59))
    dispatch(now=jst(2026, 11, 25, 8, 40))  # the cluster was down from 8:00 to 8:40
    (run,) = slot_runs(acme, ATTENDANCE)
    assert run.status == SyncRun.Status.WAITING
    assert run.not_before == jst(2026, 11, 25, 10)
    assert run.enqueued_at is None
    assert "10:00以降に自動で実行します" in run.message

    report = dispatch(now=jst(2026, 11, 25, 10, 0, 5))
    run.refresh_from_db()
    assert report.enqueued == 1
    assert run.enqueued_at == jst(2026, 11, 25, 10, 0, 5)


@pytest.mark.django_db
def test_slots_are_jst_whatever_the_host_time_zone():
    acme = scheduled_tenant(
        "acme",
        created=jst(2026, 11, 20),
        attendance_trigger=SCHEDULED,
        attendance_hour=0,
        attendance_target_day="previous",
    )
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        with time_machine.travel(jst(2026, 11, 25, 0, 1), tick=False):
            dispatch()
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
    (run,) = slot_runs(acme, ATTENDANCE)
    assert run.slot == jst(2026, 11, 25, 0)
    assert run.target_date == date(2026, 11, 24)
