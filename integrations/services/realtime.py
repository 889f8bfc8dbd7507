"""Real-time clock-in (SPEC 4.5): each tenant's new recognitions become KOT clock-ins within
its interval — also inside KOT's forbidden windows, where punches are accepted but reads are not.

* The dispatcher's tick (``tick``) queues one poll per due tenant — at most one queued per
  tenant (``RealtimeState.queued_at``, a conditional UPDATE) — and ends the real-time runs of
  working days that are over. ``wake`` asks for a poll at once (a SenseLink push).
* A poll (``poll``) holds the tenant's poll lease (two clusters never poll one tenant at once;
  the lease is also the fence before every POST), reads only the records added since the last
  poll (``connectors.record_feed``: whatever order SenseLink lists them in, one call when quiet),
  and posts each employee's first recognition of the working day that the punch ledger
  (``services/ledger.py``) does not hold yet. It reads KOT only outside the windows: the
  employee keys (cached per tenant), and the punches of ledger rows whose answer was lost.
* One run per tenant and working day (``SyncRun.trigger = "realtime"``, status ``collecting``)
  accumulates the day's punches and errors; it ends when the working day ends. The daily
  attendance run then posts the clock-outs and anything the polls missed (same ledger).
"""

from __future__ import annotations

import logging
import time as monotonic_time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.errors import (
    ConnectorError,
    ForbiddenWindowError,
    NetworkError,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.kot import KotClient
from connectors.record_feed import FeedCursor, read_new
from connectors.senselink import SlRecord

from .. import queue
from ..models import ConnectSetting, PunchLedger, RealtimeState, SyncError, SyncRun, Tenant
from . import ledger, push
from .attendance_sync import same_minute
from .clients import kot_client, senselink_client
from .parallel import each_in_parallel
from .windows import window_end
from .workday import rules_for

log = logging.getLogger(__name__)

JST = ZoneInfo("Asia/Tokyo")
CLOCK_IN = SyncError.Punch.CLOCK_IN.value
LABEL = "リアルタイム"
# A record stamped further ahead than this is not read yet (a terminal's clock, or a sandbox
# day generated whole): the cursor stops before it.
FUTURE_SKEW = timedelta(minutes=5)
# The dispatcher ticks every minute: a poll is due this much before its interval is over, so
# the tick that follows the interval's end never waits a whole extra minute.
TICK_SLACK = timedelta(seconds=30)
# A queued poll not taken after this long is queued again (its task was lost).
QUEUED_STALE = timedelta(minutes=10)
# KOT's employee keys (punches need them, and KOT's windows forbid reading them): re-read
# outside the windows when older than this, or sooner when an unknown number appears.
KEYS_MAX_AGE = timedelta(hours=1)
KEYS_MIN_AGE = timedelta(minutes=5)
UNKNOWN_DAYS = 7  # unknown ledger rows older than this are left to the daily runs / support


def rules(setting: ConnectSetting):
    """The tenant's working-day rules: ``working_date(code, at)`` and ``day_ended(d, now)``."""
    return rules_for(setting)


def realtime_polled_at(setting: ConnectSetting | None) -> datetime | None:
    """When the tenant's last real-time poll ran (the pages and the admin show it)."""
    if setting is None or not setting.realtime_clock_in:
        return None
    return (
        RealtimeState.objects.filter(setting=setting)
        .values_list("last_polled_at", flat=True)
        .first()
    )


# --- asking for polls ------------------------------------------------------------------------


def _state(setting_id: int, now: datetime) -> RealtimeState:
    state, _created = RealtimeState.objects.get_or_create(
        setting_id=setting_id, defaults={"next_poll_at": now}
    )
    return state


def _queue_polls(setting_ids: list[int]) -> None:
    jobs = [queue.poll_job(setting_id=pk) for pk in setting_ids]
    transaction.on_commit(lambda: queue.enqueue(jobs), robust=True)


def wake(setting_id: int, *, reason: str = "push") -> bool:
    """Ask for an immediate poll of this tenant; False when one is already queued (coalesced:
    at most one queued poll per tenant). A poll running now polls again when it ends."""
    now = timezone.now()
    state = _state(setting_id, now)
    RealtimeState.objects.filter(pk=state.pk).update(next_poll_at=now)
    queued = (
        RealtimeState.objects.filter(pk=state.pk)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_STALE))
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        .update(queued_at=now, queued_reason=reason[:20])
    )
    if queued:
        _queue_polls([setting_id])
    return bool(queued)


