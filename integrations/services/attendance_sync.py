"""Attendance sync, SenseLink → KOT (SPEC 4.2).

KOT is the truth: before posting, the day's punches KOT already holds are read, and only the
missing ones are posted. A rerun, a second run of the same date, or a run after a worker died
between a POST and its bookkeeping all read KOT again first, so each punch lands exactly once.
Every POST goes through the one sending protocol (``punches.py``) that the real-time poll uses:
the punch ledger is seen *before* the KOT read, so a row another writer changed meanwhile (a
poll's clock-in whose answer was lost) is never taken over on the strength of an older read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.kot import KotClient
from connectors.senselink import SenseLinkClient

from ..fields import fit
from ..models import ConnectSetting, SyncError, SyncRun
from . import ledger, punches
from .leases import run_holder
from .ledger import Key, Seen
from .punches import (
    PUNCH_NAMES,
    Answer,
    Decision,
    Punch,
    already_punched_message,
    invalid_job_number_message,
)
from .runs import Outcome, SyncAborted
from .workday import DayNotEnded, WorkdayRules, current_rules, remember_members

log = logging.getLogger(__name__)

CLOCK_IN = SyncError.Punch.CLOCK_IN.value
CLOCK_OUT = SyncError.Punch.CLOCK_OUT.value


@dataclass(frozen=True)
class Problem:
    employee_code: str
    punch: str  # "clock_in" / "clock_out", or "" for none
    code: str
    message: str


@dataclass
class AttendancePlan:
    target_date: date
    to_post: list[Punch] = field(default_factory=list)
    already: int = 0
    problems: list[Problem] = field(default_factory=list)
    employees_seen: int = 0
    members: dict[str, str] = field(default_factory=dict)  # employee code → division code
    # The day's ledger as seen before the KOT read, and what that read decided for its rows:
    # unknown/failed rows KOT holds (settled posted) and unknown rows KOT holds another punch of.
    seen: dict[Key, Seen] = field(default_factory=dict)
    found: list[Key] = field(default_factory=list)
    conflicts: list[Key] = field(default_factory=list)


def first_and_last(
    senselink: SenseLinkClient,
    target_date: date,
    beat: Callable[[], None],
    on_first: Callable[[], None] = lambda: None,
    rules: WorkdayRules | None = None,
    invalid: set[str] | None = None,
) -> dict[time, dict[str, tuple[datetime, datetime]]]:
    """Per day border and employee number, the earliest and latest recognition of the working
    day ``target_date`` as it runs from that border (records streamed, one query for the union
    of the spans).

    ``on_first`` is called once, at the first employee record: the caller starts its KOT read
    then, alongside the rest of the pages, and not at all for a day without records. An
    employee record whose job number was refused (``SlRecord.problem``) names no one: its
    number, as shown, is added to ``invalid``.
    """
    rules = rules or WorkdayRules()
    start, end = rules.span(target_date)
    by_border: dict[time, dict[str, tuple[datetime, datetime]]] = {
        border: {} for border in rules.all_borders() | {rules.default_border}
    }
    starts = {border: datetime.combine(target_date, border, tzinfo=JST) for border in by_border}
    seen = False
    for record in senselink.iter_records(start=start, end=end, user_type=1):
        when = record.sign_time
        if record.problem and record.user_type == 1 and start <= when < end:
            if invalid is not None:
                invalid.add(fit(record.problem, 64))
            continue
        if record.user_type != 1 or not record.job_number:
            continue  # visitors, strangers, deny-list
        if not start <= when < end:
            continue
        if not seen:
            seen = True
            on_first()
        for border, spans in by_border.items():
            if not starts[border] <= when < starts[border] + timedelta(days=1):
                continue
            span = spans.get(record.job_number)
            if span is None:
                spans[record.job_number] = (when, when)
            elif when < span[0]:
                spans[record.job_number] = (when, span[1])
            elif when > span[1]:
                spans[record.job_number] = (span[0], when)
        beat()
    return by_border


def plan_attendance(
    *,
    kot: KotClient,
    senselink: SenseLinkClient,
    target_date: date,
    mode: str,
    only: set[tuple[str, str]] | None = None,
    beat: Callable[[], None] = lambda: None,
    rules: WorkdayRules | None = None,
    seen: dict[Key, Seen] | None = None,
) -> AttendancePlan:
    """What the sync would punch; reads SenseLink and KOT, writes nothing.

    ``target_date`` is a working date: each employee's recognitions count from their division's
    day border (``rules``; 00:00 without). ``only`` limits the plan to (employee code, punch)
    pairs — a rerun's failed punches. ``seen``: the day's punch ledger, read by the caller
    *before* this KOT read; each punch is decided by ``punches.decide`` (a punch the ledger
    holds as sent is compared with KOT at the time it was sent; one in flight elsewhere is left
    to its sender).
    """
    plan = AttendancePlan(target_date=target_date, seen=dict(seen or {}))
    read = _read_recognitions(kot, senselink, plan, only, beat, rules or WorkdayRules())
    if read is None:
        return plan
    by_border, employees, rules = read
    spans = {}
    for number in {number for spans in by_border.values() for number in spans}:
        span = by_border[rules.border_for(number)].get(number)
        if span is not None:  # none of their recognitions falls in their own working day
            spans[number] = span
    plan.employees_seen = len(spans)
    beat()
    wanted = _wanted(plan, spans, {e.code: e.key for e in employees}, mode, only)
    if wanted:
        _decide(kot, plan, wanted)
        beat()
    return plan


def _read_recognitions(
    kot: KotClient,
    senselink: SenseLinkClient,
    plan: AttendancePlan,
    only: set[tuple[str, str]] | None,
    beat: Callable[[], None],
    rules: WorkdayRules,
) -> tuple[dict, list, WorkdayRules] | None:
    """The day's first and last recognitions per border and number, and KOT's employees (read
    side by side with SenseLink's pages, each API one request at a time, from the first
    employee record on); None for a day without records. Refused numbers become problems."""
    target_date = plan.target_date
    with ThreadPoolExecutor(max_workers=1) as pool:
        kot_answer: list[Future] = []

        def start_kot_read() -> None:
            kot_answer.append(
                pool.submit(kot.list_employees, on=target_date, include_resigned=True)
            )

        invalid: set[str] = set()
        by_border = first_and_last(
            senselink, target_date, beat, on_first=start_kot_read, rules=rules, invalid=invalid
        )
        # One line per refused number, not per record; a rerun only when it was in the original.
        for shown in sorted(invalid):
            if only is None or {(shown, CLOCK_IN), (shown, CLOCK_OUT)} & only:
                plan.problems.append(
                    Problem(shown, "", "invalid_job_number", invalid_job_number_message(shown))
                )
        if not kot_answer:
            return None
        employees = kot_answer[0].result()
    if not employees:
        # Like the employee sync: an empty KOT answer is a token/permission problem, not N
        # unknown employees; nothing is posted, and a rerun retries the whole day.
        raise SyncAborted(
            "KING OF TIMEから従業員が1件も返されませんでした。打刻は登録していません。"
            "アクセストークンの権限(従業員の参照)とKING OF TIMEの従業員登録をご確認ください。",
            code="kot_empty_employee_list",
        )
    # A KOT employee whose code was refused (KotEmployee.problem) has no usable code or key: the
    # employee sync reports it; here it simply matches no number.
    employees = [e for e in employees if not e.problem]
    plan.members = {e.code: e.division_code for e in employees if e.division_code}
    return by_border, employees, replace(rules, members=plan.members)


def _wanted(
    plan: AttendancePlan,
    spans: dict[str, tuple[datetime, datetime]],
    keys: dict[str, str],
    mode: str,
    only: set[tuple[str, str]] | None,
) -> list[Punch]:
    """The punches the recognitions ask for (clock-in, and clock-out in clock_in_out mode when
    later); an unknown number is a problem instead."""
    wanted: list[Punch] = []
    for number in sorted(spans):
        first, last = spans[number]
        candidates = [(CLOCK_IN, first)]
        if mode == ConnectSetting.AttendanceMode.CLOCK_IN_OUT and last > first:
            candidates.append((CLOCK_OUT, last))
        candidates = [(c, t) for c, t in candidates if only is None or (number, c) in only]
        if not candidates:
            continue
        key = keys.get(number)
        if key is None:
            plan.problems.append(
                Problem(
                    employee_code=number,
                    punch=candidates[0][0],
                    code="unknown_employee",
                    message=f"従業員番号:{fit(number, 64)} のKING OF TIME従業員が見つかりません。"
                    "SenseLinkの従業員番号とKING OF TIMEの従業員コードをご確認ください。",
                )
            )
            continue
        wanted.extend(Punch(number, key, plan.target_date, c, t) for c, t in candidates)
    return wanted


def _decide(kot: KotClient, plan: AttendancePlan, wanted: list[Punch]) -> None:
    """Read the day's punches KOT holds (after the ledger was seen) and decide each punch."""
    target_date = plan.target_date
    read = kot.list_punches(
        start=target_date, end=target_date, employee_keys=sorted({p.employee_key for p in wanted})
    )
    held = punches.held_by_kind([p for p in read if p.date == target_date])
    for punch in wanted:
        row = plan.seen.get(punch.key)
        same_kind = held.get((punch.employee_key, target_date, ledger.CODE_OF_PUNCH[punch.punch]))
        decision, when = punches.decide(time=punch.time, seen=row, held=same_kind or [])
        if decision is Decision.FOUND:
            plan.already += 1
            if row is not None and row.state in (ledger.State.UNKNOWN, ledger.State.FAILED):
                plan.found.append(punch.key)
        elif decision is Decision.LEFT:
            plan.already += 1  # the ledger's sender has it (or KOT's copy was changed by hand)
        elif decision is Decision.CONFLICT:
            if row is not None and row.state == ledger.State.UNKNOWN:
                plan.conflicts.append(punch.key)
            plan.problems.append(
                Problem(
                    employee_code=punch.employee_code,
                    punch=punch.punch,
                    code="already_punched",
                    message=already_punched_message(punch.employee_code, punch.punch),
                )
            )
        else:
            plan.to_post.append(replace(punch, time=when))


