"""The dispatcher: the one job the cluster runs every minute (docs/SCHEDULING.md).

Each call (1) turns every due schedule slot into exactly one run — the unique constraint on
(tenant, kind, slot) makes racing dispatchers harmless — and records slots missed while no
dispatcher ran, (2) writes the cluster heartbeat that /healthz reads, (3) fails runs whose worker
died (their heartbeat lease ran out), and (4) hands due queued/waiting runs to the cluster.
Every step is idempotent, so a late, repeated or concurrent dispatch changes nothing twice.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from ..models import ClusterHeartbeat, ConnectSetting, SyncError, SyncRun, Tenant
from .schedules import JST, latest_slot, target_date_for
from .windows import window_end, window_wait_message

log = logging.getLogger(__name__)

DISPATCH_SCHEDULE_NAME = "integrations.dispatch"
DISPATCH_FUNC = "integrations.tasks.dispatch_task"
# A run handed out this long ago and still not claimed is handed out again when the broker's
# queue is empty (its task was lost, or its tenant and kind were busy when a worker took it).
# Claims are conditional, so a second copy of a task is harmless.
REENQUEUE_AFTER = timedelta(minutes=3)
SCHEDULE_LABEL = "スケジュール"
WORKER_LOST_MESSAGE = (
    "処理中のワーカーが停止したため、連携を中断しました(サーバーの再起動など)。再実行してください。"
)
BATCH = 500

# Only the fields the slot computation reads: the secrets are never loaded (or decrypted) here.
_SETTING_FIELDS = (
    "id",
    "tenant_id",
    "attendance_trigger",
    "attendance_hour",
    "attendance_target_day",
    "attendance_paused",
    "employee_trigger",
    "employee_interval",
    "employee_day",
    "employee_hour",
    "employee_paused",
    "updated_at",
)


@dataclass
class DispatchReport:
    """What one dispatch did (``scheduled`` counts inserts tried; a racing twin's are ignored)."""

    scheduled: int = 0
    missed: int = 0
    reaped: int = 0
    enqueued: int = 0

    def __str__(self) -> str:
        return (
            f"scheduled={self.scheduled} missed={self.missed} "
            f"reaped={self.reaped} enqueued={self.enqueued}"
        )


def dispatch(*, now: datetime | None = None) -> DispatchReport:
    """Create due slot runs, record missed slots, beat, reap dead runs, hand out due runs."""
    now = now or timezone.now()
    report = DispatchReport()
    # Read before beating: slots after the last beat fell while no dispatcher was running.
    last_beat = ClusterHeartbeat.objects.aggregate(last=Max("beat_at"))["last"]
    report.scheduled, report.missed = create_slot_runs(now=now, last_beat=last_beat)
    beat(now=now)
    report.reaped = reap_dead_runs(now=now)
    report.enqueued = hand_out_due_runs(now=now)
    log.info("dispatch %s", report)
    return report


def beat(*, now: datetime) -> None:
    """Record that this machine's cluster is alive (one row per cluster and host)."""
    host = socket.gethostname()[:255]
    name = f"{settings.Q_CLUSTER.get('name', 'cluster')}@{host}"[:64]
    if ClusterHeartbeat.objects.filter(name=name).update(beat_at=now, host=host):
        return
    try:
        with transaction.atomic():
            ClusterHeartbeat.objects.create(name=name, beat_at=now, host=host)
    except IntegrityError:  # another dispatcher on this host created it meanwhile
        ClusterHeartbeat.objects.filter(name=name).update(beat_at=now, host=host)


def _scheduled_settings():
    scheduled = ConnectSetting.Trigger.SCHEDULED
    return (
        ConnectSetting.objects.filter(tenant__subscription_status=Tenant.Subscription.ACTIVE)
        .filter(
            Q(attendance_trigger=scheduled, attendance_paused=False)
            | Q(employee_trigger=scheduled, employee_paused=False)
        )
        .only(*_SETTING_FIELDS)
        .order_by("id")
    )


def create_slot_runs(*, now: datetime, last_beat: datetime | None) -> tuple[int, int]:
    """Insert one run per due slot (bulk, conflicts ignored) and record missed slots.

    A slot is due from its time until SCHEDULE_MISSED_SLOT_GRACE_MINUTES later. A slot older
    than that with no run, which fell after the last dispatcher heartbeat (so no dispatcher was
    running), is recorded as a failed "missed" run. Slots before the setting's last change are
    not its slots: a changed setting takes effect from its next slot.
    """
    grace = timedelta(minutes=settings.SCHEDULE_MISSED_SLOT_GRACE_MINUTES)
    due: list[tuple[ConnectSetting, str, datetime]] = []
    missed: list[tuple[ConnectSetting, str, datetime]] = []
    for setting in _scheduled_settings():
        for kind in (SyncRun.Kind.ATTENDANCE, SyncRun.Kind.EMPLOYEE):
            if setting.is_paused(kind):
                continue
            slot = latest_slot(setting, kind, now)
            if slot is None or slot <= setting.updated_at:
                continue
            if now - slot <= grace:
                due.append((setting, kind, slot))
            elif last_beat is not None and slot > last_beat:
                missed.append((setting, kind, slot))
    if not due and not missed:
        return 0, 0

    slots = {slot for _setting, _kind, slot in due + missed}
    existing = set(SyncRun.objects.filter(slot__in=slots).values_list("tenant_id", "kind", "slot"))
    end = window_end(now)
    new_runs = [
        SyncRun(
            tenant_id=setting.tenant_id,
            kind=kind,
            trigger=SyncRun.Trigger.SCHEDULE,
            # Inside a KOT window the run waits for its end (as request_run does).
            status=SyncRun.Status.WAITING if end else SyncRun.Status.QUEUED,
            target_date=_target_date(setting, kind, slot),
            triggered_by_label=SCHEDULE_LABEL,
            slot=slot,
            created_at=now,
            not_before=end,
            message=window_wait_message(end) if end else "",
        )
        for setting, kind, slot in due
        if (setting.tenant_id, kind, slot) not in existing
    ]
    # The unique constraint on (tenant, kind, slot) drops what a racing dispatcher inserted.
    SyncRun.objects.bulk_create(new_runs, batch_size=BATCH, ignore_conflicts=True)

    recorded = 0
    for setting, kind, slot in missed:
        if (setting.tenant_id, kind, slot) not in existing:
            recorded += _record_missed(setting=setting, kind=kind, slot=slot, now=now, grace=grace)
    return len(new_runs), recorded


def _target_date(setting: ConnectSetting, kind: str, slot: datetime):
    return target_date_for(setting, slot) if kind == SyncRun.Kind.ATTENDANCE else None


def missed_message(*, kind: str, slot: datetime, grace: timedelta) -> str:
    local = slot.astimezone(JST)
    text = (
        f"{local:%Y年%m月%d日 %H時}のスケジュール実行は、連携処理が停止していたため"
        f"{int(grace.total_seconds() // 60)}分以内に開始できず、実行を見送りました。"
    )
    if kind == SyncRun.Kind.ATTENDANCE:
        return text + "必要であれば再実行してください。"
    return text + "必要であれば手動実行してください。"


def _record_missed(
    *, setting: ConnectSetting, kind: str, slot: datetime, now: datetime, grace: timedelta
) -> int:
    """One failed run for a missed slot (once: the slot's unique constraint), then notify."""
    message = missed_message(kind=kind, slot=slot, grace=grace)
    target_date = _target_date(setting, kind, slot)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                tenant_id=setting.tenant_id,
                kind=kind,
                trigger=SyncRun.Trigger.SCHEDULE,
                status=SyncRun.Status.FAILURE,
                target_date=target_date,
                triggered_by_label=SCHEDULE_LABEL,
                slot=slot,
                created_at=now,
                finished_at=now,
                error_type=SyncRun.ErrorType.MISSED,
                message=message,
                failed_count=1,
            )
            SyncError.objects.create(
                run=run, code="missed", message=message, target_date=target_date, created_at=now
            )
    except IntegrityError:
        return 0  # a racing dispatcher recorded it
    log.warning("run %s: slot %s of tenant %s missed", run.pk, slot, setting.tenant_id)
    _notify(run.pk)
    return 1


