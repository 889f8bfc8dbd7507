"""A run whose worker died is noticed once its heartbeat lease runs out and resumed
automatically (same run, back to the queue) up to SYNC_MAX_RESUMES times, then failed with a
clear message and one mail. Resuming leaves each punch in KOT exactly once."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from integrations.models import SyncRun
from integrations.queue import EXECUTE_RUN, SEND_RUN_MAIL, WORKERS
from integrations.services.dispatch import dispatch
from integrations.services.execution import execute_run
from integrations.services.runs import (
    RESUME_MESSAGE,
    WORKER_LOST_AGAIN_MESSAGE,
    WORKER_LOST_MESSAGE,
    claim_run,
    request_run,
)
from tests.live_world import process_env, skip_near_a_kot_window, start_manage, wait_for
from tests.queue_helpers import orm_broker_only, queued, work
from tests.sync_world import DAY
from tests.world import make_acme


def each_punch_once(sandbox) -> bool:
    counts = Counter((p["employeeKey"], p["date"], p["code"]) for p in sandbox.kot.punches)
    return bool(counts) and set(counts.values()) == {1}


def lease(settings) -> timedelta:
    return timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)


@pytest.mark.django_db
def test_a_running_run_with_a_stale_heartbeat_is_resumed_automatically(
    world, settings, django_capture_on_commit_callbacks
):
    orm_broker_only()
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    run = claim_run(run_id=request.run.pk)
    assert run.status == SyncRun.Status.RUNNING

    assert dispatch(now=timezone.now() + lease(settings) - timedelta(seconds=30)).reaped == 0
    with django_capture_on_commit_callbacks(execute=True):
        report = dispatch(now=timezone.now() + lease(settings) + timedelta(seconds=30))
    work(WORKERS, SEND_RUN_MAIL)

    assert report.reaped == 1
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED  # the same run, back in the queue
    assert (run.attempt, run.resumes) == (1, 1)
    assert run.message == RESUME_MESSAGE.format(n=1)
    assert "自動で再開" in run.message
    assert run.finished_at is None and run.heartbeat_at is None
    assert not run.errors.exists()
    assert mail.outbox == []  # nobody needs to act
    # The same dispatch handed it to the workers again.
    assert report.enqueued == 1
    assert [t["args"] for t in queued(WORKERS, EXECUTE_RUN)] == [(run.pk,)]


@pytest.mark.django_db
def test_a_resumed_run_finishes_and_each_punch_lands_once(world, settings):
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    claim_run(run_id=request.run.pk)
    dispatch(now=timezone.now() + lease(settings) + timedelta(seconds=30))

    result = execute_run(run_id=request.run.pk)

    assert result.pk == request.run.pk and result.attempt == 2
    assert result.status in (SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL)
    assert set(result.errors.values_list("code", flat=True)) <= {"unknown_employee"}
    assert result.created_count > 0
    assert each_punch_once(world.sandbox)
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.RERUN).exists()


@pytest.mark.django_db
def test_resumed_up_to_the_limit_then_failed_with_one_mail(
    world, settings, django_capture_on_commit_callbacks
):
    orm_broker_only()
    settings.SYNC_MAX_RESUMES = 2
    request = request_run(tenant=world.acme, kind="employee", enqueue=False)
    now = timezone.now()
    for n in (1, 2):
        assert claim_run(run_id=request.run.pk, now=now) is not None
        now += lease(settings) + timedelta(seconds=30)
        with django_capture_on_commit_callbacks(execute=True):
            assert dispatch(now=now).reaped == 1
        run = SyncRun.objects.get(pk=request.run.pk)
        assert (run.status, run.resumes) == (SyncRun.Status.QUEUED, n)
    assert claim_run(run_id=request.run.pk, now=now) is not None
    now += lease(settings) + timedelta(seconds=30)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch(now=now).reaped == 1
    work(WORKERS, SEND_RUN_MAIL)

    run = SyncRun.objects.get(pk=request.run.pk)
    assert run.status == SyncRun.Status.FAILURE
    assert run.error_type == SyncRun.ErrorType.WORKER_LOST
    assert (run.attempt, run.resumes) == (3, 2)
    assert run.message == WORKER_LOST_AGAIN_MESSAGE.format(n=2)
    (error,) = run.errors.all()
    assert (error.code, error.message) == ("worker_lost", run.message)
    message, _support = mail.outbox  # the contact's and support's, once each
    assert message.subject == f"[連携エラー] acme 株式会社 社員情報連携 #{run.pk} FAILURE"
    assert "再実行してください" in message.body
    # Ended once: a later dispatch finds nothing more to do, and sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch(now=now + 2 * lease(settings)).reaped == 0
    assert queued(func=SEND_RUN_MAIL) == []
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_with_no_resumes_allowed_the_reaper_fails_at_once(
    world, settings, django_capture_on_commit_callbacks
):
    orm_broker_only()
    settings.SYNC_MAX_RESUMES = 0
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    claim_run(run_id=request.run.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch(now=timezone.now() + lease(settings) + timedelta(seconds=30)).reaped == 1
    work(WORKERS, SEND_RUN_MAIL)
    run = SyncRun.objects.get(pk=request.run.pk)
    assert (run.status, run.error_type) == (SyncRun.Status.FAILURE, "worker_lost")
    assert run.message == WORKER_LOST_MESSAGE
    (error,) = run.errors.all()
    assert error.target_date == DAY
    assert len(mail.outbox) == 2  # the contact's and support's


@pytest.mark.django_db
def test_a_run_whose_worker_still_beats_is_left_alone(world, settings):
    request = request_run(tenant=world.acme, kind="employee", enqueue=False)
    claim_run(run_id=request.run.pk)
    later = timezone.now() + lease(settings) + timedelta(minutes=1)
    SyncRun.objects.filter(pk=request.run.pk).update(heartbeat_at=later - timedelta(seconds=10))

    assert dispatch(now=later).reaped == 0
    assert SyncRun.objects.get(pk=request.run.pk).status == SyncRun.Status.RUNNING


# --- a real worker, really killed -------------------------------------------------------------


@pytest.fixture
def live(transactional_db, sandbox, settings):
    """acme on the sandbox, on the real clock, in a committed database a subprocess can read."""
    skip_near_a_kot_window()
    settings.KOT_API_BASE_URL = sandbox.kot_url
    sandbox.acme = make_acme(sandbox=sandbox)
    return sandbox


@pytest.mark.slow  # a run_sync process, killed
def test_a_killed_run_sync_process_is_resumed_without_duplicate_punches(live, settings, tmp_path):
    day = live.day - timedelta(days=1)
    live.latency = 0.3  # slow enough to be killed half-way through its POSTs
    process = start_manage(
        "run_sync",
        "attendance",
        "--tenant",
        "acme",
        "--date",
        day.isoformat(),
        env=process_env(live, SYNC_CONCURRENCY="2"),
        log=tmp_path / "run_sync.log",
    )
    try:
        wait_for(
            lambda: len(live.kot.punches) >= 3 or process.poll() is not None,
            timeout=60,
            what="the first punches in KOT",
        )
        assert process.poll() is None, (tmp_path / "run_sync.log").read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # Requests the dead process had already sent still land: wait until KOT is quiet.
    seen = []

    def quiet():
        seen.append(len(live.kot.punches))
        return len(seen) > 10 and len(set(seen[-10:])) == 1

    wait_for(quiet, timeout=30, every=0.1, what="KOT to settle")
    live.latency = 0.0
    killed = SyncRun.objects.get(tenant=live.acme)
    assert killed.status == SyncRun.Status.RUNNING  # nobody recorded an end: the process died
    punched_before = len(live.kot.punches)
    assert punched_before >= 3

    # Within the lease the run is left alone; past it, the dispatcher resumes it.
    assert dispatch().reaped == 0
    assert dispatch(now=timezone.now() + lease(settings) + timedelta(minutes=1)).reaped == 1
    killed.refresh_from_db()
    assert killed.status == SyncRun.Status.QUEUED
    assert killed.resumes == 1

    result = execute_run(run_id=killed.pk)  # the next worker takes the same run

    # PARTIAL only because the sandbox's records include numbers KOT does not know.
    assert result.pk == killed.pk and result.attempt == 2
    assert result.status == SyncRun.Status.PARTIAL, result.message
    assert set(result.errors.values_list("code", flat=True)) == {"unknown_employee"}
    assert result.skipped_count >= punched_before  # what the dead worker posted is not re-posted
    assert result.created_count + result.skipped_count == len(live.kot.punches)
    assert each_punch_once(live)
