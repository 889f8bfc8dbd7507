"""Creating, claiming and finishing runs: the run row is the truth every page reads.

Status changes are conditional UPDATEs whose row count is checked, so two workers (or two
clusters) can never both own a run, and the database's partial unique index keeps at most one
``running`` run per tenant and kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import SyncError, SyncRun, Tenant
from ..queue import enqueue_run  # the workers' cluster (integrations/queue.py)
from .clients import connect_setting
from .windows import window_end, window_wait_message

log = logging.getLogger(__name__)


class RunRefused(Exception):
    """A run cannot be requested (tenant not active, settings missing); message is Japanese."""


@dataclass
class RunRequest:
    """What request_run did: created a run, or joined one already queued or running."""

    run: SyncRun
    created: bool
    message: str
    notices: list[str] = field(default_factory=list)


def _active_duplicate(*, tenant: Tenant, kind: str, target_date: date | None) -> SyncRun | None:
    runs = SyncRun.objects.filter(tenant=tenant, kind=kind, status__in=SyncRun.ACTIVE_STATUSES)
    if kind == SyncRun.Kind.ATTENDANCE:
        runs = runs.filter(target_date=target_date)
    return runs.order_by("created_at", "id").first()


def describe(run: SyncRun) -> str:
    """A short Japanese name for a run, e.g. "勤怠連携 #12 (2026年11月24日)"."""
    text = f"{run.get_kind_display()} #{run.pk}"
    if run.target_date:
        text += f" ({run.target_date:%Y年%m月%d日})"
    return text


def request_run(
    *,
    tenant: Tenant,
    kind: str,
    trigger: str = SyncRun.Trigger.MANUAL,
    user=None,
    label: str = "",
    target_date: date | None = None,
    rerun_of: SyncRun | None = None,
    slot: datetime | None = None,
    enqueue: bool = True,
    allow_mass_create: bool = False,
) -> RunRequest:
    """Create a queued run (or join the same work already queued or running) and enqueue it.

    The run is handed to the cluster after the surrounding transaction commits. Inside a KOT
    forbidden window the run waits for the window's end, and the message says so.
    ``allow_mass_create`` (support's override of the creation guard) is given to the new run, or
    to the employee run it joins while that one has not started yet.
    """
    if not tenant.is_active:
        raise RunRefused("ご利用申込が有効でないため、連携を実行できません。")
    setting = connect_setting(tenant)
    if setting is None or not setting.has_senselink_credentials:
        raise RunRefused(
            "連携設定(SenseLink URL・Appキー・Appシークレット)を先に登録してください。"
        )
    if not tenant.kot_access_token:
        raise RunRefused("KING OF TIMEのアクセストークンを先に登録してください。")
    if kind == SyncRun.Kind.ATTENDANCE and target_date is None:
        raise RunRefused("勤怠連携の対象日を指定してください。")
    if kind == SyncRun.Kind.EMPLOYEE:
        target_date = None

    notices = []
    if setting.is_paused(kind) and trigger != SyncRun.Trigger.SCHEDULE:
        notices.append(
            f"{SyncRun.Kind(kind).label}はスケジュール実行を一時停止中ですが、手動実行は行います。"
        )
    if slot is None:
        existing = _active_duplicate(tenant=tenant, kind=kind, target_date=target_date)
        if existing is not None and allow_mass_create:
            granted = SyncRun.objects.filter(
                pk=existing.pk, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]
            ).update(allow_mass_create=True)
            existing.refresh_from_db()
            return RunRequest(
                run=existing,
                created=False,
                message=f"{describe(existing)} は既に{existing.get_status_display()}です。"
                + (
                    "この実行で一括登録の上限を超えて登録できるようにしました。"
                    if granted
                    else "実行中のため上限の解除は反映できません。終了後にもう一度操作してください。"
                ),
                notices=notices,
            )
        if existing is not None:
            return RunRequest(
                run=existing,
                created=False,
                message=f"{describe(existing)} は既に{existing.get_status_display()}です。"
                "新しい実行は登録せず、その結果をお待ちください。",
                notices=notices,
            )

    now = timezone.now()
    end = window_end(now)
    status = SyncRun.Status.WAITING if end else SyncRun.Status.QUEUED
    if user is not None and not label:
        label = user.get_username()
    run = SyncRun.objects.create(
        tenant=tenant,
        kind=kind,
        trigger=trigger,
        status=status,
        target_date=target_date,
        triggered_by=user,
        triggered_by_label=label or SyncRun.Trigger(trigger).label,
        rerun_of=rerun_of,
        slot=slot,
        allow_mass_create=allow_mass_create,
        created_at=now,
        not_before=end,
        message=window_wait_message(end) if end else "",
    )
    message = f"{describe(run)} を登録しました。"
    if end:
        message += window_wait_message(end)
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run_id=run.pk))
    return RunRequest(run=run, created=True, message=message, notices=notices)


def claim_run(*, run_id: int, now: datetime | None = None) -> SyncRun | None:
    """Move a due queued/waiting run to running; None when someone else has it or it's not due.

    The partial unique index refuses a second running run of the same tenant and kind: that
    caller gets None and the run stays queued for the dispatcher to hand out again later.
    """
    now = now or timezone.now()
    due = SyncRun.objects.filter(
        pk=run_id, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]
    ).exclude(not_before__gt=now)
    try:
        with transaction.atomic():
            claimed = due.update(
                status=SyncRun.Status.RUNNING,
                heartbeat_at=now,
                attempt=F("attempt") + 1,
                not_before=None,
            )
    except IntegrityError:
        log.info("run %s not claimed: another run of its tenant and kind is running", run_id)
        return None
    if claimed != 1:
        return None
    SyncRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    run = SyncRun.objects.select_related("tenant", "rerun_of").get(pk=run_id)
    # Errors of an earlier attempt are superseded by this attempt's own.
    if run.attempt > 1:
        run.errors.all().delete()
    return run


class Heartbeat:
    """Keeps a running run's lease fresh; cheap to call in a loop.

    It writes a few times per lease (at most once a minute), so the number of queries of a run
    does not grow with the number of employees, and a dead worker is noticed within the lease.
    """

    def __init__(self, run: SyncRun, *, every: float | None = None):
        self.run_id = run.pk
        if every is None:
            every = min(60.0, settings.SYNC_RUN_LEASE_SECONDS / 5)
        self.every = timedelta(seconds=every)
        self.last = timezone.now()

    def __call__(self) -> None:
        now = timezone.now()
        if now - self.last >= self.every:
            SyncRun.objects.filter(pk=self.run_id, status=SyncRun.Status.RUNNING).update(
                heartbeat_at=now
            )
            self.last = now


@dataclass
class Outcome:
    """The result of one attempt of a sync, written to the run in one update.

    ``errors`` holds errors and warnings; only errors make a run PARTIAL or FAILURE and count
    as failed.
    """

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    not_updated: int = 0  # differing persons left as they are (updates off or stopped)
    errors: list[SyncError] = field(default_factory=list)
    message: str = ""
    achieved: int = 0  # items that ended right (done now or already right)

    def add_error(self, **fields) -> None:
        self.errors.append(SyncError(**fields))

    def add_warning(self, **fields) -> None:
        self.errors.append(SyncError(severity=SyncError.Severity.WARNING, **fields))

    @property
    def failures(self) -> list[SyncError]:
        return [e for e in self.errors if e.severity != SyncError.Severity.WARNING]

    @property
    def warnings(self) -> list[SyncError]:
        return [e for e in self.errors if e.severity == SyncError.Severity.WARNING]

    @property
    def status(self) -> str:
        if not self.failures:
            return SyncRun.Status.SUCCESS
        if self.achieved or self.created or self.updated or self.deleted or self.skipped:
            return SyncRun.Status.PARTIAL
        return SyncRun.Status.FAILURE


def finish_run(*, run: SyncRun, outcome: Outcome) -> SyncRun:
    """Write the outcome: errors in bulk, counters and status in one conditional update."""
    now = timezone.now()
    for error in outcome.errors:
        error.run_id = run.pk
    with transaction.atomic():
        SyncError.objects.bulk_create(outcome.errors, batch_size=1000)
        SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=outcome.status,
            finished_at=now,
            created_count=outcome.created,
            updated_count=outcome.updated,
            deleted_count=outcome.deleted,
            skipped_count=outcome.skipped,
            not_updated_count=outcome.not_updated,
            failed_count=len(outcome.failures),
            warning_count=len(outcome.warnings),
            message=outcome.message,
            error_type=SyncRun.ErrorType.NONE,
        )
    run.refresh_from_db()
    return run


def fail_run(
    *, run: SyncRun, error_type: str, code: str, message: str, outcome: Outcome | None = None
) -> SyncRun:
    """End a run as failure with a run-level error that says what to do."""
    now = timezone.now()
    errors = list(outcome.errors) if outcome else []
    errors.append(SyncError(code=code, message=message, target_date=run.target_date))
    for error in errors:
        error.run_id = run.pk
    with transaction.atomic():
        SyncError.objects.bulk_create(errors, batch_size=1000)
        SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.FAILURE,
            finished_at=now,
            error_type=error_type,
            message=message,
            failed_count=sum(e.severity != SyncError.Severity.WARNING for e in errors),
            warning_count=sum(e.severity == SyncError.Severity.WARNING for e in errors),
            not_updated_count=outcome.not_updated if outcome else 0,
            created_count=outcome.created if outcome else 0,
            updated_count=outcome.updated if outcome else 0,
            deleted_count=outcome.deleted if outcome else 0,
            skipped_count=outcome.skipped if outcome else 0,
        )
    run.refresh_from_db()
    return run


def postpone_run(*, run: SyncRun, until: datetime, message: str) -> SyncRun:
    """Put a running run back to waiting until ``until`` (KOT window end, or a retry's backoff)."""
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.WAITING, not_before=until, message=message, heartbeat_at=None
    )
    run.refresh_from_db()
    return run


def retry_delay(attempt: int) -> timedelta | None:
    """Backoff before the next attempt after ``attempt`` attempts, or None when they're spent."""
    delays = settings.SYNC_RETRY_DELAYS_MINUTES
    if attempt > len(delays):
        return None
    return timedelta(minutes=delays[attempt - 1])
