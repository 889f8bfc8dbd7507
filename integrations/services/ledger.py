"""The punch ledger: every punch the portal sends to KOT is a row written before its POST.

KOT refuses every read inside its forbidden windows but accepts punches, so the real-time poll
cannot "read KOT first". The ledger (``PunchLedger``, one row per tenant, employee, working date
and punch kind, unique in the database) keeps each punch exactly-once without reading KOT:

* a sender **reserves** a row (``sending``) before the POST — a racing sender (another cluster's
  poll, the daily run) meets the unique constraint and does not send;
* the answer marks it ``posted`` (2xx), ``failed`` (a definite refusal) or ``unknown`` (the answer
  was lost); a ``sending`` row older than the lease belongs to a dead worker: ``unknown``;
* an ``unknown`` row is never sent again blindly: the first poll or run outside KOT's windows reads
  KOT for it (``settle``) — found: ``posted``; not found: sent once more.

Queries per call do not grow with the number of punches (bulk inserts, chunked key filters).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q

from ..models import PunchLedger, SyncError, SyncRun

log = logging.getLogger(__name__)

State = PunchLedger.State
CHUNK = 300

Key = tuple[str, date, str]  # (employee code, working date, punch: "clock_in" / "clock_out")


@dataclass(frozen=True)
class Entry:
    """A punch to reserve: who, which working date, which kind, at what time."""

    employee_code: str
    working_date: date
    punch: str
    time: datetime

    @property
    def key(self) -> Key:
        return (self.employee_code, self.working_date, self.punch)


def run_owner(run: SyncRun) -> str:
    return f"run:{run.pk}:{run.attempt}"


def poll_owner(setting_id: int, token: int) -> str:
    return f"poll:{setting_id}:{token}"


def _keys_q(keys: Iterable[Key]) -> Q:
    q = Q(pk__in=[])
    for code, day, punch in keys:
        q |= Q(employee_code=code, working_date=day, punch=punch)
    return q


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rows_for(*, tenant_id: int, keys: Iterable[Key]) -> dict[Key, PunchLedger]:
    """The ledger rows of these punches, by key."""
    found: dict[Key, PunchLedger] = {}
    for chunk in _chunks(list(set(keys))):
        for row in PunchLedger.objects.filter(tenant_id=tenant_id).filter(_keys_q(chunk)):
            found[(row.employee_code, row.working_date, row.punch)] = row
    return found


def rows_of_day(*, tenant_id: int, working_date: date) -> dict[Key, PunchLedger]:
    rows = PunchLedger.objects.filter(tenant_id=tenant_id, working_date=working_date)
    return {(r.employee_code, r.working_date, r.punch): r for r in rows}


def expire_stale(*, tenant_id: int, now: datetime) -> int:
    """``sending`` rows whose sender is gone become ``unknown``: older than the lease, or held
    by a run that no longer runs under that attempt, or by a poll that lost its lease."""
    from ..models import RealtimeState

    cutoff = now - timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)
    sending = PunchLedger.objects.filter(tenant_id=tenant_id, state=State.SENDING)
    expired = sending.filter(sent_at__lt=cutoff).update(state=State.UNKNOWN)
    for owner in set(sending.values_list("owner", flat=True)):
        kind, _, rest = owner.partition(":")
        first, _, second = rest.partition(":")
        if not (first.isdigit() and second.isdigit()):
            continue
        if kind == "run":
            alive = SyncRun.objects.filter(
                pk=int(first), status=SyncRun.Status.RUNNING, attempt=int(second)
            ).exists()
        else:
            alive = RealtimeState.objects.filter(
                setting_id=int(first), poll_token=int(second), poll_lease_until__gte=now
            ).exists()
        if not alive:
            expired += sending.filter(owner=owner).update(state=State.UNKNOWN)
    if expired:
        log.warning("tenant %s: %d punch(es) whose sender died: unknown", tenant_id, expired)
    return expired


def reserve(
    *,
    tenant_id: int,
    entries: list[Entry],
    owner: str,
    run_id: int | None,
    now: datetime,
    retake: tuple[str, ...] = (),
) -> set[Key]:
    """Write ``sending`` rows for these punches before their POST; return the keys this owner
    now holds (and may send). A row that exists already is not taken, unless its state is in
    ``retake`` (the daily run, which has just read KOT, retakes failed and unknown punches)."""
    if not entries:
        return set()
    by_key = {e.key: e for e in entries}
    PunchLedger.objects.bulk_create(
        [
            PunchLedger(
                tenant_id=tenant_id,
                employee_code=e.employee_code,
                working_date=e.working_date,
                punch=e.punch,
                state=State.SENDING,
                punch_time=e.time,
                owner=owner,
                run_id=run_id,
                sent_at=now,
            )
            for e in by_key.values()
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,
    )
    held: set[Key] = set()
    for chunk in _chunks(list(by_key)):
        rows = PunchLedger.objects.filter(tenant_id=tenant_id).filter(_keys_q(chunk))
        if retake:
            for row in rows.filter(state__in=retake).exclude(owner=owner):
                key = (row.employee_code, row.working_date, row.punch)
                # Conditional on the state seen: a racing sender retakes it only once.
                PunchLedger.objects.filter(pk=row.pk, state=row.state, owner=row.owner).update(
                    state=State.SENDING,
                    owner=owner,
                    run_id=run_id,
                    sent_at=now,
                    punch_time=by_key[key].time,
                    settled_at=None,
                )
        held.update(
            rows.filter(state=State.SENDING, owner=owner).values_list(
                "employee_code", "working_date", "punch"
            )
        )
    return held


def mark(*, tenant_id: int, owner: str, keys: Iterable[Key], state: str, now: datetime) -> int:
    """Record the answer of this owner's POSTs (conditional on still holding the rows)."""
    marked = 0
    for chunk in _chunks(list(keys)):
        marked += (
            PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING)
            .filter(_keys_q(chunk))
            .update(state=state, settled_at=now if state != State.UNKNOWN else None)
        )
    return marked


def release(*, tenant_id: int, owner: str, keys: Iterable[Key]) -> int:
    """Give back rows whose POST was refused before KOT processed it (throttled, maintenance,
    connection refused): the punch may be sent again by the next sender."""
    released = 0
    for chunk in _chunks(list(keys)):
        released += (
            PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING)
            .filter(_keys_q(chunk))
            .delete()[0]
        )
    return released


def settle_found(*, tenant_id: int, keys: Iterable[Key], now: datetime) -> int:
    """Punches a KOT read found: their unknown (or dead-sender) rows are posted."""
    settled = 0
    for chunk in _chunks(list(keys)):
        settled += (
            PunchLedger.objects.filter(tenant_id=tenant_id, state=State.UNKNOWN)
            .filter(_keys_q(chunk))
            .update(state=State.POSTED, settled_at=now)
        )
    return settled


def unknown_rows(*, tenant_id: int) -> list[PunchLedger]:
    return list(PunchLedger.objects.filter(tenant_id=tenant_id, state=State.UNKNOWN))


PUNCH_OF_CODE = {1: SyncError.Punch.CLOCK_IN.value, 2: SyncError.Punch.CLOCK_OUT.value}
CODE_OF_PUNCH = {value: key for key, value in PUNCH_OF_CODE.items()}
