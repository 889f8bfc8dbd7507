"""Handing out due work: each due run is enqueued once; runs not yet due wait; postponed runs
are handed out again when due; a lost task is replaced once the broker's queue is empty."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django_q.models import OrmQ

from integrations.models import SyncRun
from integrations.services.dispatch import dispatch
from integrations.services.runs import claim_run, postpone_run, request_run
from tests.conftest import JST
from tests.sync_world import DAY
from tests.world import make_acme

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)


@pytest.fixture
def acme(settings):
    if "orm" not in settings.Q_CLUSTER:
        pytest.skip("these tests read the ORM broker's queue")
    return make_acme()


def queued_tasks() -> int:
    return OrmQ.objects.count()


def request(tenant, **kwargs) -> SyncRun:
    with time_machine.travel(NOON, tick=False):
        return request_run(
            tenant=tenant, kind="attendance", target_date=DAY, enqueue=False, **kwargs
        ).run


def test_a_queued_run_is_handed_out_once(acme):
    run = request(acme)
    assert dispatch(now=NOON).enqueued == 1
    assert dispatch(now=NOON + timedelta(minutes=1)).enqueued == 0
    assert queued_tasks() == 1
    run.refresh_from_db()
    assert run.enqueued_at == NOON


def test_a_run_waiting_for_a_kot_window_is_handed_out_when_it_ends(acme):
    with time_machine.travel(datetime(2026, 11, 25, 9, 0, tzinfo=JST), tick=False):
        run = request_run(tenant=acme, kind="employee", enqueue=False).run
    assert run.status == SyncRun.Status.WAITING
    assert dispatch(now=datetime(2026, 11, 25, 9, 59, tzinfo=JST)).enqueued == 0
    assert dispatch(now=datetime(2026, 11, 25, 10, 0, 1, tzinfo=JST)).enqueued == 1


def test_a_run_postponed_after_it_was_handed_out_is_handed_out_again_when_due(acme):
    run = request(acme)
    dispatch(now=NOON)
    claimed = claim_run(run_id=run.pk, now=NOON + timedelta(seconds=5))
    postpone_run(run=claimed, until=NOON + timedelta(minutes=2), message="一時的なエラー")

    assert dispatch(now=NOON + timedelta(minutes=1)).enqueued == 0
    assert dispatch(now=NOON + timedelta(minutes=2)).enqueued == 1
    assert queued_tasks() == 2


def test_a_lost_task_is_replaced_only_when_the_queue_is_empty(acme):
    run = request(acme)
    dispatch(now=NOON)
    later = NOON + timedelta(minutes=10)
    # Still in the broker's queue (a backlog): not doubled.
    assert dispatch(now=later).enqueued == 0
    # The task was lost (e.g. Redis restarted): handed out again.
    OrmQ.objects.all().delete()
    assert dispatch(now=later).enqueued == 1
    run.refresh_from_db()
    assert run.enqueued_at == later


def test_the_dispatcher_beats_every_time(acme):
    from integrations.models import ClusterHeartbeat

    dispatch(now=NOON)
    dispatch(now=NOON + timedelta(minutes=1))
    (beat,) = ClusterHeartbeat.objects.all()
    assert beat.beat_at == NOON + timedelta(minutes=1)


def test_runs_go_to_the_workers_queue_even_from_the_dispatcher_cluster(acme, monkeypatch):
    from django_q.conf import Conf

    from integrations import queue
    from tests.queue_helpers import queued

    run = request(acme)
    # Inside the dispatcher cluster (Q_CLUSTER_NAME=portal-dispatcher) django-q2's default queue
    # is the dispatcher's own: the hand-out must still reach the workers.
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue.DISPATCHER)
    assert dispatch(now=NOON).enqueued == 1

    (task,) = queued()
    assert task["_key"] == queue.WORKERS
    assert task["func"] == queue.EXECUTE_RUN
    assert task["args"] == (run.pk,)
    assert task["name"] == f"sync-run-{run.pk}-1"
    assert task["group"] == f"tenant-{acme.pk}"


def test_a_bulk_hand_out_signs_each_task_as_async_task_does(acme):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage
    from django_q.tasks import async_task

    for _ in range(3):
        SyncRun.objects.create(
            tenant=acme, kind="employee", trigger="manual", created_at=NOON - timedelta(minutes=1)
        )
    assert dispatch(now=NOON).enqueued == 3
    async_task("integrations.tasks.workers_beat_task", task_name="reference", group="g")

    reference = SignedPackage.loads(OrmQ.objects.order_by("-id").first().payload)
    for row in OrmQ.objects.order_by("id")[:3]:
        task = SignedPackage.loads(row.payload)  # a bad signature would raise here
        assert set(task) == set(reference) | {"cluster"}
        assert task["ack_failure"] is True
        assert task["kwargs"] == {}
