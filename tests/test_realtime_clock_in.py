"""Real-time clock-in (issue 15 items 1, 3–5): a recognition becomes a KOT clock-in within one
poll interval — also inside KOT's 08:30–10:00 window — exactly once, through the punch ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import time_machine

from integrations.models import ConnectSetting, PunchLedger, RealtimeState, SyncError, SyncRun
from integrations.services import ledger, realtime
from integrations.services.dispatch import dispatch
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.conftest import JST
from tests.sync_world import configure, only_records, punches, small_kot

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 24)
KOT_READS = ("GET /employees", "GET /daily-workings/timerecord")


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=JST)


@pytest.fixture
def rt(world, settings):
    """acme with real-time on (5 minutes, daily run at 03:00 in clock_in_out mode); KOT knows
    0042 and 0043; SenseLink's day starts empty; the fake KOT follows the travelled clock."""
    settings.READ_TIMEOUT_SECONDS = 0.5
    small_kot(
        world.sandbox,
        {"code": "0042", "last_name": "山田", "first_name": "太郎"},
        {"code": "0043", "last_name": "佐藤", "first_name": "花子"},
    )
    only_records(world.sandbox, DAY)
    world.sandbox.clock.clear()
    world.setting = configure(
        world.acme,
        realtime_clock_in=True,
        attendance_mode="clock_in_out",
        attendance_trigger="scheduled",
        attendance_hour=3,
    )
    # The settings date from before the day (a changed setting takes effect from its next slot).
    ConnectSetting.objects.filter(pk=world.setting.pk).update(updated_at=at(0, 0))
    return world


def poll_at(world, when: datetime) -> realtime.PollReport:
    with time_machine.travel(when, tick=False):
        return realtime.poll(setting_id=world.setting.pk)


def recognise(world, code: str, when: datetime) -> None:
    world.sandbox.senselink.add_record(when=when, job_number=code)


def kot_reads(world) -> int:
    counts = world.sandbox.request_counts()
    return sum(counts[name] for name in KOT_READS)


def realtime_run(world, day: date = DAY) -> SyncRun:
    return SyncRun.objects.get(tenant=world.acme, trigger="realtime", target_date=day)


def test_a_recognition_at_0845_becomes_a_clock_in_within_one_interval_with_no_kot_read(rt):
    # The keys are read before the window (the 08:00 poll), as on any working morning.
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45, 12))
    rt.sandbox.reset_counts()
    report = poll_at(rt, at(8, 49))  # the next poll, within 5 minutes
    assert report.posted == 1
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:12+09:00")]
    assert kot_reads(rt) == 0  # only the POST went to KOT inside the window
    assert rt.sandbox.request_counts()["GET /api/v5/record/list"] == 1
    row = PunchLedger.objects.get(employee_code="0042")
    assert (row.state, row.punch, row.working_date) == ("posted", "clock_in", DAY)
    run = realtime_run(rt)
    assert (run.status, run.kind, run.created_count) == ("collecting", "attendance", 1)
    assert run.get_trigger_display() == "リアルタイム"

    # Later recognitions of the day change nothing; a poll with nothing new costs one call.
    recognise(rt, "0042", at(8, 51))
    poll_at(rt, at(8, 54))
    rt.sandbox.reset_counts()
    assert poll_at(rt, at(8, 59)).posted == 0
    assert rt.sandbox.request_counts()["GET /api/v5/record/list"] == 1
    assert sum(rt.sandbox.request_counts().values()) == 1
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:12+09:00")]


def test_a_lost_answer_at_0850_is_settled_after_1000_with_the_punch_once(rt):
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 50))
    rt.sandbox.faults.add("kot", "timeout_after_store", path="timerecord/", method="POST", delay=2)
    poll_at(rt, at(8, 52))
    assert PunchLedger.objects.get(employee_code="0042").state == "unknown"
    assert len(punches(rt.sandbox, "0042")) == 1  # KOT stored it; we don't know

    recognise(rt, "0042", at(9, 30))
    rt.sandbox.reset_counts()
    poll_at(rt, at(9, 31))  # still inside the window: never sent again blindly, no read
    assert kot_reads(rt) == 0
    assert PunchLedger.objects.get(employee_code="0042").state == "unknown"

    report = poll_at(rt, at(10, 1))  # outside: KOT is read and the punch settled
    assert report.settled == 1
    assert PunchLedger.objects.get(employee_code="0042").state == "posted"
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:50:00+09:00")]


