"""Exactly once with two writers (issue 18, findings 1–3): the attendance run and the real-time
poll meet on the punch ledger, and each punch reaches KOT once.

Each test is one of the interleavings that stored a clock-in twice before the one sending
protocol (services/punches.py): a stale read taking over a lost answer, a live sender's rows
expired by age, and a 5xx after storing sent again blindly. The sandbox's KOT stores punches as
POSTed (duplicates included), so "once" is read from what it holds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from integrations.models import PunchLedger, SyncRun
from integrations.services import attendance_sync, ledger, realtime
from integrations.services.clients import kot_client, senselink_client
from integrations.services.execution import execute_run
from integrations.services.leases import Lease
from integrations.services.runs import RunTaken, claim_run, request_run
from tests.sync_world import DAY, at, poll_at, punches, recognise

pytestmark = pytest.mark.django_db


def plan_at(world, when):
    """The attendance run's read at ``when``: the ledger seen first, then KOT."""
    with time_machine.travel(when, tick=False):
        request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
        run = claim_run(run_id=request.run.pk)
        kot, senselink = kot_client(world.acme), senselink_client(world.setting)
        plan = attendance_sync.plan_attendance(
            kot=kot,
            senselink=senselink,
            target_date=DAY,
            mode="clock_in_out",
            seen=ledger.seen_of_day(tenant_id=world.acme.pk, working_date=DAY),
        )
    return run, kot, plan


def row(code: str = "0042", punch: str = "clock_in") -> PunchLedger:
    return PunchLedger.objects.get(employee_code=code, punch=punch)


def test_a_stale_read_never_takes_over_a_lost_answer(rt):
    """Finding 1: the run read KOT (empty); then a poll posted the clock-in, KOT stored it and
    the answer was lost (row unknown). The run's older read must not take the row over."""
    poll_at(rt, at(8, 0))  # the KOT keys, read before the window
    recognise(rt, "0042", at(8, 45))
    recognise(rt, "0042", at(18, 40))
    run, kot, plan = plan_at(rt, at(19, 0))
    assert [p.punch for p in plan.to_post] == ["clock_in", "clock_out"]  # KOT was empty

    rt.sandbox.faults.add("kot", "timeout_after_store", path="timerecord/", method="POST", delay=2)
    poll_at(rt, at(19, 0, 5))
    assert row().state == "unknown" and len(punches(rt.sandbox, "0042")) == 1

    with time_machine.travel(at(19, 0, 10), tick=False):
        outcome = attendance_sync.post_punches(
            kot=kot, plan=plan, writer=attendance_sync.writer_for(run)
        )
    assert (outcome.created, outcome.skipped) == (1, 1)  # the clock-out; the clock-in left
    assert punches(rt.sandbox, "0042") == [
        ("1", "2026-11-24T08:45:00+09:00"),
        ("2", "2026-11-24T18:40:00+09:00"),
    ]
    # The next settlement reads KOT after the row became unknown: found, posted, not sent.
    rt.sandbox.reset_counts()
    report = poll_at(rt, at(19, 6))
    assert report.settled == 1 and row().state == "posted"
    assert rt.sandbox.request_counts()["POST /v1.0/daily-workings/timerecord/{key}"] == 0
    assert len(punches(rt.sandbox, "0042")) == 2


def test_an_unknown_row_seen_before_the_read_is_settled_by_that_read(rt):
    """The other side of finding 1: a row already unknown when the run looked at the ledger is
    settled by the run's own (later) KOT read — found: posted, nothing sent."""
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    rt.sandbox.faults.add("kot", "timeout_after_store", path="timerecord/", method="POST", delay=2)
    poll_at(rt, at(8, 50))
    assert row().state == "unknown"
    run, kot, plan = plan_at(rt, at(19, 0))
    assert plan.found == [("0042", DAY, "clock_in")] and plan.to_post == []
    with time_machine.travel(at(19, 0, 10), tick=False):
        attendance_sync.post_punches(kot=kot, plan=plan, writer=attendance_sync.writer_for(run))
    assert row().state == "posted"
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]


def held_by_a_run(world, when, *, code: str = "0042") -> SyncRun:
    """A running attendance run that holds 0042's clock-in (reserved and POSTed at ``when``)."""
    with time_machine.travel(when, tick=False):
        request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
        run = claim_run(run_id=request.run.pk)
    PunchLedger.objects.create(
        tenant=world.acme,
        employee_code=code,
        working_date=DAY,
        punch="clock_in",
        state="sending",
        punch_time=at(8, 45),
        owner=f"run:{run.pk}:{run.attempt}",
        run=run,
        reserved_at=when,
        sent_at=when,
    )
    return run


def test_a_live_senders_rows_never_expire_by_age(rt):
    """Finding 2: a run still posting long after it reserved its rows (throttling) holds them:
    a poll neither expires nor posts them, however old they are."""
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    run = held_by_a_run(rt, at(19, 0))
    for minutes in (4, 8, 12):  # the run's heartbeat goes on; its rows grow older than the lease
        SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=at(19, minutes))
        poll_at(rt, at(19, minutes, 30))
        assert (row().state, row().owner) == ("sending", f"run:{run.pk}:1")
    assert punches(rt.sandbox, "0042") == []  # the run's POST is its own; the poll sent nothing
    assert SyncRun.objects.get(pk=run.pk).status == "running"


