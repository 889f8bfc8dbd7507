"""Attendance sync, SenseLink → KOT (SPEC 4.2).

KOT is the truth: before posting, the day's punches KOT already holds are read, and only the
missing ones are posted. A rerun, a second run of the same date, or a run after a worker died
between a POST and its bookkeeping all read KOT again first, so each punch lands exactly once.
Every POST also goes through the punch ledger (services/ledger.py) that the real-time poll
uses: a row reserved before the POST, so a poll and a run never both send a punch, and a
clock-in a poll already sent (at its time) is found in KOT and not posted again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from connectors.errors import ConnectorError, RequestTimeout
from connectors.kot import KotClient, KotPunch
from connectors.senselink import SenseLinkClient

from ..fields import fit
from ..models import ConnectSetting, PunchLedger, SyncError, SyncRun
from . import ledger
from .employee_sync import SyncAborted
from .parallel import each_in_parallel
from .runs import Outcome
from .workday import DayNotEnded, WorkdayRules, current_rules, remember_members

log = logging.getLogger(__name__)

CLOCK_IN = 1
CLOCK_OUT = 2
PUNCH_NAMES = {CLOCK_IN: "出勤", CLOCK_OUT: "退勤"}
PUNCH_FIELD = {CLOCK_IN: SyncError.Punch.CLOCK_IN, CLOCK_OUT: SyncError.Punch.CLOCK_OUT}
PUNCH_CODE = {value: key for key, value in PUNCH_FIELD.items()}
JST = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class Punch:
    employee_code: str
    employee_key: str
    code: int  # 1 clock-in, 2 clock-out
    time: datetime


@dataclass(frozen=True)
class Problem:
    employee_code: str
    punch: int | None
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
    # Ledger rows whose answer was lost and that KOT turned out to hold: settled as posted.
    found: list[ledger.Key] = field(default_factory=list)


def invalid_job_number_message(shown: str) -> str:
    """A job number refused because it holds a control character (connectors/text.py)."""
    return (
        f"従業員番号:{shown} に使用できない文字(制御文字)が含まれているため、この番号の認証記録"
        "は打刻に使用しませんでした。SenseLinkの従業員番号をご確認ください。"
    )


def already_punched_message(code: str, punch: int) -> str:
    """The manual's message for a punch KOT already holds at another time."""
    return (
        f"従業員コード:{code} の{PUNCH_NAMES[punch]}は既に打刻済みです。"
        "KING OF TIME管理画面をご確認ください。"
    )


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
    only: set[tuple[str, int]] | None = None,
    beat: Callable[[], None] = lambda: None,
    rules: WorkdayRules | None = None,
    ledger_rows: dict[ledger.Key, PunchLedger] | None = None,
) -> AttendancePlan:
    """What the sync would punch; reads SenseLink and KOT, writes nothing.

    ``target_date`` is a working date: each employee's recognitions count from their division's
    day border (``rules``; 00:00 without). ``only`` limits the plan to (employee code, punch
    code) pairs — a rerun's failed punches. ``ledger_rows`` (the day's punch ledger): a punch the
    ledger holds as sent (by a real-time poll) is compared with KOT at the time it was sent — an
    earlier recognition uploaded late changes nothing — and one in flight elsewhere is left to
    its sender.
    """
    plan = AttendancePlan(target_date=target_date)
    rules = rules or WorkdayRules()
    # KOT's employee list is read side by side with SenseLink's record pages (each API still
    # sees one request at a time), from the first employee record on.
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
                    Problem(
                        employee_code=shown,
                        punch=None,
                        code="invalid_job_number",
                        message=invalid_job_number_message(shown),
                    )
                )
        if not kot_answer:
            return plan
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
    rules = replace(rules, members=plan.members)
    numbers = {number for spans in by_border.values() for number in spans}
    spans = {}
    for number in numbers:
        span = by_border[rules.border_for(number)].get(number)
        if span is not None:  # none of their recognitions falls in their own working day
            spans[number] = span
    plan.employees_seen = len(spans)
    keys = {e.code: e.key for e in employees}
    beat()

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
        wanted.extend(Punch(number, key, c, t) for c, t in candidates)
    if not wanted:
        return plan

    existing = _existing_punches(kot, target_date, {p.employee_key for p in wanted})
    beat()
    sent = (PunchLedger.State.POSTED, PunchLedger.State.SENDING, PunchLedger.State.UNKNOWN)
    for punch in wanted:
        key = (punch.employee_code, target_date, PUNCH_FIELD[punch.code].value)
        row = (ledger_rows or {}).get(key)
        if row is not None and row.state in sent:
            punch = replace(punch, time=row.punch_time)
        held = existing.get((punch.employee_key, punch.code), [])
        if any(same_minute(h.time, punch.time) for h in held):
            plan.already += 1
            if row is not None and row.state != PunchLedger.State.POSTED:
                plan.found.append(key)
        elif row is not None and row.state in (PunchLedger.State.POSTED, PunchLedger.State.SENDING):
            plan.already += 1  # the ledger's sender has it (or KOT's copy was changed by hand)
        elif held:
            plan.problems.append(
                Problem(
                    employee_code=punch.employee_code,
                    punch=punch.code,
                    code="already_punched",
                    message=already_punched_message(punch.employee_code, punch.code),
                )
            )
        else:
            plan.to_post.append(punch)
    return plan