def test_a_lost_answer_kot_never_stored_is_sent_once_more_after_the_window(rt):
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 50))
    # Stands for an answer lost before KOT stored the punch: the row is unknown, KOT empty.
    with time_machine.travel(at(8, 52), tick=False):
        realtime.wake(rt.setting.pk)
    PunchLedger.objects.create(
        tenant=rt.acme,
        employee_code="0042",
        working_date=DAY,
        punch="clock_in",
        state="unknown",
        punch_time=at(8, 50),
        owner="poll:0:0",
        sent_at=at(8, 50, 1),
    )
    poll_at(rt, at(10, 1))
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:50:00+09:00")]
    assert PunchLedger.objects.get(employee_code="0042").state == "posted"


class WorkerDied(BaseException):
    """Stands for SIGKILL between the POST and the bookkeeping."""


def test_a_worker_killed_between_post_and_bookkeeping_leaves_the_punch_once(rt, monkeypatch):
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    real_mark = ledger.mark

    def die(**kwargs):
        raise WorkerDied()

    monkeypatch.setattr(ledger, "mark", die)
    with pytest.raises(WorkerDied):
        poll_at(rt, at(8, 46))
    monkeypatch.setattr(ledger, "mark", real_mark)
    assert len(punches(rt.sandbox, "0042")) == 1
    assert PunchLedger.objects.get(employee_code="0042").state == "sending"
    # A dead worker's poll lease runs out; inside the window nothing is sent again.
    RealtimeState.objects.update(poll_lease_until=None)
    poll_at(rt, at(8, 51))
    assert PunchLedger.objects.get(employee_code="0042").state == "unknown"
    assert len(punches(rt.sandbox, "0042")) == 1
    poll_at(rt, at(10, 5))
    assert PunchLedger.objects.get(employee_code="0042").state == "posted"
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]


def test_two_clusters_polling_the_same_tenant_post_each_clock_in_once(rt):
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    recognise(rt, "0043", at(8, 46))
    # Another cluster's poll holds the tenant: this one does nothing.
    with time_machine.travel(at(8, 47), tick=False):
        state = RealtimeState.objects.get(setting=rt.setting)
        RealtimeState.objects.filter(pk=state.pk).update(
            poll_lease_until=at(8, 47) + timedelta(minutes=5), poll_token=state.poll_token + 1
        )
    assert poll_at(rt, at(8, 47, 5)).status == "busy"
    assert rt.sandbox.kot.punches == []
    # The other cluster has reserved 0042 (its POST in flight) when its lease ran out, and
    # a second poll takes the tenant: it sends 0043 only.
    PunchLedger.objects.create(
        tenant=rt.acme,
        employee_code="0042",
        working_date=DAY,
        punch="clock_in",
        state="sending",
        punch_time=at(8, 45),
        owner=f"poll:{rt.setting.pk}:{state.poll_token + 1}",
        sent_at=at(8, 47),
    )
    RealtimeState.objects.update(poll_lease_until=at(8, 47, 30))
    report = poll_at(rt, at(8, 48))
    assert report.posted == 1
    assert punches(rt.sandbox, "0042") == []
    assert punches(rt.sandbox, "0043") == [("1", "2026-11-24T08:46:00+09:00")]


def test_a_poll_overlapping_the_daily_run_posts_each_clock_in_once(rt):
    """The daily run has read KOT (nothing there) when a poll posts the clock-in: the run's
    reservation meets the ledger row and does not post it again."""
    from integrations.services import attendance_sync
    from integrations.services.clients import kot_client, senselink_client

    recognise(rt, "0042", at(8, 45))
    recognise(rt, "0042", at(18, 40))
    with time_machine.travel(at(19, 0), tick=False):
        request = request_run(tenant=rt.acme, kind="attendance", target_date=DAY, enqueue=False)
        run = SyncRun.objects.get(pk=request.run.pk)
        kot, senselink = kot_client(rt.acme), senselink_client(rt.setting)
        plan = attendance_sync.plan_attendance(
            kot=kot,
            senselink=senselink,
            target_date=DAY,
            mode="clock_in_out",
            ledger_rows=ledger.rows_of_day(tenant_id=rt.acme.pk, working_date=DAY),
        )
        assert len(plan.to_post) == 2
    report = poll_at(rt, at(19, 0, 5))
    assert report.posted == 1, list(SyncError.objects.values_list("message", flat=True))
    with time_machine.travel(at(19, 0, 10), tick=False):
        outcome = attendance_sync.post_punches(kot=kot, plan=plan, run=run)
    assert (outcome.created, outcome.skipped) == (1, 1)
    assert punches(rt.sandbox, "0042") == [
        ("1", "2026-11-24T08:45:00+09:00"),
        ("2", "2026-11-24T18:40:00+09:00"),
    ]


