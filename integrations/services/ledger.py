"""The punch ledger's rows: the storage under the one sending protocol (``punches.py``).

Nothing here sends anything; ``punches.py`` is the only caller that changes rows. Every change
is a conditional UPDATE (or an insert that ignores conflicts) whose effect is read back, so two
writers never both hold a row:

* **insert**: a new row ``sending`` for its owner; a row that exists already is not taken;
* **retake**: a ``failed`` or ``unknown`` row, only while its ``version`` is the one the writer
  saw *before* its KOT read (so the read is fresher than the row's last change);
* **stamp**: ``sent_at`` = the moment of the POST, only while the owner still holds the row;
* **finish** / **release**: the POST's answer, only while the owner still holds the row;
* **settle**: a KOT read decided an ``unknown`` (or ``failed``) row, again on its version;
* **orphans**: ``sending`` rows whose owner lost its lease (``leases.fence``) — never by
  age — become ``unknown`` (their POST may have left) or are released (never sent).

Queries per call do not grow with the number of punches (bulk inserts, chunked key filters).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import F, Q

from ..models import PunchLedger, SyncError
from .leases import fence

log = logging.getLogger(__name__)

State = PunchLedger.State
CHUNK = 300

Key = tuple[str, date, str]  # (employee code, working date, punch: "clock_in" / "clock_out")
PUNCH_OF_CODE = {1: SyncError.Punch.CLOCK_IN.value, 2: SyncError.Punch.CLOCK_OUT.value}
CODE_OF_PUNCH = {value: key for key, value in PUNCH_OF_CODE.items()}


@dataclass(frozen=True)
class Seen:
    """A ledger row as a writer saw it before reading KOT."""

    state: str
    version: int
    punch_time: datetime
    owner: str

    @property
    def sent(self) -> bool:
        """The row says the punch was (or may have been) sent."""
        return self.state in (State.POSTED, State.SENDING, State.UNKNOWN)


def key_of(row: PunchLedger) -> Key:
    return (row.employee_code, row.working_date, row.punch)


def _keys_q(keys: Iterable[Key]) -> Q:
    q = Q(pk__in=[])
    for code, day, punch in keys:
        q |= Q(employee_code=code, working_date=day, punch=punch)
    return q


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _seen(row: PunchLedger) -> Seen:
    return Seen(state=row.state, version=row.version, punch_time=row.punch_time, owner=row.owner)


# --- reading -------------------------------------------------------------------------------


def seen_for(*, tenant_id: int, keys: Iterable[Key]) -> dict[Key, Seen]:
    """The rows of these punches as they are now, by key."""
    found: dict[Key, Seen] = {}
    for chunk in _chunks(list(set(keys))):
        for row in PunchLedger.objects.filter(tenant_id=tenant_id).filter(_keys_q(chunk)):
            found[key_of(row)] = _seen(row)
    return found


def seen_of_day(*, tenant_id: int, working_date: date) -> dict[Key, Seen]:
    rows = PunchLedger.objects.filter(tenant_id=tenant_id, working_date=working_date)
    return {key_of(r): _seen(r) for r in rows}


def unknown(*, tenant_id: int, since: date, punch: str | None = None) -> dict[Key, Seen]:
    """The tenant's ``unknown`` rows of working dates from ``since`` on."""
    rows = PunchLedger.objects.filter(
        tenant_id=tenant_id, state=State.UNKNOWN, working_date__gte=since
    )
    if punch:
        rows = rows.filter(punch=punch)
    return {key_of(r): _seen(r) for r in rows}


# --- orphans: sending rows whose owner lost its lease --------------------------------------


def take_orphans(*, tenant_id: int, now: datetime) -> int:
    """``sending`` rows whose owner lost its lease for good (``leases.fence``: the reaper's test,
    never the row's age; the owner is fenced first, so it cannot send them any more): those
    whose POST was stamped become ``unknown``; those never sent are released."""
    sending = PunchLedger.objects.filter(tenant_id=tenant_id, state=State.SENDING)
    changed = 0
    for owner in set(sending.values_list("owner", flat=True)):
        if not fence(owner, now=now):
            continue
        theirs = sending.filter(owner=owner)
        changed += theirs.filter(sent_at__isnull=False).update(
            state=State.UNKNOWN, version=F("version") + 1
        )
        changed += theirs.filter(sent_at__isnull=True).delete()[0]
    if changed:
        log.warning("tenant %s: %d punch(es) of writers that lost their lease", tenant_id, changed)
    return changed


