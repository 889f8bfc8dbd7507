"""The dispatcher: the one job the dispatcher cluster runs every minute (docs/SCHEDULING.md).

Each call (1) turns every due schedule slot into exactly one run — the unique constraint on
(tenant, kind, slot) makes racing dispatchers harmless — and records slots missed while no
dispatcher ran, (2) writes the dispatcher heartbeat that /healthz reads, (3) resumes runs whose
worker died (their heartbeat lease ran out; after SYNC_MAX_RESUMES it fails them), and (4) hands due queued/waiting runs to the
workers' cluster (``integrations.queue``). Every step is idempotent, so a late, repeated or
concurrent dispatch changes nothing twice. Nothing slow happens here: failure mails are tasks
of their own on the workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connectors.clock import JST

from .. import queue
from ..kinds import KINDS
from ..models import ConnectSetting, SyncRun, Tenant
from . import heartbeats, realtime
from .runs import end_run, reap, stale_runs
from .schedules import latest_slot, target_date_for
from .workday import WorkdayRules, borders_for_many, start_wait

log = logging.getLogger(__name__)

SCHEDULE_LABEL = "スケジュール"
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
    "day_change_time",
    "updated_at",
)


@dataclass
class DispatchReport:
    """What one dispatch did (``scheduled`` counts inserts tried; a racing twin's are ignored)."""

    scheduled: int = 0
    missed: int = 0
    reaped: int = 0
    enqueued: int = 0
    realtime: str = ""  # the real-time tick's report (services/realtime.py)

    def __str__(self) -> str:
        return (
            f"scheduled={self.scheduled} missed={self.missed} "
            f"reaped={self.reaped} enqueued={self.enqueued} {self.realtime}"
        ).strip()


def dispatch(*, now: datetime | None = None) -> DispatchReport:
    """Create due slot runs, record missed slots, beat, reap dead runs, hand out due runs."""
    now = now or timezone.now()
    report = DispatchReport()
    # Read before beating: slots after the last beat fell while no dispatcher was running.
    last_beat = heartbeats.last_beat(role=heartbeats.DISPATCHER)
    report.scheduled, report.missed = create_slot_runs(now=now, last_beat=last_beat)
    beat(now=now)
    report.reaped = reap_dead_runs(now=now)
    report.enqueued = queue.hand_out_due_runs(now=now)
    report.realtime = str(realtime.tick(now=now))
    log.info("dispatch %s", report)
    return report


def beat(*, now: datetime) -> None:
    """Record that a dispatcher on this machine is alive (one row per host)."""
    heartbeats.beat(role=heartbeats.DISPATCHER, now=now)


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
        for kind in KINDS:
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
    fresh = [(s, kind, slot) for s, kind, slot in due if (s.tenant_id, kind, slot) not in existing]
    rules = borders_for_many(
        {s.tenant_id: s for s, kind, _slot in fresh if KINDS[kind].dated}.values()
    )
    new_runs = [_slot_run(s, kind, slot, now, rules.get(s.tenant_id)) for s, kind, slot in fresh]
    # The unique constraint on (tenant, kind, slot) drops what a racing dispatcher inserted.
    SyncRun.objects.bulk_create(new_runs, batch_size=BATCH, ignore_conflicts=True)

    recorded = 0
    for setting, kind, slot in missed:
        if (setting.tenant_id, kind, slot) not in existing:
            recorded += _record_missed(setting=setting, kind=kind, slot=slot, now=now, grace=grace)
    return len(new_runs), recorded


def _slot_run(
    setting: ConnectSetting, kind: str, slot: datetime, now: datetime, rules: WorkdayRules | None
) -> SyncRun:
    target_date = _target_date(setting, kind, slot)
    # Inside a KOT window, or before its working day ended, the run waits (as request_run does).
    end, message = start_wait(
        setting=setting, kind=kind, target_date=target_date, now=now, rules=rules
    )
    return SyncRun(
        tenant_id=setting.tenant_id,
        kind=kind,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=SyncRun.Status.WAITING if end else SyncRun.Status.QUEUED,
        target_date=target_date,
        triggered_by_label=SCHEDULE_LABEL,
        slot=slot,
        created_at=now,
        not_before=end,
        message=message,
    )


def _target_date(setting: ConnectSetting, kind: str, slot: datetime):
    return target_date_for(setting, slot) if KINDS[kind].dated else None


def missed_message(*, kind: str, slot: datetime, grace: timedelta) -> str:
    local = slot.astimezone(JST)
    text = (
        f"{local:%Y年%m月%d日 %H時}のスケジュール実行は、連携処理が停止していたため"
        f"{int(grace.total_seconds() // 60)}分以内に開始できず、実行を見送りました。"
    )
    if KINDS[kind].rerunnable:
        return text + "必要であれば再実行してください。"
    return text + "必要であれば手動実行してください。"


def _record_missed(
    *, setting: ConnectSetting, kind: str, slot: datetime, now: datetime, grace: timedelta
) -> int:
    """One failed run for a missed slot (once: the slot's unique constraint), ended by end_run.

    The row is created and ended in one transaction, so nobody ever sees it queued (and its
    ``not_before`` keeps it from being handed out even in that instant).
    """
    message = missed_message(kind=kind, slot=slot, grace=grace)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                tenant_id=setting.tenant_id,
                kind=kind,
                trigger=SyncRun.Trigger.SCHEDULE,
                status=SyncRun.Status.QUEUED,
                target_date=_target_date(setting, kind, slot),
                triggered_by_label=SCHEDULE_LABEL,
                slot=slot,
                created_at=now,
                not_before=now + timedelta(days=1),
            )
            end_run(
                run=run,
                status=SyncRun.Status.FAILURE,
                error_type=SyncRun.ErrorType.MISSED,
                code="missed",
                message=message,
                from_statuses=(SyncRun.Status.QUEUED,),
                now=now,
            )
    except IntegrityError:
        return 0  # a racing dispatcher recorded it
    log.warning("run %s: slot %s of tenant %s missed", run.pk, slot, setting.tenant_id)
    return 1


def reap_dead_runs(*, now: datetime) -> int:
    """Resume running runs whose heartbeat is older than the lease: their worker died.

    The run goes back to the queue (same row, ``resumes`` + 1) and is handed out again by this
    same dispatch; the dead worker's writes are fenced (its lease token is spent). After
    SYNC_MAX_RESUMES resumptions the run is failed as ``worker_lost`` instead, with its mail
    (``runs.reap``, also what another writer does before taking a dead run's ledger rows).
    Returns how many runs were resumed or failed.
    """
    rows = stale_runs(now).values_list("pk", "heartbeat_at", "attempt", "resumes", "target_date")
    return sum(
        reap(
            run_id=pk,
            attempt=attempt,
            heartbeat_at=heartbeat_at,
            resumes=resumes,
            target_date=target_date,
            now=now,
        )
        for pk, heartbeat_at, attempt, resumes, target_date in rows
    )