def post_punches(
    *,
    kot: KotClient,
    plan: AttendancePlan,
    writer: punches.Writer,
) -> Outcome:
    """Carry out the plan through the one sending protocol (``punches.send``): settle the rows
    the plan's KOT read decided, send the missing punches, and read back right away the ones
    whose answer may have landed (found: posted; absent: failed, the rerun sends them)."""
    outcome = Outcome(skipped=plan.already)
    outcome.achieved = plan.already
    for key in plan.found:
        punches.mark_found(tenant_id=writer.tenant_id, key=key, seen=plan.seen.get(key))
    for key in plan.conflicts:
        punches.mark_conflict(tenant_id=writer.tenant_id, key=key, seen=plan.seen.get(key))
    for problem in plan.problems:
        outcome.add_error(
            employee_code=problem.employee_code,
            target_date=plan.target_date,
            punch=problem.punch,
            code=problem.code,
            message=problem.message,
        )
    sent = punches.send(kot=kot, writer=writer, punches=plan.to_post, seen=plan.seen)
    checked = _read_back(kot, writer, [s.punch for s in sent if s.answer is Answer.UNKNOWN])
    for item in sent:
        _count(outcome, item, checked, plan.target_date)
    outcome.message = (
        f"{plan.target_date:%Y年%m月%d日}: 認証レコードのある従業員{plan.employees_seen}人、"
        f"打刻登録{outcome.created} 登録済み{outcome.skipped} 失敗{len(outcome.errors)}"
    )
    return outcome


