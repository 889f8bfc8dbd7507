"""Sending punches to KOT: the one protocol of every writer (SPEC 4.4).

The attendance run, its reruns and the real-time poll all send through ``send`` and settle
through ``settle``; nothing else POSTs a punch. The steps (docs/SYNC_ENGINE.md, "One sending
protocol"):

1. **Reserve** a ledger row per punch (``ledger.py``): a new row, or — for a writer that read
   KOT after it saw the ledger (``seen``) — a ``failed``/``unknown`` row still in the version it
   saw. A row another writer holds is left to it; it is taken over only once that writer lost its
   lease (``ledger.take_orphans``), never because of its age.
2. **POST**, each punch once: the lease's ``guard`` first, and ``sent_at`` stamped on the rows
   still held right before they leave.
3. **Classify** the answer (``classify``): *posted* (2xx); *released* — refused before KOT
   processed it (throttled beyond the client's resend budget, a forbidden window, the token
   refused, no connection made): the row is given back and the punch may be sent again;
   *failed* — a refusal of the punch itself that KOT documents (a 4xx with its error JSON):
   not stored; *unknown* — it may have landed (timeout
   after sending, a lost connection, any 5xx, an answer that is not KOT's JSON, a throttled
   answer that was not a clean refusal).
4. **Settle** an unknown row only by a KOT read that started after the row became unknown
   (``settle``: the rows are seen before the read, and changed only in the version seen):
   found → posted; another punch of that kind → failed; absent → sent again (or, right after
   the POST, failed: a rerun sends it).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone

from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    ForbiddenWindowError,
    NetworkError,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.kot import KotClient, KotPunch

from . import ledger
from .ledger import CODE_OF_PUNCH, Key, Seen, State
from .parallel import each_in_parallel

log = logging.getLogger(__name__)


def same_minute(a: datetime, b: datetime) -> bool:
    """Whether a punch KOT holds is ours: KOT's screens show HH:MM and whether it stores the
    seconds we send is not documented, so a punch of the same kind less than 60 s away is
    "already there" (a rerun never reports the portal's own punch as a conflict)."""
    return abs((a - b).total_seconds()) < 60


PUNCH_NAMES = {"clock_in": "出勤", "clock_out": "退勤"}


def already_punched_message(code: str, punch: str) -> str:
    """The manual's message for a punch KOT already holds at another time."""
    return (
        f"従業員コード:{code} の{PUNCH_NAMES[punch]}は既に打刻済みです。"
        "KING OF TIME管理画面をご確認ください。"
    )


def invalid_job_number_message(shown: str) -> str:
    """A job number refused because it holds a control character (connectors/text.py)."""
    return (
        f"従業員番号:{shown} に使用できない文字(制御文字)が含まれているため、この番号の認証記録"
        "は打刻に使用しませんでした。SenseLinkの従業員番号をご確認ください。"
    )


@dataclass(frozen=True)
class Punch:
    """One punch to send: whose (code and KOT key), which working date and kind, what time."""

    employee_code: str
    employee_key: str
    working_date: date
    punch: str  # "clock_in" / "clock_out" (SyncError.Punch)
    time: datetime

    @property
    def key(self) -> Key:
        return (self.employee_code, self.working_date, self.punch)


class Answer(enum.Enum):
    POSTED = "posted"
    RELEASED = "released"
    FAILED = "failed"
    UNKNOWN = "unknown"
    HELD = "held"  # not sent: another writer holds the row, or it is posted already


def classify(error: ConnectorError | None) -> Answer:
    """What a POST's answer means for its punch (see the module docstring)."""
    if error is None:
        return Answer.POSTED
    if error.may_have_landed or isinstance(error, (ServerError, ResponseFormatError)):
        return Answer.UNKNOWN
    if isinstance(error, (ThrottledError, ForbiddenWindowError, NetworkError)):
        return Answer.RELEASED
    if isinstance(error, AuthenticationError):
        return Answer.RELEASED  # the token or the caller's IP refused: nothing was processed
    return Answer.FAILED


@dataclass
class Sent:
    punch: Punch
    answer: Answer
    error: ConnectorError | None = None


@dataclass(frozen=True)
class Writer:
    """Who sends: the ledger owner name of its lease, the lease's guard (before every POST),
    its heartbeat (in the calling thread), and the run a row is booked to."""

    tenant_id: int
    owner: str
    guard: Callable[[], None]
    run_for: Callable[[date], int | None]
    beat: Callable[[], None] = lambda: None


def send(
    *,
    kot: KotClient,
    writer: Writer,
    punches: list[Punch],
    seen: Mapping[Key, Seen] | None = None,
) -> list[Sent]:
    """Reserve, POST, classify and record these punches; one ``Sent`` per punch, in order.

    ``seen``: the ledger rows as the writer saw them before its KOT read (None for a writer that
    did not read KOT: it only takes punches the ledger does not hold). An AuthenticationError
    (every other POST would be refused the same way) stops the sending; it is raised after the
    answers already received are recorded.
    """
    held = _reserve(writer, punches, seen)
    results = {p.key: Sent(p, Answer.HELD) for p in punches if p.key not in held}
    to_send = [p for p in punches if p.key in held]
    stop: list[AuthenticationError] = []
    handed: set[Key] = set()

    def post(punch: Punch) -> KotPunch:
        # The client calls writer.guard before every attempt of the POST (a throttled punch's
        # resends included): no attempt leaves unless the lease was renewed within half of it.
        return kot.register_punch(
            employee_key=punch.employee_key,
            date=punch.working_date,
            time=punch.time,
            code=CODE_OF_PUNCH[punch.punch],
        )

    def stamped() -> Iterator[Punch]:
        """Hand the punches out, ``sent_at`` stamped a few at a time just before they leave."""
        size = max(1, kot.limiter.max_concurrency)
        for start in range(0, len(to_send), size):
            chunk = to_send[start : start + size]
            still = ledger.stamp(
                tenant_id=writer.tenant_id,
                owner=writer.owner,
                keys=[p.key for p in chunk],
                now=timezone.now(),
            )
            for punch in chunk:
                if stop:
                    return
                if punch.key in still:
                    handed.add(punch.key)
                    yield punch
                else:
                    results[punch.key] = Sent(punch, Answer.HELD)  # taken over meanwhile

    workers = kot.limiter.max_concurrency
    outer_guard, kot.write_guard = kot.write_guard, writer.guard
    try:
        for punch, error in each_in_parallel(
            post, stamped(), beat=writer.beat, workers=workers, raise_auth=False
        ):
            if isinstance(error, AuthenticationError):
                stop.append(error)
            results[punch.key] = Sent(punch, classify(error), error)
    finally:
        kot.write_guard = outer_guard
        # Also when the lease is lost or the worker stops (RunTaken, WorkerStopping): what was
        # answered is recorded (each change is conditional on still holding the row); a punch
        # handed out without an answer may have left (unknown), one never handed out did not.
        for punch in to_send:
            if punch.key not in results:
                answer = Answer.UNKNOWN if punch.key in handed else Answer.RELEASED
                results[punch.key] = Sent(punch, answer)
        _record(writer, list(results.values()))
    if stop:
        raise stop[0]
    return [results[p.key] for p in punches]


def _reserve(writer: Writer, punches: list[Punch], seen: Mapping[Key, Seen] | None) -> set[Key]:
    now = timezone.now()
    new: list[ledger.Entry] = []
    retaken: set[Key] = set()
    for p in punches:
        entry = ledger.Entry(p.employee_code, p.working_date, p.punch, p.time, None)
        row = seen.get(p.key) if seen is not None else None
        if row is None:
            new.append(entry)
            continue
        entry = ledger.Entry(*entry.key, p.time, writer.run_for(p.working_date))
        if ledger.retake(
            tenant_id=writer.tenant_id, entry=entry, seen=row, owner=writer.owner, now=now
        ):
            retaken.add(p.key)
    if new:
        runs = {d: writer.run_for(d) for d in {e.working_date for e in new}}
        ledger.insert(
            tenant_id=writer.tenant_id,
            entries=[ledger.Entry(*e.key, e.time, runs[e.working_date]) for e in new],
            owner=writer.owner,
            now=now,
        )
    mine = ledger.held_by(tenant_id=writer.tenant_id, owner=writer.owner, keys=[e.key for e in new])
    return mine | retaken


def _record(writer: Writer, results: list[Sent]) -> None:
    now = timezone.now()
    by_answer: dict[Answer, list[Key]] = {}
    for sent in results:
        by_answer.setdefault(sent.answer, []).append(sent.punch.key)
    for answer, state in (
        (Answer.POSTED, State.POSTED),
        (Answer.FAILED, State.FAILED),
        (Answer.UNKNOWN, State.UNKNOWN),
    ):
        if by_answer.get(answer):
            ledger.finish(
                tenant_id=writer.tenant_id,
                owner=writer.owner,
                keys=by_answer[answer],
                state=state,
                now=now,
            )
    if by_answer.get(Answer.RELEASED):
        ledger.release(
            tenant_id=writer.tenant_id, owner=writer.owner, keys=by_answer[Answer.RELEASED]
        )


# --- deciding with a KOT read ---------------------------------------------------------------


class Decision(enum.Enum):
    FOUND = "found"  # KOT holds it (the row, if unknown or failed, is settled posted)
    LEFT = "left"  # the ledger's sender has it (sending, or posted: KOT's copy changed by hand)
    CONFLICT = "conflict"  # KOT holds another punch of that kind
    SEND = "send"


def decide(*, time: datetime, seen: Seen | None, held: list[KotPunch]) -> tuple[Decision, datetime]:
    """What a writer that read KOT (``held``: KOT's punches of that employee, day and kind) after
    seeing the ledger row (``seen``) does with one punch, and the time to compare and send: a
    punch the ledger sent is compared at the time it was sent (an earlier recognition uploaded
    late changes nothing)."""
    if seen is not None and seen.sent:
        time = seen.punch_time
    if any(same_minute(h.time, time) for h in held):
        return Decision.FOUND, time
    if seen is not None and seen.state in (State.POSTED, State.SENDING):
        return Decision.LEFT, time
    if held:
        return Decision.CONFLICT, time
    return Decision.SEND, time


def held_by_kind(punches: list[KotPunch]) -> dict[tuple[str, date, int], list[KotPunch]]:
    """KOT's punches by (employee key, working date, punch code)."""
    found: dict[tuple[str, date, int], list[KotPunch]] = {}
    for punch in punches:
        found.setdefault((punch.employee_key, punch.date, punch.code), []).append(punch)
    return found


def mark_found(*, tenant_id: int, key: Key, seen: Seen | None) -> bool:
    """KOT holds a punch whose row was unknown or failed (in the version seen): posted."""
    if seen is None or seen.state not in (State.UNKNOWN, State.FAILED):
        return False
    return ledger.settle(
        tenant_id=tenant_id, key=key, seen=seen, state=State.POSTED, now=timezone.now()
    )


def mark_conflict(*, tenant_id: int, key: Key, seen: Seen | None) -> bool:
    """KOT holds another punch of that kind: an unknown row of ours is failed (not resent)."""
    if seen is None or seen.state != State.UNKNOWN:
        return False
    return ledger.settle(
        tenant_id=tenant_id, key=key, seen=seen, state=State.FAILED, now=timezone.now()
    )


@dataclass
class Settled:
    """What ``settle`` did: rows found in KOT, conflicting, confirmed absent, and sent again."""

    found: list[Key] = field(default_factory=list)
    conflicts: list[Key] = field(default_factory=list)
    absent: list[Key] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    reads: int = 0


def settle(
    *,
    kot: KotClient,
    writer: Writer,
    seen: Mapping[Key, Seen],
    keys: Mapping[str, str],
    resend: bool,
) -> Settled:
    """Settle ``unknown`` rows (seen before this call) by one KOT read made now, after them.

    ``keys``: KOT employee code → key. Found → posted; another punch of the kind → failed;
    absent → sent again when ``resend`` (a later settlement: the lost POST is long over), else
    failed (right after the POST: the rerun sends it). A row changed since it was seen is left.
    Raises what the KOT read raises (a forbidden window: nothing is changed).
    """
    rows = {k: s for k, s in seen.items() if s.state == State.UNKNOWN and k[0] in keys}
    report = Settled()
    if not rows:
        return report
    days = [day for _code, day, _punch in rows]
    read = kot.list_punches(
        start=min(days), end=max(days), employee_keys=sorted({keys[k[0]] for k in rows})
    )
    report.reads += 1
    index = held_by_kind(read)
    again: list[Punch] = []
    for key, row in rows.items():
        code, day, punch = key
        held = index.get((keys[code], day, CODE_OF_PUNCH[punch]), [])
        decision, time = decide(time=row.punch_time, seen=row, held=held)
        if decision is Decision.FOUND:
            if mark_found(tenant_id=writer.tenant_id, key=key, seen=row):
                report.found.append(key)
        elif decision is Decision.CONFLICT:
            if mark_conflict(tenant_id=writer.tenant_id, key=key, seen=row):
                report.conflicts.append(key)
        elif resend:
            again.append(Punch(code, keys[code], day, punch, time))
        elif ledger.settle(
            tenant_id=writer.tenant_id, key=key, seen=row, state=State.FAILED, now=timezone.now()
        ):
            report.absent.append(key)
    if again:
        report.sent = send(kot=kot, writer=writer, punches=again, seen=rows)
    return report