def same_minute(a: datetime, b: datetime) -> bool:
    """Whether a punch KOT holds is ours: KOT's screens show HH:MM and whether it stores the
    seconds we send is not documented, so a punch of the same kind less than 60 s away is
    "already there" (a rerun never reports the portal's own punch as a conflict)."""
    return abs((a - b).total_seconds()) < 60


def _existing_punches(
    kot: KotClient, target_date: date, keys: Iterable[str]
) -> dict[tuple[str, int], list[KotPunch]]:
    held: dict[tuple[str, int], list[KotPunch]] = {}
    for punch in kot.list_punches(start=target_date, end=target_date, employee_keys=sorted(keys)):
        if punch.date == target_date:
            held.setdefault((punch.employee_key, punch.code), []).append(punch)
    return held


def _landed(kot: KotClient, punch: Punch, target_date: date) -> bool | None:
    """After a POST timed out: did KOT store it? None when KOT can't be asked now."""
    try:
        held = _existing_punches(kot, target_date, [punch.employee_key])
    except ConnectorError:
        return None
    return any(
        same_minute(h.time, punch.time) for h in held.get((punch.employee_key, punch.code), [])
    )


def post_punches(
    *,
    kot: KotClient,
    plan: AttendancePlan,
    beat: Callable[[], None] = lambda: None,
    guard: Callable[[], None] = lambda: None,
    run: SyncRun | None = None,
) -> Outcome:
    """Post the plan's missing punches (concurrently, bounded); bookkeeping stays in this thread.

    ``guard`` (the run's lease) comes right before each POST, in the thread that sends it: a
    worker that lost its run, or whose cluster is stopping, raises there and posts nothing more.
    With a ``run``, each punch is reserved in the ledger before its POST (a failed or unknown
    row is retaken: KOT was just read) and its answer recorded there; a punch another sender
    holds is not sent.
    """
    outcome = Outcome(skipped=plan.already)
    outcome.achieved = plan.already
    to_post = plan.to_post
    posted: list[ledger.Key] = []
    unknown: list[ledger.Key] = []
    failed: list[ledger.Key] = []
    if run is not None:
        now = timezone.now()
        owner = ledger.run_owner(run)
        ledger.settle_found(tenant_id=run.tenant_id, keys=plan.found, now=now)
        entries = [
            ledger.Entry(p.employee_code, plan.target_date, PUNCH_FIELD[p.code].value, p.time)
            for p in plan.to_post
        ]
        held = ledger.reserve(
            tenant_id=run.tenant_id,
            entries=entries,
            owner=owner,
            run_id=run.pk,
            now=now,
            retake=(PunchLedger.State.FAILED, PunchLedger.State.UNKNOWN),
        )
        to_post = [p for p, e in zip(plan.to_post, entries, strict=True) if e.key in held]
        outcome.skipped += len(plan.to_post) - len(to_post)
        outcome.achieved += len(plan.to_post) - len(to_post)

    def key_of(punch: Punch) -> ledger.Key:
        return (punch.employee_code, plan.target_date, PUNCH_FIELD[punch.code].value)

    for problem in plan.problems:
        outcome.add_error(
            employee_code=problem.employee_code,
            target_date=plan.target_date,
            punch=PUNCH_FIELD.get(problem.punch, ""),
            code=problem.code,
            message=problem.message,
        )

    def post(punch: Punch) -> KotPunch:
        guard()
        return kot.register_punch(
            employee_key=punch.employee_key, date=plan.target_date, time=punch.time, code=punch.code
        )

    workers = kot.limiter.max_concurrency
    for punch, exc in each_in_parallel(post, to_post, beat=beat, workers=workers):
        if exc is None:
            outcome.created += 1
            outcome.achieved += 1
            posted.append(key_of(punch))
            continue
        name = PUNCH_NAMES[punch.code]
        if isinstance(exc, RequestTimeout):
            landed = _landed(kot, punch, plan.target_date) if exc.may_have_landed else False
            if landed:
                outcome.created += 1
                outcome.achieved += 1
                posted.append(key_of(punch))
                continue
            (unknown if landed is None else failed).append(key_of(punch))
            message = (
                f"従業員コード:{punch.employee_code} の{name}打刻でKING OF TIMEから応答が"
                "ありませんでした。"
                + (
                    "登録されたか確認できなかったため、再実行で確認のうえ登録します。"
                    if landed is None
                    else "登録されていないことを確認しました。再実行してください。"
                )
            )
        else:
            failed.append(key_of(punch))
            message = (
                f"従業員コード:{punch.employee_code} の{name}打刻に失敗しました。{exc.message}"
            )
        outcome.add_error(
            employee_code=punch.employee_code,
            target_date=plan.target_date,
            punch=PUNCH_FIELD[punch.code],
            code=exc.code,
            message=message,
        )
    if run is not None:
        now = timezone.now()
        for keys, state in (
            (posted, PunchLedger.State.POSTED),
            (unknown, PunchLedger.State.UNKNOWN),
            (failed, PunchLedger.State.FAILED),
        ):
            ledger.mark(tenant_id=run.tenant_id, owner=owner, keys=keys, state=state, now=now)
    outcome.message = (
        f"{plan.target_date:%Y年%m月%d日}: 認証レコードのある従業員{plan.employees_seen}人、"
        f"打刻登録{outcome.created} 登録済み{outcome.skipped} 失敗{len(outcome.errors)}"
    )
    return outcome