def _realtime_settings():
    return ConnectSetting.objects.filter(
        realtime_clock_in=True, tenant__subscription_status=Tenant.Subscription.ACTIVE
    )


def _spread(setting_id: int, interval_minutes: int) -> timedelta:
    return timedelta(minutes=setting_id % max(1, interval_minutes))


@dataclass
class TickReport:
    queued: int = 0
    closed: int = 0

    def __str__(self) -> str:
        if not (self.queued or self.closed):
            return ""
        return f"realtime_queued={self.queued} realtime_closed={self.closed}"


def tick(*, now: datetime) -> TickReport:
    """The dispatcher's every-minute call: queue due polls (one per tenant), end finished days."""
    report = TickReport()
    missing = _realtime_settings().filter(realtime_state__isnull=True)
    # A tenant's first poll falls within its first interval, spread by its id: a thousand
    # tenants turned on together poll a fifth of them each minute, not all in one.
    RealtimeState.objects.bulk_create(
        [
            RealtimeState(setting_id=pk, next_poll_at=now + _spread(pk, minutes))
            for pk, minutes in missing.values_list("pk", "realtime_interval_minutes")
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    due = (
        RealtimeState.objects.filter(
            setting__realtime_clock_in=True,
            setting__tenant__subscription_status=Tenant.Subscription.ACTIVE,
            next_poll_at__lte=now,
        )
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_STALE))
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
    )
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).values_list("pk", "setting_id"))
        for start in range(0, len(rows), 500):
            ids = [pk for pk, _setting in rows[start : start + 500]]
            RealtimeState.objects.filter(pk__in=ids).update(queued_at=now, queued_reason="tick")
        _queue_polls([setting_id for _pk, setting_id in rows])
    report.queued = len(rows)
    report.closed = close_ended_runs(now=now)
    return report


# --- the poll ----------------------------------------------------------------------------------


class PollTaken(BaseException):
    """This poll lost its lease (it outlived it and another poll took the tenant): stop before
    the next POST. A BaseException, so no ``except Exception`` swallows it."""


class PollLease:
    """A poll's hold on its tenant: ``RealtimeState.poll_token``; renewed before POSTs."""

    def __init__(self, state_id: int, token: int):
        self.state_id = state_id
        self.token = token
        self.lease = timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)
        self.last = monotonic_time.monotonic()

    def guard(self) -> None:
        if monotonic_time.monotonic() - self.last < self.lease.total_seconds() / 2:
            return
        renewed = RealtimeState.objects.filter(pk=self.state_id, poll_token=self.token).update(
            poll_lease_until=timezone.now() + self.lease
        )
        if renewed != 1:
            raise PollTaken(f"realtime poll {self.state_id}/{self.token} lost its lease")
        self.last = monotonic_time.monotonic()


def _claim(setting_id: int, now: datetime) -> tuple[RealtimeState, int] | None:
    state = _state(setting_id, now)
    lease = timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)
    with transaction.atomic():
        # next_poll_at = the lease's end: a poll whose worker dies is polled again after it;
        # anyone asking for a poll meanwhile sets it earlier, and the release notices.
        claimed = (
            RealtimeState.objects.filter(pk=state.pk)
            .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
            .update(
                poll_token=F("poll_token") + 1,
                poll_lease_until=now + lease,
                queued_at=None,
                next_poll_at=now + lease,
            )
        )
    if claimed != 1:
        # Another poll of this tenant is running: it polls once more when it ends.
        RealtimeState.objects.filter(pk=state.pk).update(queued_at=None, next_poll_at=now)
        return None
    state.refresh_from_db()
    return state, state.poll_token


@dataclass
class PollReport:
    status: str = "done"  # done | busy | off | window_wait | failed
    records: int = 0
    posted: int = 0
    settled: int = 0
    warnings: int = 0
    errors: int = 0
    senselink_calls: int = 0
    kot_reads: int = 0
    detail: str = ""

    def __str__(self) -> str:
        return (
            f"{self.status} records={self.records} posted={self.posted} settled={self.settled} "
            f"warnings={self.warnings} errors={self.errors}"
        )


@dataclass
class _Notes:
    """What a poll records on the real-time runs, per working date."""

    posted: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[date, list[SyncError]] = field(default_factory=lambda: defaultdict(list))


