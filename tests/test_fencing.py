"""Fencing (issue 13, item 1): every write of a run is allowed only while the run is still this
worker's. The run's ``attempt`` (set by claim_run) is its lease token; a worker whose run was
resumed elsewhere stops before its next write, records nothing and mails nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from integrations.models import SyncRun
from integrations.queue import SEND_RUN_MAIL, WORKERS
from integrations.services.attendance_sync import sync_attendance
from integrations.services.clients import connect_setting, kot_client, senselink_client
from integrations.services.dispatch import dispatch, reap_dead_runs
from integrations.services.execution import execute_run
from integrations.services.leases import Lease
from integrations.services.runs import (
    Outcome,
    RunTaken,
    claim_run,
    end_run,
    finish_run,
    request_run,
)
from tests.live_world import wait_for
from tests.queue_helpers import orm_broker_only, queued, work
from tests.sync_world import DAY, at, configure, only_records, small_kot
from tests.world import make_acme

STAFF = [{"code": f"{i:04}", "last_name": "社員", "first_name": f"{i}号"} for i in range(1, 9)]


def eight_staff(sandbox, tenant, day) -> None:
    """8 KOT employees, each recognised at 08:0i and 18:0i: 16 punches, all known (SUCCESS)."""
    small_kot(sandbox, *STAFF)
    configure(tenant, attendance_mode="clock_in_out")
    records = []
    for i in range(1, 9):
        records += [(f"{i:04}", at(8, i, day=day)), (f"{i:04}", at(18, i, day=day))]
    only_records(sandbox, day, *records)


def punch_counts(sandbox) -> Counter:
    return Counter((p["employeeKey"], p["date"], p["code"], p["time"]) for p in sandbox.kot.punches)


def take_over(run: SyncRun) -> SyncRun:
    """What the reaper and a second worker do to a run: resumed, then claimed again."""
    reap_dead_runs(now=timezone.now() + timedelta(seconds=10**6))
    again = claim_run(run_id=run.pk)
    assert again is not None and again.attempt == run.attempt + 1
    return again


# --- (b) a heartbeat or guard that finds the run taken aborts before the next write -------------


@pytest.mark.django_db
def test_a_worker_whose_run_was_taken_writes_nothing(world):
    eight_staff(world.sandbox, world.acme, DAY)
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    mine = claim_run(run_id=request.run.pk)
    lease = Lease(mine)
    theirs = take_over(mine)

    setting = connect_setting(world.acme)
    kot, senselink = kot_client(world.acme), senselink_client(setting)
    lease.last -= lease.window  # this worker has not renewed for half a lease (it was stalled)
    with pytest.raises(RunTaken):
        sync_attendance(
            run=mine, kot=kot, senselink=senselink, setting=setting, beat=lease, guard=lease.guard
        )
    assert world.sandbox.kot.punches == []  # it read, then stopped before its first POST

    # Nor can it record an end: the bookkeeping UPDATE is conditional on its token.
    with pytest.raises(RunTaken):
        finish_run(run=mine, outcome=Outcome(created=16))
    assert not end_run(run=mine, status="failure", code="x", message="x", token=mine.attempt)
    row = SyncRun.objects.get(pk=mine.pk)
    assert (row.status, row.attempt, row.created_count) == ("running", theirs.attempt, 0)
    assert not row.errors.exists()
    assert queued(func=SEND_RUN_MAIL) == [] and mail.outbox == []
    # Its heartbeat raises too (RunTaken is a BaseException: `except Exception` can't eat it).
    lease.last -= lease.every
    with pytest.raises(RunTaken):
        lease()
    assert not issubclass(RunTaken, Exception)


@pytest.mark.django_db
def test_a_fresh_lease_guards_writes_without_a_query(world, django_assert_num_queries):
    request = request_run(tenant=world.acme, kind="employee", enqueue=False)
    lease = Lease(claim_run(run_id=request.run.pk))
    with django_assert_num_queries(0):
        for _ in range(1000):
            lease.guard()
            lease()
    lease.last -= lease.window
    with django_assert_num_queries(1):  # stale: one conditional UPDATE renews it
        lease.guard()
    assert lease.renewals == 1


# --- (a) the double-punch scenario of issue 13 ---------------------------------------------------


@pytest.fixture
def live(transactional_db, noon, sandbox, settings):
    """acme on the sandbox, in a committed database threads can share. The clock is pinned at
    noon and runs on (time-machine moves it for every thread): the lease runs out in real
    seconds, and no KOT window is ever near."""
    settings.KOT_API_BASE_URL = sandbox.kot_url
    sandbox.acme = make_acme(sandbox=sandbox)
    return sandbox


def test_a_slow_read_past_the_lease_then_a_resume_meanwhile_posts_each_punch_once(
    live, settings, caplog
):
    """KOT holds worker 1's punch read past its lease; the reaper resumes the run and worker 2
    posts every punch; worker 1 then wakes with its stale read: it posts nothing, records
    nothing and mails nothing. Each punch is in KOT once, and one run (the same row) ended."""
    orm_broker_only()
    settings.SYNC_RUN_LEASE_SECONDS = 2
    day = timezone.localdate() - timedelta(days=1)
    eight_staff(live, live.acme, day)
    slow = live.faults.add(
        "kot", "timeout_after_store", path="/daily-workings/timerecord", method="GET", delay=6.0
    )
    request = request_run(tenant=live.acme, kind="attendance", target_date=day, enqueue=False)
    first: dict = {}

    def worker_one() -> None:
        try:
            first["result"] = execute_run(run_id=request.run.pk)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            first["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=worker_one)
    thread.start()
    try:
        wait_for(lambda: slow.fired == 1, timeout=30, what="worker 1's slow KOT read")
        time.sleep(settings.SYNC_RUN_LEASE_SECONDS + 0.5)  # its lease runs out meanwhile
        report = dispatch()
        assert report.reaped == 1
        resumed = SyncRun.objects.get(pk=request.run.pk)
        assert (resumed.status, resumed.resumes) == ("queued", 1)

        second = execute_run(run_id=request.run.pk)  # worker 2 takes the same run
        assert second is not None and second.attempt == 2
        assert second.status == SyncRun.Status.SUCCESS, second.message
        assert second.created_count == 16
        assert thread.is_alive(), "worker 1 must still be held in its read"
    finally:
        thread.join(timeout=30)
    assert "error" not in first, first.get("error")
    assert first["result"] is None  # worker 1 found its run taken: nothing recorded
    assert f"run {request.run.pk} (attempt 1) is no longer ours" in caplog.text

    counts = punch_counts(live)
    assert len(counts) == 16 and set(counts.values()) == {1}
    run = SyncRun.objects.get(pk=request.run.pk)
    assert (run.status, run.attempt, run.created_count) == ("success", 2, 16)
    assert SyncRun.objects.count() == 1
    work(WORKERS, SEND_RUN_MAIL)
    assert mail.outbox == []  # a success, and worker 1 mailed nothing


def test_a_slow_read_past_the_lease_with_a_failing_rerun_sends_one_mail(live, settings):
    """The same race where the run that finishes is PARTIAL: exactly one failure mail each
    (the contact's and support's)."""
    orm_broker_only()
    settings.SYNC_RUN_LEASE_SECONDS = 2
    day = timezone.localdate() - timedelta(days=1)
    eight_staff(live, live.acme, day)
    live.senselink.add_record(when=at(9, 0, day=day), job_number="9999", user_type=1)
    slow = live.faults.add(
        "kot", "timeout_after_store", path="/daily-workings/timerecord", method="GET", delay=6.0
    )
    request = request_run(tenant=live.acme, kind="attendance", target_date=day, enqueue=False)
    thread = threading.Thread(
        target=lambda: (execute_run(run_id=request.run.pk), connection.close())
    )
    thread.start()
    try:
        wait_for(lambda: slow.fired == 1, timeout=30, what="worker 1's slow KOT read")
        time.sleep(settings.SYNC_RUN_LEASE_SECONDS + 0.5)
        assert dispatch().reaped == 1
        second = execute_run(run_id=request.run.pk)
        assert second.status == SyncRun.Status.PARTIAL, second.message
    finally:
        thread.join(timeout=30)
    work(WORKERS, SEND_RUN_MAIL)
    counts = punch_counts(live)
    assert len(counts) == 16 and set(counts.values()) == {1}
    customer, support = mail.outbox  # one mail each, not one per worker
    assert f"#{request.run.pk} PARTIAL" in customer.subject and support.to == [
        settings.SUPPORT_EMAIL
    ]


# --- a stopping worker hands its run back (in-process; a real qcluster: test_sigterm_handback) --


@pytest.fixture
def stop_flag():
    from integrations import queue

    yield queue.request_stop
    queue._STOPPING.clear()


@pytest.mark.django_db
def test_a_stopping_worker_hands_its_run_back_before_its_next_post(
    world, settings, monkeypatch, stop_flag, django_capture_on_commit_callbacks
):
    from connectors.kot import KotClient

    orm_broker_only()
    settings.SYNC_CONCURRENCY = 1
    settings.KOT_MAX_CONCURRENCY = 1  # one POST out at a time: "the next POST" is well defined
    eight_staff(world.sandbox, world.acme, DAY)
    real_post = KotClient.register_punch
    posted = Counter()

    def post_then_sigterm(self, **kwargs):  # SIGTERM arrives while the third POST is out
        posted["n"] += 1
        n = posted["n"]
        answer = real_post(self, **kwargs)
        if n == 3:
            stop_flag()
        return answer

    monkeypatch.setattr(KotClient, "register_punch", post_then_sigterm)
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert execute_run(run_id=request.run.pk) is None
    run = SyncRun.objects.get(pk=request.run.pk)
    assert (run.status, run.attempt, run.resumes) == ("queued", 1, 1)
    assert "自動で再開" in run.message and run.heartbeat_at is None and run.enqueued_at is None
    assert not run.errors.exists() and queued(func=SEND_RUN_MAIL) == []
    assert len(world.sandbox.kot.punches) == 3  # the POST in flight landed; no further one left

    # While stopping, a worker takes no new run either.
    other = request_run(tenant=world.acme, kind="employee", enqueue=False).run
    assert execute_run(run_id=other.pk) is None
    assert SyncRun.objects.get(pk=other.pk).status == "queued"

    from integrations import queue

    queue._STOPPING.clear()  # a restarted cluster
    monkeypatch.setattr(KotClient, "register_punch", real_post)
    result = execute_run(run_id=run.pk)
    assert (result.status, result.attempt) == ("success", 2)
    assert (result.created_count, result.skipped_count) == (13, 3)
    counts = punch_counts(world.sandbox)
    assert len(counts) == 16 and set(counts.values()) == {1}
    work(WORKERS, SEND_RUN_MAIL)
    assert mail.outbox == []
