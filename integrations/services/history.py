"""Bounded history: runs, errors and django-q2's task rows do not grow for ever (SPEC 6).

Finished runs older than ``SYNC_HISTORY_DAYS`` (default 400: payroll audits look a year back)
are deleted with their errors, 1,000 runs per transaction, errors first, so no statement holds
a long lock and a page or a sync waits at most one small batch. A run that is still queued,
waiting or running is never deleted, whatever its age. The same pass keeps django-q2's failed
task rows to the newest ``save_limit`` (django-q2 bounds only successes itself), deletes
expired sessions, and forgets heartbeats of hosts gone for good.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import ClusterHeartbeat, PunchLedger, SyncError, SyncRun
from . import push

log = logging.getLogger(__name__)

BATCH = 1000
# The history kept is between one day and a hundred years (a larger number would overflow the
# date arithmetic, not keep more).
MIN_DAYS, MAX_DAYS = 1, 36500
# A heartbeat row not written for this long belongs to a machine taken out of service.
HEARTBEAT_KEEP = timedelta(days=30)


@dataclass
class PruneReport:
    """What one prune removed (or, dry, would remove)."""

    cutoff: datetime
    runs: int = 0
    errors: int = 0
    task_failures: int = 0
    sessions: int = 0
    heartbeats: int = 0
    push_messages: int = 0  # SenseLink push message ids past PUSH_MESSAGE_DAYS
    complete: bool = True  # False when the time budget ran out before the end

    def __str__(self) -> str:
        return (
            f"runs={self.runs} errors={self.errors} task_failures={self.task_failures} "
            f"sessions={self.sessions} heartbeats={self.heartbeats}"
            + (f" push_messages={self.push_messages}" if self.push_messages else "")
            + ("" if self.complete else " (time budget spent; the rest goes next time)")
        )


def cutoff_for(*, days: int, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)


def prunable_runs(*, cutoff: datetime):
    """Finished runs created before ``cutoff`` (never an active one)."""
    return SyncRun.objects.filter(
        created_at__lt=cutoff, status__in=SyncRun.FINISHED_STATUSES
    ).order_by("created_at", "id")


def prune_history(
    *,
    days: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    max_seconds: float | None = None,
) -> PruneReport:
    """Delete what is older than ``days`` (default SYNC_HISTORY_DAYS), in small transactions.

    ``dry_run`` only counts. ``max_seconds`` bounds the time spent on runs (the nightly task
    sets it, so a first prune of years of history spreads over a few nights instead of holding
    a worker for hours); whatever is left is deleted the next time.
    """
    days = settings.SYNC_HISTORY_DAYS if days is None else days
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}")
    now = now or timezone.now()
    report = PruneReport(cutoff=cutoff_for(days=days, now=now))
    old_runs = prunable_runs(cutoff=report.cutoff)
    if dry_run:
        report.runs = old_runs.count()
        report.errors = SyncError.objects.filter(run__in=old_runs.values("pk")).count()
        report.task_failures = _surplus_task_failures().count()
        report.sessions = _expired_sessions(now).count()
        report.heartbeats = _stale_heartbeats(now).count()
        return report

    started = time.monotonic()
    while True:
        ids = list(old_runs.values_list("pk", flat=True)[:batch])
        if not ids:
            break
        with transaction.atomic():
            errors, _ = SyncError.objects.filter(run_id__in=ids).delete()
            # The collector honours every on_delete pointing at runs (reruns keep theirs, set
            # to NULL): only the run rows are left to delete here.
            _total, deleted = SyncRun.objects.filter(pk__in=ids).delete()
        report.errors += errors
        report.runs += deleted.get(SyncRun._meta.label, 0)
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            report.complete = not old_runs.exists()
            break
    report.task_failures = _delete_surplus_task_failures()
    report.sessions, _ = _expired_sessions(now).delete()
    report.heartbeats, _ = _stale_heartbeats(now).delete()
    # The punch ledger (real-time clock-in) is bounded by the same history (a row per punch).
    ledger_rows, _ = PunchLedger.objects.filter(working_date__lt=report.cutoff.date()).delete()
    if ledger_rows:
        log.info("prune_history: %d punch ledger row(s) deleted", ledger_rows)
    report.push_messages = push.prune_messages(now=now)
    log.info("prune_history (older than %s): %s", report.cutoff.isoformat(), report)
    return report


def _surplus_task_failures():
    """django-q2 failures older than the newest save_limit ones (django-q2 keeps them all)."""
    from django_q.models import Failure

    keep = int(settings.Q_CLUSTER.get("save_limit", 2000))
    if keep <= 0 or Failure.objects.count() <= keep:
        return Failure.objects.none()
    newest = Failure.objects.order_by("-stopped").values_list("stopped", flat=True)
    oldest_kept = newest[keep - 1 : keep].first()  # ties with it are kept too
    return Failure.objects.filter(stopped__lt=oldest_kept)


def _delete_surplus_task_failures() -> int:
    surplus = _surplus_task_failures()
    deleted = 0
    while ids := list(surplus.values_list("id", flat=True)[:BATCH]):
        with transaction.atomic():
            count, _ = surplus.model.objects.filter(id__in=ids).delete()
        deleted += count
    return deleted


def _expired_sessions(now: datetime):
    from django.contrib.sessions.models import Session

    return Session.objects.filter(expire_date__lt=now)


def _stale_heartbeats(now: datetime):
    return ClusterHeartbeat.objects.filter(beat_at__lt=now - HEARTBEAT_KEEP)