def reap_dead_runs(*, now: datetime) -> int:
    """Fail running runs whose heartbeat is older than the lease: their worker died."""
    cutoff = now - timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)
    dead = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    reaped = 0
    for pk, heartbeat_at, target_date in dead.values_list("pk", "heartbeat_at", "target_date"):
        with transaction.atomic():
            # Conditional on the stale heartbeat: a worker that beat meanwhile keeps its run.
            changed = SyncRun.objects.filter(
                pk=pk, status=SyncRun.Status.RUNNING, heartbeat_at=heartbeat_at
            ).update(
                status=SyncRun.Status.FAILURE,
                finished_at=now,
                error_type=SyncRun.ErrorType.WORKER_LOST,
                message=WORKER_LOST_MESSAGE,
                failed_count=1,
            )
            if changed:
                SyncError.objects.create(
                    run_id=pk,
                    code="worker_lost",
                    message=WORKER_LOST_MESSAGE,
                    target_date=target_date,
                    created_at=now,
                )
        if changed:
            log.warning("run %s: worker lost (last heartbeat %s)", pk, heartbeat_at)
            reaped += 1
            _notify(pk)
    return reaped


def hand_out_due_runs(*, now: datetime) -> int:
    """Enqueue due queued/waiting runs: never handed out, postponed since, or lost.

    A run handed out REENQUEUE_AFTER ago and still not claimed is handed out again only when
    the broker's queue is empty: its task was lost, or was taken while another run of its
    tenant and kind was running. While a backlog waits in the queue, nothing is doubled.
    On PostgreSQL the rows are locked (SKIP LOCKED) while they are handed out, so two
    dispatchers don't hand out the same run; with the ORM broker the tasks commit with the rows.
    """
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    broker = get_broker()
    stale = now - REENQUEUE_AFTER
    due = (
        SyncRun.objects.filter(status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING])
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("not_before"))  # postponed after it was last handed out
            | Q(enqueued_at__lt=stale)
        )
        .order_by("created_at", "id")
    )
    with transaction.atomic():
        rows = list(
            due.select_for_update(skip_locked=True).values_list(
                "id", "tenant_id", "attempt", "enqueued_at", "not_before"
            )
        )
        if any(_only_stale(row) for row in rows) and broker.queue_size():
            rows = [row for row in rows if not _only_stale(row)]
        if not rows:
            return 0
        for start in range(0, len(rows), BATCH):
            ids = [row[0] for row in rows[start : start + BATCH]]
            SyncRun.objects.filter(pk__in=ids).update(enqueued_at=now)
        # async_task packs each task (signed, as the cluster expects) into a collector; the
        # packs then go to the broker in bulk: one INSERT per batch, or one Redis pipeline.
        collector = _Collector(broker.list_key)
        for run_id, tenant_id, attempt, _enqueued_at, _not_before in rows:
            async_task(
                "integrations.tasks.execute_run_task",
                run_id,
                task_name=f"sync-run-{run_id}-{attempt + 1}",
                group=f"tenant-{tenant_id}",
                broker=collector,
            )
        _push(broker, collector.packs)
    return len(rows)