def _read_back(
    kot: KotClient, writer: punches.Writer, unknown: list[Punch]
) -> punches.Settled | None:
    """Settle this run's own unknown punches by a KOT read made after their answers were lost;
    None when KOT cannot be read now (they stay unknown: the next writer's read settles them)."""
    if not unknown:
        return punches.Settled()
    seen = ledger.seen_for(tenant_id=writer.tenant_id, keys=[p.key for p in unknown])
    try:
        return punches.settle(
            kot=kot,
            writer=writer,
            seen=seen,
            keys={p.employee_code: p.employee_key for p in unknown},
            resend=False,
        )
    except ConnectorError as exc:
        log.warning("read-back of %d punch(es) failed: %s", len(unknown), exc.code)
        return None


def _count(
    outcome: Outcome, item: punches.Sent, checked: punches.Settled | None, target_date: date
) -> None:
    punch = item.punch
    name = PUNCH_NAMES[punch.punch]
    who = f"従業員コード:{punch.employee_code} の{name}打刻"
    if item.answer is Answer.POSTED or (
        item.answer is Answer.UNKNOWN and checked is not None and punch.key in checked.found
    ):
        outcome.created += 1
        outcome.achieved += 1
        return
    if item.answer is Answer.HELD:
        outcome.skipped += 1  # another writer holds it (or it was posted meanwhile)
        outcome.achieved += 1
        return
    error = item.error
    code = error.code if error is not None else "kot_unknown"
    if item.answer is Answer.UNKNOWN:
        cause = error.message if error is not None else "KING OF TIMEから応答がありませんでした。"
        if checked is not None and punch.key in checked.conflicts:
            message = already_punched_message(punch.employee_code, punch.punch)
            code = "already_punched"
        elif checked is not None and punch.key in checked.absent:
            message = (
                f"{who}の結果が分かりませんでした。{cause}"
                "登録されていないことを確認しました。再実行してください。"
            )
        else:
            message = (
                f"{who}の結果が分かりませんでした。{cause}"
                "登録されたか確認できなかったため、再実行で確認のうえ登録します。"
            )
    elif item.answer is Answer.RELEASED:
        detail = error.message if error is not None else ""
        message = f"{who}はKING OF TIMEが処理する前に受け付けられませんでした。{detail}再実行してください。"
    else:
        message = f"{who}に失敗しました。{error.message if error is not None else ''}"
    outcome.add_error(
        employee_code=punch.employee_code,
        target_date=target_date,
        punch=punch.punch,
        code=code,
        message=message,
    )