def test_the_daily_run_after_a_day_of_polls_posts_only_the_clock_outs(rt):
    poll_at(rt, at(7, 0))
    recognise(rt, "0042", at(8, 45))
    recognise(rt, "0043", at(9, 10))
    poll_at(rt, at(9, 12))
    recognise(rt, "0042", at(18, 5))
    recognise(rt, "0043", at(19, 40))
    poll_at(rt, at(19, 45))
    assert len(rt.sandbox.kot.punches) == 2
    # Day over: the tick ends the real-time run; the 03:00 slot posts only the clock-outs.
    with time_machine.travel(at(3, 0, 5, day=DAY + timedelta(days=1)), tick=False):
        dispatch()
        run = realtime_run(rt)
        assert (run.status, run.created_count) == ("success", 2)
        assert run.finished_at is not None
        daily = SyncRun.objects.get(tenant=rt.acme, trigger="schedule", kind="attendance")
        daily = execute_run(run_id=daily.pk)
    assert (daily.status, daily.created_count, daily.skipped_count) == ("success", 2, 2)
    assert punches(rt.sandbox, "0042") == [
        ("1", "2026-11-24T08:45:00+09:00"),
        ("2", "2026-11-24T18:05:00+09:00"),
    ]
    assert PunchLedger.objects.filter(state="posted").count() == 4


def test_a_late_earlier_recognition_is_one_warning_and_a_late_first_one_is_posted(rt):
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(9, 0))
    poll_at(rt, at(9, 2))
    # A terminal that was offline uploads 08:40 (before the posted 09:00) and 0043's 08:41.
    recognise(rt, "0042", at(8, 40))
    recognise(rt, "0043", at(8, 41))
    report = poll_at(rt, at(9, 7))
    assert (report.posted, report.warnings) == (1, 1)
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T09:00:00+09:00")]
    assert punches(rt.sandbox, "0043") == [("1", "2026-11-24T08:41:00+09:00")]
    recognise(rt, "0042", at(8, 39))
    assert poll_at(rt, at(9, 12)).warnings == 0  # once
    warning = SyncError.objects.get(code="earlier_recognition")
    assert warning.severity == "warning" and warning.employee_code == "0042"
    assert "09:00:00" in warning.message and "08:40:00" in warning.message
    assert realtime_run(rt).warning_count == 1


def test_an_unknown_employee_number_is_reported_once_per_day(rt):
    poll_at(rt, at(10, 0))
    recognise(rt, "9999", at(10, 10))
    poll_at(rt, at(10, 12))
    recognise(rt, "9999", at(10, 20))
    poll_at(rt, at(10, 22))
    rt.sandbox.senselink.add_record(when=at(10, 30), job_number="9999")
    poll_at(rt, at(10, 40))
    errors = SyncError.objects.filter(code="unknown_employee", employee_code="9999")
    assert errors.count() == 1
    assert realtime_run(rt).failed_count == 1


def test_the_dispatcher_queues_one_poll_per_tenant_per_interval(
    rt, django_capture_on_commit_callbacks
):
    from integrations import queue

    sent: list = []
    with (
        pytest.MonkeyPatch.context() as patch,
        django_capture_on_commit_callbacks(execute=True),
    ):
        patch.setattr(queue, "enqueue", lambda jobs, **kw: sent.extend(jobs) or len(jobs))
        with time_machine.travel(at(8, 0), tick=False):
            assert realtime.tick(now=at(8, 0)).queued == 1
            assert realtime.tick(now=at(8, 1)).queued == 0  # coalesced: one queued
            assert realtime.wake(rt.setting.pk) is False
        poll_at(rt, at(8, 2))
        assert realtime.tick(now=at(8, 4)).queued == 0
        assert realtime.tick(now=at(8, 7)).queued == 1  # the interval is over
    assert [job.func for job in sent] == [queue.REALTIME_POLL] * 2
    assert all(job.args == (rt.setting.pk,) for job in sent)


