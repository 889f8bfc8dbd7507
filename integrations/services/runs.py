"""Creating, claiming and finishing runs: the run row is the truth every page reads.

Status changes are conditional UPDATEs whose row count is checked, so two workers (or two
clusters) can never both own a run, and the database's partial unique index keeps at most one
``running`` run per tenant and kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.clock import JST

from ..kinds import kind_of
from ..models import SyncError, SyncRun, Tenant
from ..queue import enqueue_run, enqueue_run_mail  # integrations/queue.py
from .clients import connect_setting
from .workday import start_wait

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
    if kind_of(kind).dated:
        runs = runs.filter(target_date=target_date)
    return runs.order_by("created_at", "id").first()


def describe(run: SyncRun) -> str:
    """A short Japanese name for a run, e.g. "勤怠連携 #12 (2026年11月24日)"."""
    text = f"{run.get_kind_display()} #{run.pk}"
    if run.target_date:
        text += f" ({run.target_date:%Y年%m月%d日})"
    return text


def _join(existing: SyncRun, *, allow_mass_create: bool, notices: list[str]) -> RunRequest:
    """The same work is already queued or running: join it (and give it support's override of
    the creation guard, while it has not started)."""
    message = f"{describe(existing)} は既に{existing.get_status_display()}です。"
    if not allow_mass_create:
        message += "新しい実行は登録せず、その結果をお待ちください。"
        return RunRequest(run=existing, created=False, message=message, notices=notices)
    granted = SyncRun.objects.filter(
        pk=existing.pk, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]
    ).update(allow_mass_create=True)
    existing.refresh_from_db()
    message += (
        "この実行で一括登録の上限を超えて登録できるようにしました。"
        if granted
        else "実行中のため上限の解除は反映できません。終了後にもう一度操作してください。"
    )
    return RunRequest(run=existing, created=False, message=message, notices=notices)


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
    if kind_of(kind).dated and target_date is None:
        raise RunRefused(f"{SyncRun.Kind(kind).label}の対象日を指定してください。")
    if not kind_of(kind).dated:
        target_date = None

    notices = []
    if setting.is_paused(kind) and trigger != SyncRun.Trigger.SCHEDULE:
        notices.append(
            f"{SyncRun.Kind(kind).label}はスケジュール実行を一時停止中ですが、手動実行は行います。"
        )
    if slot is None:
        existing = _active_duplicate(tenant=tenant, kind=kind, target_date=target_date)
        if existing is not None:
            return _join(existing, allow_mass_create=allow_mass_create, notices=notices)

    now = timezone.now()
    # Inside a KOT window, or before its working day ended, the run waits (and says until when).
    end, wait = start_wait(setting=setting, kind=kind, target_date=target_date, now=now)
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
        message=wait,
    )
    message = f"{describe(run)} を登録しました。" + wait
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


class RunTaken(BaseException):
    """This worker no longer holds its lease: the reaper resumed its run, another worker claimed
    it, or another poll took the tenant.

    A BaseException, so the engines' ``except Exception`` blocks never swallow it: it stops the
    worker before its next write, and nothing is recorded or mailed by this worker.
    """


class WorkerStopping(BaseException):
    """The worker's cluster is stopping (SIGTERM): hand the run back before the next write."""


