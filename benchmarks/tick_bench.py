"""The minute tick behind a backlog: 10,000 runs queued in front of one worker.

Starts the Procfile's own `worker` (one worker: ``Q_WORKERS=1``) and `dispatcher` lines on the
benchmark database, with 10,000 runs already handed out (10,000 tasks in the workers' queue),
and watches the dispatcher's ticks: when each dispatch task was enqueued by the scheduler, when
it ended, and what /healthz said meanwhile. Then, for comparison, the layout before this change:
the dispatch schedule on the workers' own queue, where its task waits behind the backlog.

The queued runs belong to tenants without SenseLink settings: a worker fails each at once with
a configuration error (and queues its failure mail behind the rest), so nothing leaves this
machine while the queue stays full for the whole measurement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

RUNS = 10_000


def _clear_other_work() -> int:
    """No earlier part's runs may reach a worker: the dispatch benchmark's 10,000 runs point at
    a real SenseLink URL. Fail them unrun and empty the queues before any cluster starts."""
    from integrations import queue
    from integrations.models import SyncRun

    for cluster in (queue.WORKERS, queue.DISPATCHER):
        queue.broker(cluster).purge_queue()
    return SyncRun.objects.filter(status__in=SyncRun.ACTIVE_STATUSES).update(
        status=SyncRun.Status.FAILURE, message="benchmark: not run"
    )


def _seed(runs: int) -> list[int]:
    from django.utils import timezone

    from integrations import queue
    from integrations.models import SyncRun, Tenant

    created = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"待機{n:05d} 株式会社",
                slug=f"backlog-{n:05d}",
                subscription_status=Tenant.Subscription.ACTIVE,
            )
            for n in range(runs)
        ],
        batch_size=1000,
    )
    tenant_ids = (
        [t.pk for t in created]
        if created[0].pk
        else list(Tenant.objects.filter(slug__startswith="backlog-").values_list("pk", flat=True))
    )
    now = timezone.now()
    SyncRun.objects.bulk_create(
        [
            SyncRun(
                tenant_id=pk,
                kind=SyncRun.Kind.EMPLOYEE,
                trigger=SyncRun.Trigger.MANUAL,
                triggered_by_label="benchmark",
                created_at=now,
                enqueued_at=now,
            )
            for pk in tenant_ids
        ],
        batch_size=1000,
    )
    rows = SyncRun.objects.filter(tenant_id__in=tenant_ids).values_list("pk", "tenant_id")
    jobs = [queue.run_job(run_id=pk, tenant_id=tenant, attempt=0) for pk, tenant in rows]
    queue.enqueue(jobs)
    return tenant_ids


def _dispatch_tasks(since) -> list[Any]:
    from django_q.models import Task

    from integrations import queue

    return list(Task.objects.filter(func=queue.DISPATCH, started__gte=since).order_by("started"))


def _waiting_dispatches() -> list[int]:
    """Positions (1 = next to be taken) of dispatch tasks in the workers' queue: where a
    dispatch waits when it shares the queue with the syncs (and their failure mails)."""
    from django_q.signing import SignedPackage

    from integrations import queue

    broker = queue.broker(queue.WORKERS)
    if hasattr(broker.connection, "lrange"):  # Redis: the whole list, head first
        packs = broker.connection.lrange(broker.list_key, 0, -1)
    else:  # ORM: the queue's rows, oldest first (the order workers take them)
        from django_q.models import OrmQ

        packs = list(
            OrmQ.objects.filter(key=broker.list_key)
            .order_by("id")
            .values_list("payload", flat=True)
        )
    return [
        position
        for position, pack in enumerate(packs, start=1)
        if SignedPackage.loads(pack)["func"] == queue.DISPATCH
    ]


def _env(workers: int) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("Q_CLUSTER_NAME", None)
    env.update(
        {
            "Q_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            "EMAIL_URL": "dummymail://",
            # Belt and braces: nothing here may call out (port 9 is the discard service).
            "KOT_API_BASE_URL": "http://127.0.0.1:9/v1.0",
        }
    )
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the cluster's main process only
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _watch(*, seconds: float, since, ticks_wanted: int | None) -> dict[str, Any]:
    """Poll for dispatch ticks and /healthz until enough ticks or time is up."""
    from django.test import Client

    from integrations import queue

    client = Client()
    healthz: list[bool] = []
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tasks = _dispatch_tasks(since)
        for task in tasks:
            if task.id not in seen and task.stopped:
                seen.add(task.id)
                body = client.get("/healthz").json()
                healthz.append(bool(body["dispatcher"]))
        if ticks_wanted and len(seen) >= ticks_wanted:
            break
        time.sleep(1)
    tasks = [t for t in _dispatch_tasks(since) if t.stopped]
    delays = [(t.stopped - t.started).total_seconds() for t in tasks]
    intervals = [
        (b.started - a.started).total_seconds() for a, b in zip(tasks, tasks[1:], strict=False)
    ]
    backlog = queue.backlog()
    return {
        "ticks": len(tasks),
        "delays": delays,
        "intervals": intervals,
        "healthz_dispatcher_alive": healthz,
        "backlog_after": backlog.queued,
        "tasks_waiting_after": backlog.tasks_waiting,
    }


def bench_ticks(*, runs: int = RUNS, ticks: int = 3, old_layout_seconds: float = 150) -> dict:
    from django.utils import timezone
    from django_q.models import Schedule

    from integrations import queue
    from portal import procfile

    t0 = time.perf_counter()
    _clear_other_work()
    _seed(runs)
    seed_seconds = time.perf_counter() - t0
    logs = Path(os.environ.get("BENCH_LOG_DIR") or tempfile.mkdtemp(prefix="portal-ticks-"))
    result: dict[str, Any] = {"runs": runs, "seed_seconds": seed_seconds, "logs": str(logs)}

    # The Procfile's layout: the dispatch on its own cluster.
    queue.ensure_schedules()
    since = timezone.now()
    Schedule.objects.filter(name=queue.DISPATCH_SCHEDULE).update(next_run=since)
    worker = procfile.start("worker", env=_env(1), log=logs / "bench-worker.log")
    dispatcher = procfile.start("dispatcher", env=_env(1), log=logs / "bench-dispatcher.log")
    try:
        result["procfile"] = _watch(seconds=60 * (ticks + 1) + 45, since=since, ticks_wanted=ticks)
    finally:
        _stop(dispatcher)
        _stop(worker)

    # Before this change: the dispatch schedule on the workers' queue (one cluster for both).
    if old_layout_seconds > 0:
        since = timezone.now()
        Schedule.objects.filter(name=queue.DISPATCH_SCHEDULE).update(
            cluster=queue.WORKERS, next_run=since
        )
        worker = procfile.start("worker", env=_env(1), log=logs / "bench-worker-old.log")
        try:
            old = _watch(seconds=old_layout_seconds, since=since, ticks_wanted=None)
        finally:
            _stop(worker)
        waiting = _waiting_dispatches()
        old["observed_seconds"] = old_layout_seconds
        old["enqueued_not_run"] = len(waiting)
        old["waiting_at_positions"] = waiting
        result["old_layout"] = old
        queue.ensure_schedules()  # back to the Procfile's layout
        Schedule.objects.filter(name=queue.DISPATCH_SCHEDULE).update(
            next_run=timezone.now() + timedelta(minutes=1)
        )
    return result