def writer_for(
    run: SyncRun,
    *,
    guard: Callable[[], None] = lambda: None,
    beat: Callable[[], None] = lambda: None,
) -> punches.Writer:
    """A run as a punch writer: its ledger owner is its attempt, its rows are booked to it."""
    return punches.Writer(
        tenant_id=run.tenant_id,
        owner=run_holder(run).owner,
        guard=guard,
        run_for=lambda _day: run.pk,
        beat=beat,
    )


def rerun_scope(run: SyncRun) -> set[tuple[str, str]] | None:
    """The punches a rerun retries: the original's failed punches, or everything when the
    original failed as a whole (no per-punch errors to go by)."""
    original = run.rerun_of
    if original is None:
        return None
    errors = list(original.errors.values_list("employee_code", "punch", "code"))
    if not errors or any(not code for code, _punch, _error in errors):
        return None
    scope: set[tuple[str, str]] = set()
    for code, punch, error in errors:
        # An unknown employee's error names only the first punch, but none of theirs was posted.
        if punch and error != "unknown_employee":
            scope.add((code, punch))
        else:
            scope.update({(code, CLOCK_IN), (code, CLOCK_OUT)})
    return scope


def sync_attendance(
    *,
    run: SyncRun,
    kot: KotClient,
    senselink: SenseLinkClient,
    setting: ConnectSetting,
    beat: Callable[[], None] = lambda: None,
    guard: Callable[[], None] = lambda: None,
) -> Outcome:
    """Execute an attendance run's work and return its outcome (the caller records it).

    Raises ``DayNotEnded`` (before reading any record) when the working day has not ended yet
    for every division: the caller postpones the run until it has.
    """
    rules, notice = current_rules(setting=setting, kot=kot, store=True)
    until = rules.must_wait(run.target_date, timezone.now())
    if until is not None:
        raise DayNotEnded(run.target_date, until)
    # Writers that lost their lease give their rows up; the ledger is then seen before KOT is.
    ledger.take_orphans(tenant_id=run.tenant_id, now=timezone.now())
    plan = plan_attendance(
        kot=kot,
        senselink=senselink,
        target_date=run.target_date,
        mode=setting.attendance_mode,
        only=rerun_scope(run),
        beat=beat,
        rules=rules,
        seen=ledger.seen_of_day(tenant_id=run.tenant_id, working_date=run.target_date),
    )
    if plan.members:
        remember_members(tenant=run.tenant, employees=plan.members)
    outcome = post_punches(kot=kot, plan=plan, writer=writer_for(run, guard=guard, beat=beat))
    if notice:
        outcome.add_warning(code="kot_divisions_unreadable", message=notice)
    return outcome