class _Collector:
    """Takes a broker's place in async_task, keeping the signed packages for a bulk push."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.packs: list[str] = []

    def enqueue(self, pack: str) -> int:
        self.packs.append(pack)
        return len(self.packs)


def _push(broker, packs: list[str]) -> None:
    """Put signed task packages on the broker's queue, in bulk where the broker allows it."""
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ

    if isinstance(broker, ORM):
        key = broker.list_key or Conf.CLUSTER_NAME
        lock = timezone.now()  # as ORM.enqueue: takeable at once
        OrmQ.objects.using(Conf.ORM).bulk_create(
            [OrmQ(key=key, payload=pack, lock=lock) for pack in packs], batch_size=BATCH
        )
    elif isinstance(broker, Redis):
        for start in range(0, len(packs), BATCH):
            pipe = broker.connection.pipeline(transaction=False)
            for pack in packs[start : start + BATCH]:
                pipe.rpush(broker.list_key, pack)
            pipe.execute()
    else:
        for pack in packs:
            broker.enqueue(pack)


def _only_stale(row) -> bool:
    """Handed out before and not postponed since: due again only because it wasn't claimed."""
    _id, _tenant, _attempt, enqueued_at, not_before = row
    return enqueued_at is not None and (not_before is None or enqueued_at >= not_before)


def _notify(run_id: int) -> None:
    from .notifications import notify_run_problem

    notify_run_problem(run=SyncRun.objects.select_related("tenant").get(pk=run_id))


def ensure_dispatch_schedule():
    """Declare the one django-q2 schedule (every minute) by name; safe to call on every deploy."""
    from django_q.models import Schedule

    defaults = {
        "func": DISPATCH_FUNC,
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    }
    _drop_duplicate_schedules(Schedule)
    schedule, _created = Schedule.objects.update_or_create(
        name=DISPATCH_SCHEDULE_NAME,
        defaults=defaults,
        create_defaults={**defaults, "next_run": timezone.now()},
    )
    return _drop_duplicate_schedules(Schedule) or schedule


def _drop_duplicate_schedules(Schedule):  # noqa: N803
    """Schedule.name is not unique, so two deploys racing could both create one: keep the oldest."""
    schedules = Schedule.objects.filter(name=DISPATCH_SCHEDULE_NAME).order_by("pk")
    keep = schedules.first()
    if keep is not None:
        schedules.exclude(pk=keep.pk).delete()
    return keep
