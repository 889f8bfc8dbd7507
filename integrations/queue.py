"""Everything that knows django-q2: the two clusters, the tasks, the broker, the schedules.

Two clusters share one broker and one signing salt (``Q_CLUSTER["name"]``):

- ``WORKERS`` ("portal", the default cluster, Procfile ``worker``: ``manage.py qcluster``) runs
  the syncs, the failure mails, the daily prune and its own liveness beat;
- ``DISPATCHER`` ("portal-dispatcher", Procfile ``dispatcher``: ``Q_CLUSTER_NAME=portal-dispatcher
  manage.py qcluster``, one worker, ``ALT_CLUSTERS`` in settings) runs only the every-minute
  dispatch, from its own queue, so thousands of queued syncs never delay it.

A cluster's scheduler fires only the schedules that name its cluster (``Schedule.cluster``), so
each schedule runs on one cluster, also on SQLite where django-q2 has no row lock. Tasks are
always sent to a named cluster: code running on the dispatcher hands syncs to the workers.
Packages are built and signed as ``django_q.tasks.async_task`` builds them, and pushed in bulk
(one INSERT per batch on the ORM broker, one pipeline on Redis).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from .models import SyncRun

log = logging.getLogger(__name__)

WORKERS = "portal"
DISPATCHER = "portal-dispatcher"

EXECUTE_RUN = "integrations.tasks.execute_run_task"
DISPATCH = "integrations.tasks.dispatch_task"
SEND_RUN_MAIL = "integrations.tasks.send_run_mail_task"
SEND_PUSH_STOPPED_MAIL = "integrations.tasks.send_push_stopped_mail_task"
PRUNE_HISTORY = "integrations.tasks.prune_history_task"
WORKERS_BEAT = "integrations.tasks.workers_beat_task"
REALTIME_POLL = "integrations.tasks.realtime_poll_task"

DISPATCH_SCHEDULE = "integrations.dispatch"
PRUNE_SCHEDULE = "integrations.prune_history"
WORKERS_BEAT_SCHEDULE = "integrations.workers_beat"
# The nightly prune: after the usual 02:00/03:00 sync slots, before the working day (JST).
PRUNE_AT = time(4, 45)

# A run handed out this long ago and still not claimed is handed out again when the workers'
# queue is empty (its task was lost, or its tenant and kind were busy when a worker took it).
# Claims are conditional, so a second copy of a task is harmless.
REENQUEUE_AFTER = timedelta(minutes=3)
BATCH = 500


@dataclass(frozen=True)
class Job:
    """One task: the function's dotted path, its arguments, a readable name and a group."""

    func: str
    args: tuple[Any, ...]
    name: str
    group: str


def run_job(*, run_id: int, tenant_id: int, attempt: int) -> Job:
    """The task that executes a run (named for the attempt it will be)."""
    return Job(EXECUTE_RUN, (run_id,), f"sync-run-{run_id}-{attempt + 1}", f"tenant-{tenant_id}")


def poll_job(*, setting_id: int) -> Job:
    """A tenant's real-time poll (integrations/services/realtime.py)."""
    return Job(REALTIME_POLL, (setting_id,), f"realtime-poll-{setting_id}", "realtime")


def mail_job(*, run_id: int, audience: str) -> Job:
    return Job(SEND_RUN_MAIL, (run_id, audience), f"run-mail-{run_id}-{audience}", "mail")


# --- stopping: SIGTERM reaches the workers ----------------------------------------------------
#
# django-q2 gets SIGTERM in the cluster's main process: it stops its sentinel, which waits for
# each worker process to finish the task it holds (up to the task timeout, 1,800 s). A sync
# must not make a deploy wait that long, nor be killed half-way by the platform: the main
# process sets this flag (created before the sentinel and its workers fork, so they share it),
# and a run's Lease (services/runs.py) sees it before its next write and hands the run back.

_STOPPING = multiprocessing.get_context("fork").Event()


def stopping() -> bool:
    """Whether this process's cluster has been asked to stop (SIGTERM/SIGINT)."""
    return _STOPPING.is_set()


def request_stop() -> None:
    """What the cluster's signal handler does first (tests call it to stand for SIGTERM)."""
    _STOPPING.set()


def install_stop_relay() -> None:
    """Make django-q2's cluster set the stopping flag when it gets SIGTERM or SIGINT.

    ``Cluster.__init__`` installs ``self.sig_handler`` for both signals; wrapping the class's
    handler (before any cluster exists: ``AppConfig.ready``) relays the signal to the workers.
    The workers then hand their runs back within SHUTDOWN_GRACE_SECONDS (the time of one
    upstream call at most); a warning is logged if they did not.
    """
    from django_q.cluster import Cluster

    original = Cluster.sig_handler
    if getattr(original, "relays_stop", False):
        return

    def sig_handler(self, signum, frame):
        request_stop()
        grace = settings.SHUTDOWN_GRACE_SECONDS

        def late() -> None:
            log.warning("cluster still stopping after %s s: a run outlived the grace", grace)

        timer = threading.Timer(grace, late)
        timer.daemon = True
        timer.start()
        try:
            original(self, signum, frame)
        finally:
            timer.cancel()

    sig_handler.relays_stop = True  # type: ignore[attr-defined]
    Cluster.sig_handler = sig_handler  # type: ignore[method-assign]