def poll(*, setting_id: int, now: datetime | None = None) -> PollReport:
    """Poll one tenant now (see the module docstring); safe to call from several clusters."""
    now = now or timezone.now()
    claimed = _claim(setting_id, now)
    if claimed is None:
        return PollReport(status="busy")
    state, token = claimed
    report = PollReport()
    cursor: FeedCursor | None = None
    pending: list | None = None
    try:
        setting = ConnectSetting.objects.select_related("tenant").get(pk=setting_id)
        tenant = setting.tenant
        if (
            not setting.realtime_clock_in
            or not tenant.is_active
            or not setting.has_senselink_credentials
            or not tenant.kot_access_token
        ):
            report.status = "off"
            return report
        work = _PollWork(setting=setting, state=state, token=token, now=now, report=report)
        try:
            cursor, pending = work.run()
        except ConnectorError as exc:
            # The next poll tries again; a lasting problem shows in the daily run and its mail.
            report.status = "failed"
            report.detail = exc.message
            log.warning("realtime poll of setting %s failed: %s", setting_id, exc.code)
            if exc.permanent:  # a configuration problem: said once a day on the day's run
                work.note_failure(exc)
        finally:
            work.close()
    finally:
        _release(state=state, token=token, now=now, cursor=cursor, pending=pending)
    return report


def _release(
    *,
    state: RealtimeState,
    token: int,
    now: datetime,
    cursor: FeedCursor | None,
    pending: list | None,
) -> None:
    setting = (
        ConnectSetting.objects.filter(pk=state.setting_id).only("realtime_interval_minutes").first()
    )
    interval = timedelta(minutes=setting.realtime_interval_minutes if setting else 5)
    fields: dict = {"poll_lease_until": None, "last_polled_at": now}
    if cursor is not None:
        fields["feed_cursor"] = cursor.to_json()
    if pending is not None:
        fields["pending"] = pending
    mine = RealtimeState.objects.filter(pk=state.pk, poll_token=token)
    with transaction.atomic():
        mine.update(**fields)
        # Asked again while this poll ran (a push): poll at once; otherwise after the interval.
        lease_end = now + timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)
        asked = mine.filter(next_poll_at__lt=lease_end).update(queued_at=now, queued_reason="again")
        if not asked:
            mine.update(next_poll_at=now + interval - TICK_SLACK)
        else:
            _queue_polls([state.setting_id])


