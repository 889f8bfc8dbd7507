"""Real-time clock-in (SPEC 4.5): each tenant's new recognitions become KOT clock-ins within
its interval — also inside KOT's forbidden windows, where punches are accepted but reads are not.

* The dispatcher's tick (``tick``) queues the due polls (``poll_state.queue_due``: one queued per
  tenant at most) and ends the real-time runs of working days that are over
  (``runs.close_ended_runs``). A SenseLink push wakes a poll at once (``poll_state.wake``).
* A poll (``poll``) holds the tenant's poll lease (``poll_state.claim``: two clusters never poll
  one tenant at once; the lease fences every POST), reads only the records added since the last
  poll (``connectors.record_feed``: whatever order SenseLink lists them in, one call when
  quiet), and sends each employee's first recognition of the working day that
  the punch ledger does not hold yet — through the one sending protocol, ``punches.send``. It
  reads KOT only outside the windows: the employee keys (cached per tenant), and the punches of
  ledger rows whose answer was lost (``punches.settle``).
* One run per tenant and working day (``runs.collecting_run``, status ``collecting``) counts the
  day's punches and errors (``runs.add_to_run``); it ends when the working day ends. The daily
  attendance run then posts the clock-outs and anything the polls missed (same ledger).
"""

from __future__ import annotations

import logging
import time as monotonic_time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.record_feed import FeedCursor, read_new
from connectors.senselink import SlRecord

from ..fields import fit
from ..models import ConnectSetting, RealtimeState, SyncError, SyncRun
from . import leases, ledger, poll_state, punches, push, runs
from .clients import kot_client, senselink_client
from .punches import Answer, already_punched_message, invalid_job_number_message
from .windows import window_end
from .workday import rules_for

log = logging.getLogger(__name__)

CLOCK_IN = SyncError.Punch.CLOCK_IN.value
# A record stamped further ahead than this is not read yet (a terminal's clock, or a sandbox
# day generated whole): the cursor stops before it.
FUTURE_SKEW = timedelta(minutes=5)
# KOT's employee keys (punches need them, and KOT's windows forbid reading them): re-read
# outside the windows when older than this, or sooner when an unknown number appears.
KEYS_MAX_AGE = timedelta(hours=1)
KEYS_MIN_AGE = timedelta(minutes=5)
UNKNOWN_DAYS = 7  # unknown ledger rows older than this are left to the daily runs / support


def rules(setting: ConnectSetting):
    """The tenant's working-day rules: ``working_date(code, at)`` and ``day_ended(d, now)``."""
    return rules_for(setting)


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

    def day_ended(run: SyncRun) -> bool:
        setting = run.tenant.connect_settings.first()
        return setting is None or rules(setting).day_ended(run.target_date, now)

    return TickReport(
        queued=poll_state.queue_due(now=now),
        closed=runs.close_ended_runs(now=now, day_ended=day_ended),
    )


# --- the poll ----------------------------------------------------------------------------------


@dataclass
class PollReport:
    status: str = "done"  # done | busy | off | failed
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


def poll(*, setting_id: int, now: datetime | None = None, spaced: bool = False) -> PollReport:
    """Poll one tenant now (see the module docstring); safe to call from several clusters.

    ``spaced`` (the queued task): wait first until the tenant's polls are
    REALTIME_MIN_POLL_SPACING_SECONDS apart (a few seconds at most), so a flood of pushes costs
    at most one poll per spacing.
    """
    if spaced:
        wait = poll_state.wait_before_claim(setting_id, timezone.now())
        if wait:
            monotonic_time.sleep(min(wait, poll_state.min_spacing().total_seconds()))
    now = now or timezone.now()
    claim = poll_state.claim(setting_id, now)
    if claim is None:
        return PollReport(status="busy")
    report = PollReport()
    fields: dict = {}
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
        work = _PollWork(setting=setting, claim=claim, now=now, report=report)
        try:
            fields = work.run()
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
        poll_state.release(claim=claim, now=now, fields=fields)
    return report


def _cursor_fields(cursor: FeedCursor) -> dict:
    return {"feed_cursor": cursor.to_json()}