# --- the broker ---------------------------------------------------------------------------------


def broker(cluster: str = WORKERS):
    """The broker of a cluster's queue (Redis list or OrmQ key), as django-q2 builds it."""
    from django_q.brokers import get_broker

    return get_broker(cluster)


def ping_broker() -> bool:
    """Whether the broker answers: Redis PING (2 s timeouts), or a query on the ORM queue.

    Raises what the broker raised, for the caller to log.
    """
    redis_url = settings.Q_CLUSTER.get("redis")
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    from django_q.models import OrmQ

    OrmQ.objects.using(settings.Q_CLUSTER.get("orm", "default")).exists()
    return True


def queue_size(cluster: str = WORKERS) -> int:
    """Tasks waiting in a cluster's queue (not yet taken by a worker)."""
    return int(broker(cluster).queue_size() or 0)


def _package(job: Job, *, cluster: str) -> str:
    """A signed task package, exactly as ``django_q.tasks.async_task`` makes one."""
    from django_q.conf import Conf
    from django_q.humanhash import uuid
    from django_q.signals import pre_enqueue
    from django_q.signing import SignedPackage

    _humanized, task_id = uuid()
    task: dict[str, Any] = {
        "id": task_id,
        "name": job.name,
        "func": job.func,
        "args": job.args,
        "group": job.group,
        "cluster": cluster,
    }
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {}
    task["started"] = timezone.now()
    pre_enqueue.send(sender="django_q", task=task)
    return SignedPackage.dumps(task)


def enqueue(jobs: Sequence[Job], *, cluster: str = WORKERS) -> int:
    """Send tasks to a cluster's queue, in bulk where the broker allows it; returns how many.

    With ``Q_CLUSTER["sync"]`` (debugging) each task runs here and now, as async_task does.
    """
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    if not jobs:
        return 0
    if Conf.SYNC:
        from django_q.tasks import async_task

        for job in jobs:
            async_task(job.func, *job.args, task_name=job.name, group=job.group, cluster=cluster)
        return len(jobs)
    target = broker(cluster)
    for start in range(0, len(jobs), BATCH):
        packs = [_package(job, cluster=cluster) for job in jobs[start : start + BATCH]]
        if isinstance(target, ORM):
            from django_q.models import OrmQ

            lock = timezone.now()  # as ORM.enqueue: takeable at once
            OrmQ.objects.using(Conf.ORM).bulk_create(
                [OrmQ(key=target.list_key, payload=pack, lock=lock) for pack in packs]
            )
        elif isinstance(target, Redis):
            pipe = target.connection.pipeline(transaction=False)
            for pack in packs:
                pipe.rpush(target.list_key, pack)
            pipe.execute()
        else:
            for pack in packs:
                target.enqueue(pack)
    log.debug("enqueued %d task(s) on %s", len(jobs), cluster)
    return len(jobs)


# --- runs ---------------------------------------------------------------------------------------


def enqueue_run(*, run_id: int) -> bool:
    """Hand one due run to the workers. Runs not yet due are left to the dispatcher."""
    now = timezone.now()
    run = SyncRun.objects.filter(
        pk=run_id, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]
    ).first()
    if run is None or (run.not_before and run.not_before > now):
        return False
    SyncRun.objects.filter(pk=run_id).update(enqueued_at=now)
    enqueue([run_job(run_id=run.pk, tenant_id=run.tenant_id, attempt=run.attempt)])
    return True


def _due_runs(now: datetime):
    stale = now - REENQUEUE_AFTER
    return (
        SyncRun.objects.filter(status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING])
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("not_before"))  # postponed after it was last handed out
            | Q(enqueued_at__lt=stale)
        )
        .order_by("created_at", "id")
    )


def _only_stale(row) -> bool:
    """Handed out before and not postponed since: due again only because it wasn't claimed."""
    _id, _tenant, _attempt, enqueued_at, not_before = row
    return enqueued_at is not None and (not_before is None or enqueued_at >= not_before)