class _PollWork:
    def __init__(
        self,
        *,
        setting: ConnectSetting,
        state: RealtimeState,
        token: int,
        now: datetime,
        report: PollReport,
    ):
        self.setting = setting
        self.tenant = setting.tenant
        self.state = state
        self.now = now
        self.report = report
        self.owner = ledger.poll_owner(setting.pk, token)
        self.lease = PollLease(state.pk, token)
        self.rules = rules(setting)
        self.in_window = window_end(now) is not None
        self.kot = kot_client(self.tenant)
        self.senselink = senselink_client(setting)
        self.notes = _Notes()

    def close(self) -> None:
        self.kot.close()
        self.senselink.close()

    # -- the steps

    def run(self) -> tuple[FeedCursor, list]:
        ledger.expire_stale(tenant_id=self.tenant.pk, now=self.now)
        if not self.in_window:
            # Keep KOT's keys fresh while reads are allowed: the window's punches need them.
            self._employee_keys(set())
            self._settle_unknown()
        records, cursor = self._read_feed()
        self.report.records = len(records)
        firsts = self._first_recognitions(records)
        for code, day, iso in self.state.pending:
            when = datetime.fromisoformat(iso)
            key = (code, date.fromisoformat(day))
            if key not in firsts or when < firsts[key]:
                firsts[key] = when
        pending = self._post_clock_ins(firsts)
        self._record()
        self._note_push(records)
        return cursor, pending

    def _read_feed(self) -> tuple[list[SlRecord], FeedCursor]:
        """New records since the last poll, whatever order SenseLink lists them in
        (connectors/record_feed.py); the previous day's rest first after midnight."""
        today = self.now.astimezone(JST).date()
        cursor = FeedCursor.from_json(self.state.feed_cursor)
        records: list[SlRecord] = []
        if cursor.day is not None and cursor.day == today - timedelta(days=1):
            got, _done = self._read_day(cursor.day, cursor)
            records.extend(got)
        got, cursor = self._read_day(today, cursor)
        records.extend(got)
        return records, cursor

    def _read_day(self, day: date, cursor: FeedCursor) -> tuple[list[SlRecord], FeedCursor]:
        # A record stamped beyond the horizon is left for a later poll (the feed hands the
        # records after it out again, harmlessly: the ledger decides).
        read = read_new(
            self.senselink, cursor, day=day, now=self.now, horizon=self.now + FUTURE_SKEW
        )
        self.report.senselink_calls += read.calls
        start = datetime.combine(day, time.min, tzinfo=JST)
        end = start + timedelta(days=1)
        records = [
            record
            for record in read.records
            if start <= record.sign_time < end and record.user_type == 1 and record.job_number
        ]
        return records, read.cursor

    def _first_recognitions(self, records: list[SlRecord]) -> dict[tuple[str, date], datetime]:
        firsts: dict[tuple[str, date], datetime] = {}
        for record in records:
            code = record.job_number or ""
            key = (code, self.rules.working_date(code, record.sign_time))
            if key not in firsts or record.sign_time < firsts[key]:
                firsts[key] = record.sign_time
        return firsts

    def _employee_keys(self, wanted: set[str]) -> tuple[dict[str, str], bool]:
        """KOT's code -> key map and whether it is fresh enough to call a number unknown."""
        state = self.state
        keys: dict[str, str] = dict(state.employee_keys or {})
        age = self.now - state.keys_read_at if state.keys_read_at else None
        stale = age is None or age >= KEYS_MAX_AGE or (wanted - set(keys) and age >= KEYS_MIN_AGE)
        if stale and not self.in_window:
            today = self.now.astimezone(JST).date()
            employees = self.kot.list_employees(on=today, include_resigned=True)
            self.report.kot_reads += 1
            if employees:  # an empty answer is a token problem: keep what we knew
                keys = {e.code: e.key for e in employees}
                RealtimeState.objects.filter(pk=state.pk).update(
                    employee_keys=keys, keys_read_at=self.now
                )
                state.employee_keys, state.keys_read_at = keys, self.now
                age = timedelta(0)
        fresh = age is not None and age < KEYS_MIN_AGE and not self.in_window
        return keys, fresh

    def _post_clock_ins(self, firsts: dict[tuple[str, date], datetime]) -> list:
        """Post the clock-ins the ledger does not hold; return what must wait (pending)."""
        if not firsts:
            return []
        tenant_id = self.tenant.pk
        rows = ledger.rows_for(
            tenant_id=tenant_id, keys=[(code, day, CLOCK_IN) for code, day in firsts]
        )
        candidates: dict[tuple[str, date], datetime] = {}
        for (code, day), when in firsts.items():
            row = rows.get((code, day, CLOCK_IN))
            if row is None:
                candidates[(code, day)] = when
            elif when < row.punch_time and row.state != PunchLedger.State.FAILED:
                self._warn_earlier(code, day, when, row.punch_time)
        if not candidates:
            return []
        keys, fresh = self._employee_keys({code for code, _day in candidates})
        pending: list = []
        entries: list[ledger.Entry] = []
        for (code, day), when in sorted(candidates.items()):
            if code in keys:
                entries.append(ledger.Entry(code, day, CLOCK_IN, when))
            elif fresh:
                self._error_once(
                    day,
                    code,
                    "unknown_employee",
                    f"従業員番号:{code} のKING OF TIME従業員が見つかりません。"
                    "SenseLinkの従業員番号とKING OF TIMEの従業員コードをご確認ください。",
                )
            else:
                pending.append([code, day.isoformat(), when.isoformat()])
        pending.extend(self._send(entries, keys))
        return pending

    def _send(self, entries: list[ledger.Entry], keys: dict[str, str]) -> list:
        """Reserve, POST, record; returns entries to try again next poll (refused unprocessed)."""
        tenant_id = self.tenant.pk
        runs = {e.working_date: self._run_id(e.working_date) for e in entries}
        by_run: dict[int | None, list[ledger.Entry]] = defaultdict(list)
        for e in entries:
            by_run[runs[e.working_date]].append(e)
        held: set[ledger.Key] = set()
        for run_id, group in by_run.items():
            held |= ledger.reserve(
                tenant_id=tenant_id, entries=group, owner=self.owner, run_id=run_id, now=self.now
            )
        to_send = [e for e in entries if e.key in held]
        return self._post(to_send, keys)

    def _post(self, to_send: list[ledger.Entry], keys: dict[str, str]) -> list:
        tenant_id = self.tenant.pk
        kot: KotClient = self.kot

        def post(entry: ledger.Entry):
            self.lease.guard()
            return kot.register_punch(
                employee_key=keys[entry.employee_code],
                date=entry.working_date,
                time=entry.time,
                code=ledger.CODE_OF_PUNCH[entry.punch],
            )

        posted: list[ledger.Key] = []
        unknown: list[ledger.Key] = []
        failed: list[ledger.Key] = []
        again: list[ledger.Entry] = []
        workers = kot.limiter.max_concurrency
        for entry, exc in each_in_parallel(post, to_send, beat=lambda: None, workers=workers):
            if exc is None:
                posted.append(entry.key)
                self.notes.posted[entry.working_date] += 1
            elif getattr(exc, "may_have_landed", False):
                unknown.append(entry.key)
            elif isinstance(
                exc, (ThrottledError, ServerError, NetworkError, ForbiddenWindowError)
            ) or (isinstance(exc, ResponseFormatError) and not exc.permanent):
                again.append(entry)  # refused before KOT processed it: send it next poll
            else:
                failed.append(entry.key)
                self._error(
                    entry.working_date,
                    entry.employee_code,
                    exc.code,
                    f"従業員コード:{entry.employee_code} の出勤打刻に失敗しました。{exc.message}",
                )
        for keys, state in (
            (posted, ledger.State.POSTED),
            (unknown, ledger.State.UNKNOWN),
            (failed, ledger.State.FAILED),
        ):
            ledger.mark(tenant_id=tenant_id, owner=self.owner, keys=keys, state=state, now=self.now)
        ledger.release(tenant_id=tenant_id, owner=self.owner, keys=[e.key for e in again])
        self.report.posted += len(posted)
        return [[e.employee_code, e.working_date.isoformat(), e.time.isoformat()] for e in again]

    def _settle_unknown(self) -> None:
        """Outside KOT's windows: read KOT for punches whose answer was lost; posted, or sent
        once more (never blindly: only after this read found it missing)."""
        tenant_id = self.tenant.pk
        oldest = self.now.astimezone(JST).date() - timedelta(days=UNKNOWN_DAYS)
        rows = [
            r
            for r in ledger.unknown_rows(tenant_id=tenant_id)
            if r.working_date >= oldest and r.punch == CLOCK_IN
        ]
        if not rows:
            return
        keys, _fresh = self._employee_keys({r.employee_code for r in rows})
        rows = [r for r in rows if r.employee_code in keys]
        if not rows:
            return
        start = min(r.working_date for r in rows)
        end = max(r.working_date for r in rows)
        held = self.kot.list_punches(
            start=start, end=end, employee_keys=sorted({keys[r.employee_code] for r in rows})
        )
        self.report.kot_reads += 1
        found: list[ledger.Key] = []
        resend: list[ledger.Entry] = []
        for row in rows:
            key = keys[row.employee_code]
            same_kind = [
                p
                for p in held
                if p.employee_key == key and p.date == row.working_date and p.code == 1
            ]
            if any(same_minute(p.time, row.punch_time) for p in same_kind):
                found.append((row.employee_code, row.working_date, row.punch))
            elif same_kind:
                # KOT holds another clock-in (punched by other means): ours is not sent.
                PunchLedger.objects.filter(pk=row.pk, state=ledger.State.UNKNOWN).update(
                    state=ledger.State.FAILED, settled_at=self.now
                )
                self._error_once(
                    row.working_date,
                    row.employee_code,
                    "already_punched",
                    f"従業員コード:{row.employee_code} の出勤は既に打刻済みです。"
                    "KING OF TIME管理画面をご確認ください。",
                )
            else:
                resend.append(
                    ledger.Entry(row.employee_code, row.working_date, row.punch, row.punch_time)
                )
        self.report.settled += ledger.settle_found(tenant_id=tenant_id, keys=found, now=self.now)
        if resend:
            held_keys: set[ledger.Key] = set()
            for e in resend:
                held_keys |= ledger.reserve(
                    tenant_id=tenant_id,
                    entries=[e],
                    owner=self.owner,
                    run_id=self._run_id(e.working_date),
                    now=self.now,
                    retake=(ledger.State.UNKNOWN,),
                )
            again = self._post([e for e in resend if e.key in held_keys], keys)
            # Refused unprocessed: it stays unknown-free (released); the next poll sends it.
            self.state.pending = [*self.state.pending, *again]

    # -- the real-time runs

    def _run_id(self, working_date: date) -> int:
        return realtime_run(tenant=self.tenant, working_date=working_date, now=self.now).pk

    def note_failure(self, exc: ConnectorError) -> None:
        day = self.rules.working_date("", self.now)
        self._error_once(day, "", exc.code, f"リアルタイム出勤連携を実行できません: {exc.message}")
        self._record()

    def _error(
        self, day: date, code: str, error_code: str, message: str, *, warning: bool = False
    ) -> None:
        self.notes.errors[day].append(
            SyncError(
                employee_code=code,
                target_date=day,
                punch=CLOCK_IN if code else "",
                code=error_code,
                message=message,
                severity=SyncError.Severity.WARNING if warning else SyncError.Severity.ERROR,
                created_at=self.now,
            )
        )

    def _error_once(
        self, day: date, code: str, error_code: str, message: str, *, warning: bool = False
    ) -> None:
        """Errors follow the usual rules: one per employee, code and working day, not per poll."""
        run_id = self._run_id(day)
        if any(e.employee_code == code and e.code == error_code for e in self.notes.errors[day]):
            return
        if SyncError.objects.filter(run_id=run_id, employee_code=code, code=error_code).exists():
            return
        self._error(day, code, error_code, message, warning=warning)

    def _warn_earlier(self, code: str, day: date, when: datetime, posted: datetime) -> None:
        self._error_once(
            day,
            code,
            "earlier_recognition",
            f"従業員コード:{code} に、打刻済みの出勤({posted.astimezone(JST):%H:%M:%S})より前の"
            f"認証記録({when.astimezone(JST):%H:%M:%S})が後から届きました。出勤は変更していません。"
            "必要であればKING OF TIME管理画面で修正してください。",
            warning=True,
        )

    def _record(self) -> None:
        days = set(self.notes.posted) | {d for d, errs in self.notes.errors.items() if errs}
        for day in days:
            errors = self.notes.errors.get(day, [])
            run_id = self._run_id(day)
            for error in errors:
                error.run_id = run_id
            failed = sum(e.severity != SyncError.Severity.WARNING for e in errors)
            warned = len(errors) - failed
            with transaction.atomic():
                SyncError.objects.bulk_create(errors)
                SyncRun.objects.filter(pk=run_id).update(
                    created_count=F("created_count") + self.notes.posted.get(day, 0),
                    failed_count=F("failed_count") + failed,
                    warning_count=F("warning_count") + warned,
                    heartbeat_at=self.now,
                )
            self.report.errors += failed
            self.report.warnings += warned

    def _note_push(self, records: list[SlRecord]) -> None:
        push.note_poll(setting=self.setting, records=records, now=self.now)