class _PollWork:
    def __init__(
        self,
        *,
        setting: ConnectSetting,
        claim: poll_state.Claim,
        now: datetime,
        report: PollReport,
    ):
        self.setting = setting
        self.tenant = setting.tenant
        self.state = claim.state
        self.now = now
        self.report = report
        self.lease = leases.Lease(claim.holder)
        self.writer = punches.Writer(
            tenant_id=self.tenant.pk,
            owner=self.lease.owner,
            guard=self.lease.guard,
            run_for=self._run_id,
        )
        self.rules = rules(setting)
        self.in_window = window_end(now) is not None
        self.kot = kot_client(self.tenant)
        self.senselink = senselink_client(setting)
        self.notes = _Notes()
        self._runs: dict[date, int] = {}

    def close(self) -> None:
        self.kot.close()
        self.senselink.close()

    # -- the steps

    def run(self) -> dict:
        """The poll's work; returns the state fields its release stores."""
        ledger.take_orphans(tenant_id=self.tenant.pk, now=self.now)
        pending: list = []
        if not self.in_window:
            # Keep KOT's keys fresh while reads are allowed: the window's punches need them.
            self._employee_keys(set())
            pending += self._settle_unknown()
        records, cursor = self._read_feed()
        self.report.records = len(records)
        firsts = self._first_recognitions(records)
        for code, day, iso in self.state.pending:
            when = datetime.fromisoformat(iso)
            key = (code, date.fromisoformat(day))
            if key not in firsts or when < firsts[key]:
                firsts[key] = when
        pending += self._post_clock_ins(firsts)
        self._record()
        self._note_push(records)
        return {**_cursor_fields(cursor), "pending": pending}

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
        records: list[SlRecord] = []
        for record in read.records:
            if not (start <= record.sign_time < end and record.user_type == 1):
                continue
            if record.job_number:
                records.append(record)
            elif record.problem:
                # A refused job number (connectors/text.py) names no one: one line, no punch.
                shown = fit(record.problem, 64)
                working = self.rules.working_date("", record.sign_time)
                self._error_once(
                    working, shown, "invalid_job_number", invalid_job_number_message(shown)
                )
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
                keys = {e.code: e.key for e in employees if not e.problem}
                RealtimeState.objects.filter(pk=state.pk).update(
                    employee_keys=keys, keys_read_at=self.now
                )
                state.employee_keys, state.keys_read_at = keys, self.now
                age = timedelta(0)
        fresh = age is not None and age < KEYS_MIN_AGE and not self.in_window
        return keys, fresh

    def _post_clock_ins(self, firsts: dict[tuple[str, date], datetime]) -> list:
        """Send the clock-ins the ledger does not hold; return what must wait (pending)."""
        if not firsts:
            return []
        seen = ledger.seen_for(
            tenant_id=self.tenant.pk, keys=[(code, day, CLOCK_IN) for code, day in firsts]
        )
        candidates: dict[tuple[str, date], datetime] = {}
        for (code, day), when in firsts.items():
            row = seen.get((code, day, CLOCK_IN))
            if row is None:
                candidates[(code, day)] = when
            elif when < row.punch_time and row.state != ledger.State.FAILED:
                self._warn_earlier(code, day, when, row.punch_time)
        if not candidates:
            return []
        keys, fresh = self._employee_keys({code for code, _day in candidates})
        pending: list = []
        to_send: list[punches.Punch] = []
        for (code, day), when in sorted(candidates.items()):
            if code in keys:
                to_send.append(punches.Punch(code, keys[code], day, CLOCK_IN, when))
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
        # A writer without a fresh KOT read: only punches the ledger does not hold are sent.
        sent = punches.send(kot=self.kot, writer=self.writer, punches=to_send, seen=None)
        return pending + self._take_answers(sent)

    def _take_answers(self, sent: list[punches.Sent]) -> list:
        """Count and report the answers; returns the punches to send again next poll (refused
        before KOT processed them). Unknown ones are settled by a later read, never resent."""
        again: list = []
        for item in sent:
            punch = item.punch
            if item.answer is Answer.POSTED:
                self.notes.posted[punch.working_date] += 1
                self.report.posted += 1
            elif item.answer is Answer.RELEASED:
                again.append(
                    [punch.employee_code, punch.working_date.isoformat(), punch.time.isoformat()]
                )
            elif item.answer is Answer.FAILED and item.error is not None:
                self._error(
                    punch.working_date,
                    punch.employee_code,
                    item.error.code,
                    f"従業員コード:{punch.employee_code} の出勤打刻に失敗しました。{item.error.message}",
                )
        return again

    def _settle_unknown(self) -> list:
        """Outside KOT's windows: settle clock-ins whose answer was lost by a KOT read made now
        (found → posted; absent → sent once more, never blindly: only after this read)."""
        since = self.now.astimezone(JST).date() - timedelta(days=UNKNOWN_DAYS)
        seen = ledger.unknown(tenant_id=self.tenant.pk, since=since, punch=CLOCK_IN)
        if not seen:
            return []
        keys, _fresh = self._employee_keys({code for code, _day, _punch in seen})
        settled = punches.settle(
            kot=self.kot, writer=self.writer, seen=seen, keys=keys, resend=True
        )
        self.report.kot_reads += settled.reads
        self.report.settled += len(settled.found)
        for code, day, _punch in settled.conflicts:
            self._error_once(day, code, "already_punched", already_punched_message(code, CLOCK_IN))
        return self._take_answers(settled.sent)

    # -- the real-time runs (runs.py keeps their lifecycle)

    def _run_id(self, working_date: date) -> int:
        if working_date not in self._runs:
            run = runs.collecting_run(tenant=self.tenant, working_date=working_date, now=self.now)
            self._runs[working_date] = run.pk
        return self._runs[working_date]

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
            errors = self.notes.errors.pop(day, [])
            failed = sum(e.severity != SyncError.Severity.WARNING for e in errors)
            runs.add_to_run(
                run_id=self._run_id(day),
                created=self.notes.posted.pop(day, 0),
                errors=errors,
                now=self.now,
            )
            self.report.errors += failed
            self.report.warnings += len(errors) - failed

    def _note_push(self, records: list[SlRecord]) -> None:
        push.note_poll(setting=self.setting, records=records, now=self.now)