def test_real_time_needs_a_scheduled_attendance_sync_in_clock_in_out_mode(rt):
    from django.core.exceptions import ValidationError

    setting = rt.setting
    setting.attendance_trigger = "manual"
    with pytest.raises(ValidationError) as raised:
        setting.full_clean()
    assert "realtime_clock_in" in raised.value.error_dict
    setting.attendance_mode = "clock_in"
    setting.full_clean()  # clock-in only: the polls do everything


def test_the_pages_show_real_time_as_a_schedule_status_with_the_last_poll(rt, client):
    from django.conf import settings
    from django.urls import reverse

    from integrations.models import TermsConsent
    from tests.test_tenant_settings_form import form_data

    TermsConsent.objects.create(user=rt.acme_user, tenant=rt.acme, version=settings.TERMS_VERSION)
    client.force_login(rt.acme_user)
    url = reverse("portal:connect_settings", args=[rt.setting.pk])
    page = client.get(url).content.decode()
    assert "出勤は数分以内に、退勤は翌日の勤怠連携で打刻されます" in page
    # Refused without a scheduled attendance sync in clock_in_out mode, nothing saved.
    rt.setting.realtime_clock_in = False
    rt.setting.save()
    rt.client = client
    rt.url = url
    page = client.post(
        url,
        form_data(
            rt, realtime_clock_in="on", realtime_interval_minutes="3", attendance_trigger="manual"
        ),
    ).content.decode()
    assert "勤怠連携をスケジュール実行にしてください" in page
    assert ConnectSetting.objects.get(pk=rt.setting.pk).realtime_clock_in is False
    response = client.post(
        url, form_data(rt, realtime_clock_in="on", realtime_interval_minutes="3")
    )
    assert response.status_code == 302
    saved = ConnectSetting.objects.get(pk=rt.setting.pk)
    assert (saved.realtime_clock_in, saved.realtime_interval_minutes) == (True, 3)

    listing = client.get(reverse("portal:connect_list")).content.decode()
    assert "出勤: リアルタイム(3分毎)" in listing
    assert "最終確認: まだありません" in listing
    RealtimeState.objects.create(
        setting=saved, last_polled_at=at(10, 5, 30, day=date(2026, 11, 25))
    )
    listing = client.get(reverse("portal:connect_list")).content.decode()
    assert "最終確認: 2026年11月25日 10:05" in listing or "最終確認: 2026-11-25 10:05" in listing


def test_support_sees_real_time_in_the_admin(rt, admin_client):
    RealtimeState.objects.create(setting=rt.setting, last_polled_at=at(10, 5, 30))
    page = admin_client.get(f"/admin/integrations/tenant/{rt.acme.pk}/change/").content.decode()
    assert "リアルタイム出勤連携" in page
    assert "2026-11-24 10:05:30" in page
    listing = admin_client.get("/admin/integrations/tenant/").content.decode()
    assert "出勤: リアルタイム(5分毎)" in listing
    assert admin_client.get("/admin/integrations/punchledger/").status_code == 200


def test_the_log_shows_one_realtime_row_per_day_not_one_per_poll(rt, client):
    from django.conf import settings
    from django.urls import reverse

    from integrations.models import TermsConsent

    poll_at(rt, at(8, 0))
    for minute in (40, 45, 50):
        recognise(rt, "0042" if minute == 40 else "0043", at(8, minute))
        poll_at(rt, at(8, minute + 1))
    assert SyncRun.objects.filter(tenant=rt.acme).count() == 1
    TermsConsent.objects.create(user=rt.acme_user, tenant=rt.acme, version=settings.TERMS_VERSION)
    client.force_login(rt.acme_user)
    page = client.get(reverse("portal:connect_list")).content.decode()
    assert "(リアルタイム)" in page
    assert "受付中" in page
    assert "登録 2" in page
