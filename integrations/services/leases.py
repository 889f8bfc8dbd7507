"""Leases: a writer's hold on its work — a run (its attempt) or a tenant's poll (its token).

Every upstream write is fenced by its writer's lease (``Lease.guard`` right before each attempt),
and another writer takes over a writer's ledger rows only once ``fence`` says that writer lost
its lease for good — the reaper's test for a run, a spent token for a poll; never an age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone

from ..models import RealtimeState, SyncRun
from ..queue import stopping
from .runs import RunTaken, WorkerStopping, lease_seconds, reap, stale_runs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """What a lease holds: the rows that say "still mine", and what a renewal writes.

    ``owner`` names the holder in the punch ledger ("run:<id>:<attempt>", "poll:<setting>:<token>").
    """

    owner: str
    rows: Callable[[], QuerySet]
    renewal: Callable[[datetime], dict[str, Any]]


def run_holder(run: SyncRun) -> Holder:
    """A worker's hold on its run: the run's ``attempt`` (set by claim_run) is the token."""
    pk, attempt = run.pk, run.attempt
    return Holder(
        owner=f"run:{pk}:{attempt}",
        rows=lambda: SyncRun.objects.filter(pk=pk, status=SyncRun.Status.RUNNING, attempt=attempt),
        renewal=lambda now: {"heartbeat_at": now},
    )


def poll_holder(*, state_id: int, setting_id: int, token: int) -> Holder:
    """A real-time poll's hold on its tenant: ``RealtimeState.poll_token`` is the token."""
    return Holder(
        owner=f"poll:{setting_id}:{token}",
        rows=lambda: RealtimeState.objects.filter(pk=state_id, poll_token=token),
        renewal=lambda now: {"poll_lease_until": now + timedelta(seconds=lease_seconds())},
    )


class Lease:
    """A writer's hold on its work: a run (its attempt) or a tenant's poll (its token).

    Calling it renews the lease (the run's heartbeat, the poll's lease end) a few times per
    lease, at most once a minute, so the number of queries does not grow with the work.
    ``guard()`` comes before every upstream write (punch POST, person create/update/delete): it
    passes without a query while the last renewal is younger than half the lease (the reaper
    waits a whole lease, and every upstream call has an overall deadline well under half of it),
    and renews first otherwise. A renewal that finds the work taken raises ``RunTaken``; a
    stopping cluster raises ``WorkerStopping``. Both are checked in any thread (parallel writes
    call ``guard`` in their own threads).
    """

    def __init__(self, holder: SyncRun | Holder, *, every: float | None = None):
        if isinstance(holder, SyncRun):
            holder = run_holder(holder)
        self.holder = holder
        self.owner = holder.owner
        lease = lease_seconds()
        if every is None:
            every = min(60.0, lease / 5)
        self.every = every
        self.window = lease / 2
        self.last = time.monotonic()
        self.lost = False
        self.renewals = 0
        self._owner_thread = threading.get_ident()
        self._lock = threading.Lock()

    def owned(self) -> QuerySet:
        """The held row, if it is still this worker's."""
        return self.holder.rows()

    def check(self) -> None:
        """Raise when the lease is known lost or the cluster is stopping (no query)."""
        if self.lost:
            raise RunTaken(f"{self.owner} is no longer this worker's")
        if stopping():
            raise WorkerStopping(f"{self.owner}: the worker is stopping")

    def renew(self) -> None:
        """Renew, conditional on the token; RunTaken when the work is gone."""
        with self._lock:
            self.check()
            try:
                renewed = self.owned().update(**self.holder.renewal(timezone.now()))
            finally:
                if threading.get_ident() != self._owner_thread:
                    connection.close()  # a write thread's own connection: don't leave it open
            self.renewals += 1
            if renewed != 1:
                self.lost = True
                log.warning(
                    "%s: taken by another worker; stopping before the next write", self.owner
                )
                raise RunTaken(f"{self.owner} is no longer this worker's")
            self.last = time.monotonic()

    def __call__(self) -> None:
        """The heartbeat: cheap to call in a loop; renews when due."""
        self.check()
        if time.monotonic() - self.last >= self.every:
            self.renew()

    def guard(self) -> None:
        """Before an upstream write: raise unless the work is surely still this worker's."""
        self.check()
        if time.monotonic() - self.last >= self.window:
            self.renew()


def fence(owner: str, *, now: datetime) -> bool:
    """Whether the writer named ``owner`` has lost its lease for good — fenced here if needed,
    so that it can never renew it and send again. Only then may another writer take its
    ledger rows; never because of a row's age.

    A run: gone from ``running`` under that attempt, or stale by the reaper's test
    (``stale_runs``) and reaped here exactly as the reaper would. A poll: its token replaced,
    or its lease over and its token spent here.
    """
    kind, _, rest = owner.partition(":")
    first, _, second = rest.partition(":")
    if not (first.isdigit() and second.isdigit()):
        return True  # no lease can renew an owner that names none
    pk, token = int(first), int(second)
    if kind == "run":
        mine = SyncRun.objects.filter(pk=pk, status=SyncRun.Status.RUNNING, attempt=token)
        run = mine.values("heartbeat_at", "resumes", "target_date").first()
        if run is None:
            return True
        if not stale_runs(now).filter(pk=pk).exists():
            return False
        reap(run_id=pk, attempt=token, now=now, **run)
        return not mine.exists()
    if kind == "poll":
        state = RealtimeState.objects.filter(setting_id=pk, poll_token=token)
        if state.filter(poll_lease_until__gte=now).exists():
            return False
        # Spend the token: a poll that wakes up late can no longer renew, and so sends nothing.
        state.update(poll_token=F("poll_token") + 1, poll_lease_until=None)
        return True
    return True