# --- the real-time runs -----------------------------------------------------------------------


def realtime_run(*, tenant: Tenant, working_date: date, now: datetime) -> SyncRun:
    """The tenant's real-time run of a working day (created at its first punch or error)."""
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
                triggered_by_label=LABEL,
                created_at=now,
                started_at=now,
                heartbeat_at=now,
                message="リアルタイム出勤連携: 勤務日の終わりまで出勤打刻を受け付けます。",
            )
    except IntegrityError:
        return runs.get()


def close_ended_runs(*, now: datetime) -> int:
    """End the real-time runs whose working day is over (the usual status rules and mail)."""
    today = now.astimezone(JST).date()
    collecting = SyncRun.objects.filter(
        status=SyncRun.Status.COLLECTING, target_date__lt=today
    ).select_related("tenant")
    closed = 0
    for run in collecting:
        setting = run.tenant.connect_settings.first()
        if setting is not None and not rules(setting).day_ended(run.target_date, now):
            continue
        if not run.failed_count:
            status = SyncRun.Status.SUCCESS
        elif run.created_count or run.skipped_count:
            status = SyncRun.Status.PARTIAL
        else:
            status = SyncRun.Status.FAILURE
        with transaction.atomic():
            ended = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.COLLECTING).update(
                status=status,
                finished_at=now,
                message=f"{run.target_date:%Y年%m月%d日}: リアルタイム出勤打刻{run.created_count}件"
                f" 失敗{run.failed_count} 警告{run.warning_count}",
            )
            if ended and status != SyncRun.Status.SUCCESS:
                queue.enqueue_run_mail(run_id=run.pk)
        closed += ended
    return closed