def test_a_dead_senders_rows_are_taken_only_after_it_is_fenced(rt):
    """A run whose heartbeat is older than the lease is reaped exactly as the reaper would (its
    next renewal fails: it sends nothing more) before a poll takes its row: unknown, then
    settled by the poll's own KOT read."""
    poll_at(rt, at(8, 0))
    recognise(rt, "0042", at(8, 45))
    run = held_by_a_run(rt, at(19, 0))
    with time_machine.travel(at(19, 0), tick=False):
        lease = Lease(run, every=0)
    poll_at(rt, at(19, 6))  # the heartbeat of 19:00 is older than the 300 s lease
    assert SyncRun.objects.get(pk=run.pk).status == "queued"  # resumed, as the reaper does
    with pytest.raises(RunTaken):
        lease.renew()  # the old worker can no longer renew, so it sends nothing more
    assert row().state in ("posted", "unknown")
    # KOT had nothing (the dead run's POST never arrived): the poll's read found it absent
    # after the row became unknown, and sent it once.
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]
    assert row().state == "posted"


@pytest.mark.parametrize("inside_window", [False, True], ids=["at-1010", "at-0850"])
def test_a_5xx_after_storing_is_settled_by_a_read_never_sent_again(rt, inside_window):
    """Finding 3: a gateway's 502 after KOT stored the punch: the row is unknown, and the next
    poll outside KOT's windows reads KOT (found) instead of sending it again."""
    poll_at(rt, at(8, 0))
    moment = at(8, 50) if inside_window else at(10, 10)
    recognise(rt, "0042", moment)
    rt.sandbox.faults.add("kot", "gateway_after_store", path="timerecord/", method="POST")
    poll_at(rt, moment + timedelta(minutes=2))
    assert row().state == "unknown" and len(punches(rt.sandbox, "0042")) == 1
    poll_at(rt, moment + timedelta(minutes=7))  # 08:57 still in the window: nothing is sent
    if inside_window:
        assert row().state == "unknown"
        poll_at(rt, at(10, 1))
    assert row().state == "posted"
    assert len(punches(rt.sandbox, "0042")) == 1
    assert rt.sandbox.request_counts()["POST /v1.0/daily-workings/timerecord/{key}"] == 1


def test_the_attendance_run_reads_back_a_5xx_after_storing(rt):
    """The run meets the same 502: it reads KOT back right away, finds the punch, counts it."""
    recognise(rt, "0042", at(8, 45))
    rt.sandbox.faults.add("kot", "gateway_after_store", path="timerecord/", method="POST")
    with time_machine.travel(at(3, 0, day=DAY + timedelta(days=1)), tick=True):
        request = request_run(tenant=rt.acme, kind="attendance", target_date=DAY, enqueue=False)
        result = execute_run(run_id=request.run.pk)
    assert (result.status, result.created_count) == ("success", 1)
    assert row().state == "posted"
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]


def test_a_lost_answer_to_the_run_is_never_resent_by_it(rt):
    """A POST that was refused by a gateway before KOT stored it: the run's read-back finds it
    absent, marks it failed (known not stored) and says so; the rerun posts it once."""
    recognise(rt, "0042", at(8, 45))
    rt.sandbox.faults.add("kot", "http500_html", path="timerecord/", method="POST")
    with time_machine.travel(at(3, 0, day=DAY + timedelta(days=1)), tick=True):
        request = request_run(tenant=rt.acme, kind="attendance", target_date=DAY, enqueue=False)
        result = execute_run(run_id=request.run.pk)
        assert result.status == "failure" and row().state == "failed"
        assert "登録されていないことを確認しました" in result.errors.get().message
        from integrations.services.reruns import rerun

        request = rerun(run=result, user=None)
        request.run.refresh_from_db()
        # A rerun waits for its backoff like any new run only when KOT said so; this one is due.
        again = execute_run(run_id=request.run.pk)
    assert (again.status, again.created_count) == ("success", 1)
    assert punches(rt.sandbox, "0042") == [("1", "2026-11-24T08:45:00+09:00")]


def test_a_flood_of_wakes_costs_one_poll_per_spacing(rt, settings, monkeypatch):
    """Someone who knows the push URL sends a flood: wakes are coalesced (one queued poll), and
    a queued poll starts no sooner than REALTIME_MIN_POLL_SPACING_SECONDS after the last one."""
    from integrations.services import poll_state

    settings.REALTIME_MIN_POLL_SPACING_SECONDS = 2.0
    waits: list[float] = []
    monkeypatch.setattr(realtime.monotonic_time, "sleep", waits.append)
    with time_machine.travel(at(11, 0), tick=False):
        queued = [poll_state.wake(rt.setting.pk) for _ in range(50)]
        assert queued.count(True) == 1  # coalesced: one queued poll for fifty pushes
        realtime.poll(setting_id=rt.setting.pk, spaced=True)
    assert waits == []  # the first poll of a while starts at once
    with time_machine.travel(at(11, 0, 1), tick=False):
        assert poll_state.wake(rt.setting.pk) is True
        assert poll_state.wait_before_claim(rt.setting.pk, timezone.now()) == 1.0
        realtime.poll(setting_id=rt.setting.pk, spaced=True)
    assert waits == [1.0]  # the next one waits out the spacing (bounded by it)