def rerun_scope(run: SyncRun) -> set[tuple[str, int]] | None:
    """The punches a rerun retries: the original's failed punches, or everything when the
    original failed as a whole (no per-punch errors to go by)."""
    original = run.rerun_of
    if original is None:
        return None
    errors = list(original.errors.values_list("employee_code", "punch", "code"))
    if not errors or any(not code for code, _punch, _error in errors):
        return None
    scope: set[tuple[str, int]] = set()
    for code, punch, error in errors:
        # An unknown employee's error names only the first punch, but none of theirs was posted.
        if punch and error != "unknown_employee":
            scope.add((code, PUNCH_CODE[punch]))
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
    ledger.expire_stale(tenant_id=run.tenant_id, now=timezone.now())
    plan = plan_attendance(
        kot=kot,
        senselink=senselink,
        target_date=run.target_date,
        mode=setting.attendance_mode,
        only=rerun_scope(run),
        beat=beat,
        rules=rules,
        ledger_rows=ledger.rows_of_day(tenant_id=run.tenant_id, working_date=run.target_date),
    )
    if plan.members:
        remember_members(tenant=run.tenant, employees=plan.members)
    outcome = post_punches(kot=kot, plan=plan, beat=beat, guard=guard, run=run)
    if notice:
        outcome.add_warning(code="kot_divisions_unreadable", message=notice)
    return outcome