class SyncAborted(Exception):
    """A run stops before writing anything, with a message that says what to do (a guard, an
    empty KOT answer); the run ends FAILURE as a configuration problem."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


def lease_seconds() -> float:
    return float(settings.SYNC_RUN_LEASE_SECONDS)


def stale_runs(now: datetime):
    """Running runs whose worker no longer holds the lease (heartbeat older than the lease, or
    none): the reaper resumes them, and another writer may take their ledger rows."""
    cutoff = now - timedelta(seconds=lease_seconds())
    return SyncRun.objects.filter(status=SyncRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )


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


ANY = object()  # end_run's heartbeat_at: not a condition


def end_run(
    *,
    run: SyncRun,
    status: str,
    error_type: str = SyncRun.ErrorType.NONE,
    message: str = "",
    outcome: Outcome | None = None,
    code: str = "",
    token: int | None = None,
    heartbeat_at: datetime | None | object = ANY,
    from_statuses: tuple[str, ...] = (SyncRun.Status.RUNNING,),
    now: datetime | None = None,
) -> bool:
    """The one way a run ends: record its result and errors, then queue its failure mail.

    The UPDATE is conditional: on ``from_statuses`` (running), on the lease ``token`` (the
    attempt the worker claimed) and, for the reaper, on the stale ``heartbeat_at`` it saw. When
    the row no longer matches (another worker or the reaper has the run), nothing is written
    and no mail leaves; False is returned. ``code`` adds one run-level error with ``message``.
    A FAILURE or PARTIAL run's mail is a task of its own, sent after the commit.
    """
    now = now or timezone.now()
    errors = list(outcome.errors) if outcome else []
    if code:
        errors.append(
            SyncError(code=code, message=message, target_date=run.target_date, created_at=now)
        )
    for error in errors:
        error.run_id = run.pk
    rows = SyncRun.objects.filter(pk=run.pk, status__in=from_statuses)
    if token is not None:
        rows = rows.filter(attempt=token)
    if heartbeat_at is not ANY:
        rows = rows.filter(heartbeat_at=heartbeat_at)
    failed = sum(e.severity != SyncError.Severity.WARNING for e in errors)
    warned = len(errors) - failed
    if outcome is not None:
        counts: dict[str, Any] = {
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "deleted_count": outcome.deleted,
            "skipped_count": outcome.skipped,
            "not_updated_count": outcome.not_updated,
            "failed_count": failed,
            "warning_count": warned,
        }
    else:
        # No outcome: the counts the run holds stay (a collecting run counted as it went).
        counts = {
            "failed_count": F("failed_count") + failed,
            "warning_count": F("warning_count") + warned,
        }
    with transaction.atomic():
        ended = rows.update(
            status=status, finished_at=now, error_type=error_type, message=message, **counts
        )
        if ended != 1:
            log.warning("run %s: not ended as %s, it is no longer this worker's", run.pk, status)
            return False
        SyncError.objects.bulk_create(errors, batch_size=1000)
        if status in (SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL):
            enqueue_run_mail(run_id=run.pk)
    return True


def _ended(run: SyncRun, ended: bool) -> SyncRun:
    if not ended:
        raise RunTaken(f"run {run.pk} is no longer this worker's")
    run.refresh_from_db()
    return run


def finish_run(*, run: SyncRun, outcome: Outcome) -> SyncRun:
    """Write a worker's outcome (fenced by its attempt); RunTaken when the run is not its own."""
    ended = end_run(
        run=run,
        status=outcome.status,
        message=outcome.message,
        outcome=outcome,
        token=run.attempt,
    )
    return _ended(run, ended)


def fail_run(
    *, run: SyncRun, error_type: str, code: str, message: str, outcome: Outcome | None = None
) -> SyncRun:
    """End a worker's run as failure with a run-level error that says what to do (fenced)."""
    ended = end_run(
        run=run,
        status=SyncRun.Status.FAILURE,
        error_type=error_type,
        code=code,
        message=message,
        outcome=outcome,
        token=run.attempt,
    )
    return _ended(run, ended)


def postpone_run(*, run: SyncRun, until: datetime, message: str) -> SyncRun:
    """Put a running run back to waiting until ``until`` (KOT window end, or a retry's backoff)."""
    changed = SyncRun.objects.filter(
        pk=run.pk, status=SyncRun.Status.RUNNING, attempt=run.attempt
    ).update(status=SyncRun.Status.WAITING, not_before=until, message=message, heartbeat_at=None)
    return _ended(run, changed == 1)


HANDBACK_MESSAGE = "ワーカーの停止(再起動など)のため中断しました。自動で再開します。"
RESUME_MESSAGE = "処理中のワーカーが停止したため、自動で再開します({n}回目)。"


def hand_back_run(*, run: SyncRun, message: str = HANDBACK_MESSAGE) -> bool:
    """A stopping worker gives its run back: queued again, lease cleared, no mail.

    Conditional on the worker's token; counts as one automatic resumption. ``enqueued_at`` is
    cleared, so the dispatcher's next tick hands it out again.
    """
    handed = SyncRun.objects.filter(
        pk=run.pk, status=SyncRun.Status.RUNNING, attempt=run.attempt
    ).update(
        status=SyncRun.Status.QUEUED,
        heartbeat_at=None,
        enqueued_at=None,
        not_before=None,
        resumes=F("resumes") + 1,
        message=message,
    )
    if handed:
        # Not enqueued from here: the stopping cluster's pusher could take the task and drop it.
        # The dispatcher's next tick (within a minute) hands it to a running cluster.
        log.warning("run %s handed back (attempt %s): the worker is stopping", run.pk, run.attempt)
    return handed == 1


def resume_lost_run(
    *, run_id: int, attempt: int, heartbeat_at: datetime | None, resumes: int
) -> bool:
    """The reaper's move for a run whose worker's lease ran out: queue it again, same row.

    Conditional on the stale heartbeat and the attempt the reaper saw, so a worker that beat
    meanwhile keeps its run. The engines read KOT and SenseLink first and the dead worker's
    writes are fenced, so resuming posts nothing twice.
    """
    rows = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, attempt=attempt, heartbeat_at=heartbeat_at
    )
    resumed = rows.update(
        status=SyncRun.Status.QUEUED,
        heartbeat_at=None,
        enqueued_at=None,
        not_before=None,
        resumes=F("resumes") + 1,
        message=RESUME_MESSAGE.format(n=resumes + 1),
    )
    return resumed == 1


WORKER_LOST_MESSAGE = (
    "処理中のワーカーが停止したため、連携を中断しました(サーバーの再起動など)。再実行してください。"
)
WORKER_LOST_AGAIN_MESSAGE = (
    "処理中のワーカーが繰り返し停止したため({n}回自動で再開しました)、連携を中断しました。"
    "再実行してください。"
)