def hand_out_due_runs(*, now: datetime) -> int:
    """Enqueue due queued/waiting runs on the workers: never handed out, postponed since, or lost.

    A run handed out REENQUEUE_AFTER ago and still not claimed is handed out again only when
    the workers' queue is empty: its task was lost, or was taken while another run of its
    tenant and kind was running. While a backlog waits in the queue, nothing is doubled.
    On PostgreSQL the rows are locked (SKIP LOCKED) while they are handed out, so two
    dispatchers don't hand out the same run; with the ORM broker the tasks commit with the rows.
    """
    with transaction.atomic():
        rows = list(
            _due_runs(now)
            .select_for_update(skip_locked=True)
            .values_list("id", "tenant_id", "attempt", "enqueued_at", "not_before")
        )
        if any(_only_stale(row) for row in rows) and queue_size(WORKERS):
            rows = [row for row in rows if not _only_stale(row)]
        if not rows:
            return 0
        for start in range(0, len(rows), BATCH):
            ids = [row[0] for row in rows[start : start + BATCH]]
            SyncRun.objects.filter(pk__in=ids).update(enqueued_at=now)
        enqueue(
            [
                run_job(run_id=run_id, tenant_id=tenant_id, attempt=attempt)
                for run_id, tenant_id, attempt, _enqueued_at, _not_before in rows
            ]
        )
    return len(rows)


def enqueue_push_stopped_mail(*, setting_id: int) -> None:
    """Tell the tenant and support that a push subscription stopped, after the mark commits."""
    job = Job(SEND_PUSH_STOPPED_MAIL, (setting_id,), f"push-stopped-mail-{setting_id}", "mail")
    transaction.on_commit(lambda: enqueue([job]), robust=True)


def enqueue_run_mail(*, run_id: int) -> None:
    """Send a run's failure mails (the customer's, support's) from the workers, once the run's
    end is committed."""
    from .services.notifications import AUDIENCES  # one task each: the contact's, support's

    jobs = [mail_job(run_id=run_id, audience=audience) for audience in AUDIENCES]
    transaction.on_commit(lambda: enqueue(jobs), robust=True)


@dataclass
class Backlog:
    """Runs due and not started: how many, and how long the oldest has waited (seconds)."""

    queued: int
    oldest_age_seconds: float | None
    tasks_waiting: int | None  # tasks in the workers' queue (None: the broker did not answer)


def backlog(*, now: datetime | None = None, ask_broker: bool = True) -> Backlog:
    """The sync backlog; ``ask_broker=False`` leaves the broker alone (it is known to be down)."""
    now = now or timezone.now()
    due = SyncRun.objects.filter(status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    )
    figures = due.aggregate(count=Count("id"), oldest=Min("created_at"))
    count, oldest = figures["count"], figures["oldest"]
    tasks: int | None = None
    if ask_broker:
        try:
            tasks = queue_size(WORKERS)
        except Exception:
            log.warning("backlog: the workers' queue size is unknown", exc_info=True)
    return Backlog(
        queued=count,
        oldest_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
        tasks_waiting=tasks,
    )


# --- schedules ----------------------------------------------------------------------------------


def _next_prune_run(now: datetime) -> datetime:
    local = timezone.localtime(now)
    first = local.replace(hour=PRUNE_AT.hour, minute=PRUNE_AT.minute, second=0, microsecond=0)
    return first if first > local else first + timedelta(days=1)


def ensure_schedules() -> list:
    """Declare the three schedules by name, each on its cluster; safe to run any number of times.

    Called after every ``migrate`` (post_migrate) and by ``manage.py setup_schedules``. An
    existing schedule keeps its ``next_run`` (a deploy does not move tonight's prune), a
    hand-edited one is put right, duplicates are removed.
    """
    from django_q.models import Schedule

    now = timezone.now()
    declared = [
        (
            DISPATCH_SCHEDULE,
            {
                "func": DISPATCH,
                "cluster": DISPATCHER,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
            },
            now,
        ),
        (
            WORKERS_BEAT_SCHEDULE,
            {
                "func": WORKERS_BEAT,
                "cluster": WORKERS,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
            },
            now,
        ),
        (
            PRUNE_SCHEDULE,
            {
                "func": PRUNE_HISTORY,
                "cluster": WORKERS,
                "schedule_type": Schedule.DAILY,
                "minutes": None,
                "repeats": -1,
            },
            _next_prune_run(now),
        ),
    ]
    schedules = []
    for name, defaults, first_run in declared:
        _drop_duplicates(Schedule, name)
        schedule, _created = Schedule.objects.update_or_create(
            name=name,
            defaults={**defaults, **_PLAIN},
            create_defaults={**defaults, "next_run": first_run},
        )
        schedules.append(_drop_duplicates(Schedule, name) or schedule)
    return schedules


# Whatever a hand edit may have added is taken away again.
_PLAIN = {"args": None, "kwargs": None, "cron": None, "hook": None, "intended_date_kwarg": None}


def _drop_duplicates(Schedule, name: str):  # noqa: N803
    """Schedule.name is not unique, so two deploys racing could both create one: keep the oldest."""
    schedules = Schedule.objects.filter(name=name).order_by("pk")
    keep = schedules.first()
    if keep is not None:
        schedules.exclude(pk=keep.pk).delete()
    return keep