# --- the protocol's steps (called by punches.py only) ---------------------------------------


@dataclass(frozen=True)
class Entry:
    """A punch to reserve: who, which working date, which kind, at what time, for which run."""

    employee_code: str
    working_date: date
    punch: str
    time: datetime
    run_id: int | None

    @property
    def key(self) -> Key:
        return (self.employee_code, self.working_date, self.punch)


def held_by(*, tenant_id: int, owner: str, keys: Iterable[Key]) -> set[Key]:
    """Which of these rows ``owner`` holds (``sending`` under its name)."""
    held: set[Key] = set()
    for chunk in _chunks(list(keys)):
        held.update(
            PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING)
            .filter(_keys_q(chunk))
            .values_list("employee_code", "working_date", "punch")
        )
    return held


def insert(*, tenant_id: int, entries: list[Entry], owner: str, now: datetime) -> None:
    """New ``sending`` rows for ``owner``; a row that exists is left as it is."""
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
                run_id=e.run_id,
                reserved_at=now,
            )
            for e in entries
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,
    )


def retake(*, tenant_id: int, entry: Entry, seen: Seen, owner: str, now: datetime) -> bool:
    """Take a ``failed`` or ``unknown`` row for ``owner`` — only in the version seen before the
    writer's KOT read (a row changed since is someone else's news)."""
    if seen.state not in (State.FAILED, State.UNKNOWN):
        return False
    return bool(
        PunchLedger.objects.filter(
            tenant_id=tenant_id,
            employee_code=entry.employee_code,
            working_date=entry.working_date,
            punch=entry.punch,
            state=seen.state,
            version=seen.version,
        ).update(
            state=State.SENDING,
            owner=owner,
            run_id=entry.run_id,
            reserved_at=now,
            sent_at=None,
            settled_at=None,
            punch_time=entry.time,
            version=F("version") + 1,
        )
    )


def stamp(*, tenant_id: int, owner: str, keys: list[Key], now: datetime) -> set[Key]:
    """Right before their POSTs: ``sent_at`` = now on the rows ``owner`` still holds; returns
    those (a row taken meanwhile is not sent)."""
    if not keys:
        return set()
    rows = PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING).filter(
        _keys_q(keys)
    )
    if rows.update(sent_at=now) == len(keys):
        return set(keys)
    return held_by(tenant_id=tenant_id, owner=owner, keys=keys)


def finish(*, tenant_id: int, owner: str, keys: Iterable[Key], state: str, now: datetime) -> int:
    """Record the answer of ``owner``'s POSTs (posted, failed or unknown), while it holds them."""
    done = 0
    for chunk in _chunks(list(keys)):
        done += (
            PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING)
            .filter(_keys_q(chunk))
            .update(
                state=state,
                settled_at=None if state == State.UNKNOWN else now,
                version=F("version") + 1,
            )
        )
    return done


def release(*, tenant_id: int, owner: str, keys: Iterable[Key]) -> int:
    """Give back rows whose POST KOT refused before processing it (or that were never sent):
    any writer may send the punch later."""
    released = 0
    for chunk in _chunks(list(keys)):
        released += (
            PunchLedger.objects.filter(tenant_id=tenant_id, owner=owner, state=State.SENDING)
            .filter(_keys_q(chunk))
            .delete()[0]
        )
    return released


def settle(*, tenant_id: int, key: Key, seen: Seen, state: str, now: datetime) -> bool:
    """A KOT read (started after ``seen`` was taken) decided the row: ``posted`` (KOT holds it)
    or ``failed`` (KOT holds another punch of that kind). Conditional on the version seen."""
    code, day, punch = key
    return bool(
        PunchLedger.objects.filter(
            tenant_id=tenant_id,
            employee_code=code,
            working_date=day,
            punch=punch,
            state=seen.state,
            version=seen.version,
        ).update(state=state, settled_at=now, version=F("version") + 1)
    )


def record_found(*, tenant_id: int, key: Key, time: datetime, now: datetime) -> None:
    """KOT holds this punch and the ledger has no row: a ``posted`` row, so a later writer
    without a KOT read (the poll inside a window) does not send it."""
    code, day, punch = key
    PunchLedger.objects.bulk_create(
        [
            PunchLedger(
                tenant_id=tenant_id,
                employee_code=code,
                working_date=day,
                punch=punch,
                state=State.POSTED,
                punch_time=time,
                owner="",
                reserved_at=now,
                settled_at=now,
            )
        ],
        ignore_conflicts=True,
    )