def reap(
    *,
    run_id: int,
    attempt: int,
    heartbeat_at: datetime | None,
    resumes: int,
    target_date: date | None,
    now: datetime,
) -> bool:
    """The reaper's move for one run whose lease ran out: resume it (queued again, same row),
    or after SYNC_MAX_RESUMES fail it as ``worker_lost`` with its mail. Conditional on the
    stale heartbeat and attempt seen, so a worker that beat meanwhile keeps its run; once it
    matched, the old worker's next renewal fails and it sends nothing more."""
    if resumes < settings.SYNC_MAX_RESUMES:
        if resume_lost_run(
            run_id=run_id, attempt=attempt, heartbeat_at=heartbeat_at, resumes=resumes
        ):
            log.warning(
                "run %s: worker lost (last heartbeat %s), resumed (%s)",
                run_id,
                heartbeat_at,
                resumes + 1,
            )
            return True
        return False
    message = WORKER_LOST_AGAIN_MESSAGE.format(n=resumes) if resumes else WORKER_LOST_MESSAGE
    if end_run(
        run=SyncRun(pk=run_id, target_date=target_date),
        status=SyncRun.Status.FAILURE,
        error_type=SyncRun.ErrorType.WORKER_LOST,
        code="worker_lost",
        message=message,
        token=attempt,
        heartbeat_at=heartbeat_at,
        now=now,
    ):
        log.warning("run %s: worker lost (last heartbeat %s), failed", run_id, heartbeat_at)
        return True
    return False


def retry_delay(attempt: int) -> timedelta | None:
    """Backoff before the next attempt after ``attempt`` attempts (automatic resumptions not
    counted), or None when they're spent."""
    delays = settings.SYNC_RETRY_DELAYS_MINUTES
    if attempt > len(delays):
        return None
    return timedelta(minutes=delays[attempt - 1])


# --- collecting runs (the real-time poll's run of a working day) ------------------------------

REALTIME_LABEL = "リアルタイム"


def collecting_run(*, tenant: Tenant, working_date: date, now: datetime) -> SyncRun:
    """The tenant's real-time run of a working day, opened at its first punch or error.

    One per tenant and working date (a database constraint); it stays ``collecting`` (受付中,
    never blocking the daily run) while polls add to it, and ``close_ended_runs`` ends it.
    """
    runs = SyncRun.objects.filter(
        tenant=tenant,
        kind=SyncRun.Kind.ATTENDANCE,
        trigger=SyncRun.Trigger.REALTIME,
        target_date=working_date,
    )
    run = runs.first()
    if run is not None:
        return run
    try:
        with transaction.atomic():
            return SyncRun.objects.create(
                tenant=tenant,
                kind=SyncRun.Kind.ATTENDANCE,
                trigger=SyncRun.Trigger.REALTIME,
                status=SyncRun.Status.COLLECTING,
                target_date=working_date,
                triggered_by_label=REALTIME_LABEL,
                created_at=now,
                started_at=now,
                heartbeat_at=now,
                message="リアルタイム出勤連携: 勤務日の終わりまで出勤打刻を受け付けます。",
            )
    except IntegrityError:
        return runs.get()


def add_to_run(*, run_id: int, created: int, errors: list[SyncError], now: datetime) -> None:
    """Count a poll's punches and errors on a collecting run (one statement each)."""
    for error in errors:
        error.run_id = run_id
    failed = sum(e.severity != SyncError.Severity.WARNING for e in errors)
    with transaction.atomic():
        SyncError.objects.bulk_create(errors)
        SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.COLLECTING).update(
            created_count=F("created_count") + created,
            failed_count=F("failed_count") + failed,
            warning_count=F("warning_count") + len(errors) - failed,
            heartbeat_at=now,
        )


def close_ended_runs(*, now: datetime, day_ended: Callable[[SyncRun], bool]) -> int:
    """End the collecting runs whose working day is over, through ``end_run`` (the usual
    status rules and the one failure mail). ``day_ended(run)``: the tenant's working-day rule."""
    today = now.astimezone(JST).date()
    collecting = SyncRun.objects.filter(
        status=SyncRun.Status.COLLECTING, target_date__lt=today
    ).select_related("tenant")
    closed = 0
    for run in collecting:
        if not day_ended(run):
            continue
        if not run.failed_count:
            status = SyncRun.Status.SUCCESS
        elif run.created_count or run.skipped_count:
            status = SyncRun.Status.PARTIAL
        else:
            status = SyncRun.Status.FAILURE
        closed += end_run(
            run=run,
            status=status,
            message=f"{run.target_date:%Y年%m月%d日}: リアルタイム出勤打刻{run.created_count}件"
            f" 失敗{run.failed_count} 警告{run.warning_count}",
            from_statuses=(SyncRun.Status.COLLECTING,),
            now=now,
        )
    return closed
