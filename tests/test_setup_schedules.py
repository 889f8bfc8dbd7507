"""The django-q2 schedules are declared by `migrate` itself (post_migrate), by name, each on its
cluster: a fresh deploy dispatches with no other step, deploys never duplicate a schedule, and
each cluster's scheduler fires only its own schedules (also on SQLite, which has no row lock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from integrations import queue
from tests.queue_helpers import orm_broker_only, queued

pytestmark = pytest.mark.django_db

DECLARED = {
    queue.DISPATCH_SCHEDULE: (queue.DISPATCH, queue.DISPATCHER, Schedule.MINUTES),
    queue.WORKERS_BEAT_SCHEDULE: (queue.WORKERS_BEAT, queue.WORKERS, Schedule.MINUTES),
    queue.PRUNE_SCHEDULE: (queue.PRUNE_HISTORY, queue.WORKERS, Schedule.DAILY),
}


def declared() -> dict:
    return {s.name: (s.func, s.cluster, s.schedule_type) for s in Schedule.objects.order_by("name")}


def test_migrate_alone_declares_every_schedule_on_its_cluster():
    # The test database was built by `migrate`: nothing else ran.
    assert declared() == DECLARED
    dispatch = Schedule.objects.get(name=queue.DISPATCH_SCHEDULE)
    assert dispatch.minutes == 1
    assert dispatch.repeats == -1
    assert dispatch.next_run is not None
    prune = Schedule.objects.get(name=queue.PRUNE_SCHEDULE)
    assert (timezone.localtime(prune.next_run).hour, prune.next_run.minute) == (4, 45)


def test_migrating_again_and_setup_schedules_change_nothing():
    before = list(Schedule.objects.order_by("pk").values())
    call_command("migrate", verbosity=0)
    call_command("setup_schedules", verbosity=0)
    assert list(Schedule.objects.order_by("pk").values()) == before


def test_a_deploy_keeps_the_next_run_of_an_existing_schedule():
    tonight = timezone.now() + timedelta(hours=5)
    Schedule.objects.filter(name=queue.PRUNE_SCHEDULE).update(next_run=tonight)
    queue.ensure_schedules()
    assert Schedule.objects.get(name=queue.PRUNE_SCHEDULE).next_run == tonight


def test_a_hand_edited_deleted_or_duplicated_schedule_is_put_right():
    Schedule.objects.filter(name=queue.WORKERS_BEAT_SCHEDULE).delete()
    Schedule.objects.filter(name=queue.DISPATCH_SCHEDULE).update(
        func="wrong.func", schedule_type=Schedule.HOURLY, cluster=None, args="(1,)"
    )
    Schedule.objects.create(name=queue.DISPATCH_SCHEDULE, func="wrong.func")

    call_command("setup_schedules", verbosity=0)

    assert declared() == DECLARED
    dispatch = Schedule.objects.get(name=queue.DISPATCH_SCHEDULE)
    assert dispatch.args is None


def test_the_setup_schedules_command_says_what_it_declared(capsys):
    call_command("setup_schedules")
    out = capsys.readouterr().out
    assert "'integrations.dispatch': integrations.tasks.dispatch_task on cluster " in out
    assert "'portal-dispatcher', every 1 minute(s)" in out
    assert "next " in out and "04:45 JST" in out


@pytest.mark.parametrize(
    ("cluster", "fired"),
    [
        (queue.DISPATCHER, {queue.DISPATCH}),
        (queue.WORKERS, {queue.WORKERS_BEAT, queue.PRUNE_HISTORY}),
    ],
)
def test_each_cluster_fires_only_its_own_schedules(cluster, fired, monkeypatch):
    orm_broker_only()
    from django_q import scheduler
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=1))
    monkeypatch.setattr(Conf, "CLUSTER_NAME", cluster)  # what Q_CLUSTER_NAME does at start-up
    # The scheduler closes stale connections first: not the test's own.
    monkeypatch.setattr(scheduler, "close_old_django_connections", lambda: None)

    scheduler.scheduler(broker=get_broker(cluster))

    tasks = queued()
    assert {t["func"] for t in tasks} == fired
    assert {t["_key"] for t in tasks} == {cluster}


def test_the_dispatch_task_runs_the_dispatcher():
    from integrations.tasks import dispatch_task

    assert dispatch_task() == "scheduled=0 missed=0 reaped=0 enqueued=0"
