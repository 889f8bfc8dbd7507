"""The working day (日付変更時刻, SPEC 4.6): which date a recognition belongs to.

KOT keeps a day border per division (``GET /divisions`` → ``dayBorderTime``); a recognition at
``t`` belongs to working date D of its employee when ``D border ≤ t < D+1 border`` (JST), and
the punch's ``date`` is D. ``ConnectSetting.day_change_time`` overrides KOT's borders for the
whole tenant. The divisions and each employee's division are kept per tenant (``KotDivision``,
``KotEmployeeDivision``), refreshed by each attendance run and connection test, so that the
rules can be applied while KOT refuses reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.kot import KotClient, KotDivisionInfo

from ..kinds import KINDS
from ..models import ConnectSetting, KotDivision, KotEmployeeDivision, Tenant
from .windows import window_end, window_wait_message

log = logging.getLogger(__name__)

MIDNIGHT = time(0, 0)
CODE_CHARS = 64  # KotEmployeeDivision's code columns
DIVISIONS_UNREADABLE = (
    "KING OF TIMEの所属(日付変更時刻)を読み込めなかったため、前回読み込んだ日付変更時刻"
    "(未取得の場合は0:00)で勤務日を判定しました。アクセストークンに所属の参照権限を付けるか、"
    "連携設定の「日付変更時刻」を指定してください。"
)


class DayNotEnded(Exception):
    """A run's working day has not ended for every division yet; ``until`` is when it has."""

    def __init__(self, working_date: date, until: datetime) -> None:
        self.working_date = working_date
        self.until = until
        super().__init__(wait_message(working_date, until))


def wait_message(working_date: date, until: datetime) -> str:
    """What a run that waits for its working day to end says."""
    local = until.astimezone(JST)
    return (
        f"{working_date:%Y年%m月%d日}の勤務日は日付変更時刻の{local:%H:%M}まで続くため、"
        f"{local:%m月%d日 %H:%M}以降に自動で実行します。"
    )


@dataclass(frozen=True)
class WorkdayRules:
    """A tenant's day borders: ``override`` (day_change_time) or one border per division.

    ``members`` maps an employee code to its division code; an employee of no known division
    takes ``default_border`` (the earliest division border, 00:00 without divisions).
    """

    override: time | None = None
    borders: Mapping[str, time] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)

    @property
    def default_border(self) -> time:
        if self.override is not None:
            return self.override
        return min(self.borders.values(), default=MIDNIGHT)

    def border_for(self, employee_code: str) -> time:
        if self.override is not None:
            return self.override
        division = self.members.get(employee_code)
        return self.borders.get(division, self.default_border) if division else self.default_border

    def all_borders(self) -> set[time]:
        if self.override is not None:
            return {self.override}
        return set(self.borders.values()) or {MIDNIGHT}

    def working_date(self, employee_code: str, at: datetime) -> date:
        """The working date a recognition of this employee at ``at`` belongs to."""
        local = _jst(at)
        day = local.date()
        return day if local.time() >= self.border_for(employee_code) else day - timedelta(days=1)

    def employee_span(self, working_date: date, employee_code: str) -> tuple[datetime, datetime]:
        """[start, end) of one employee's working date, aware JST."""
        return _span(working_date, self.border_for(employee_code))

    def span(
        self, working_date: date, employee_codes: Iterable[str] | None = None
    ) -> tuple[datetime, datetime]:
        """[start, end) covering the working date of these employees (all divisions if None)."""
        if employee_codes is None:
            borders = self.all_borders()
        else:
            borders = {self.border_for(code) for code in employee_codes} or self.all_borders()
        return _span(working_date, min(borders))[0], _span(working_date, max(borders))[1]

    def day_ended(self, working_date: date, now: datetime) -> bool:
        """Whether the working date has ended for every division."""
        return now >= self.span(working_date)[1]

    def must_wait(self, working_date: date, now: datetime) -> datetime | None:
        """When a run of ``working_date`` started at ``now`` must wait: the day's end, else None.

        A run waits once the calendar day is over but a later border has not passed yet (e.g.
        a 03:00 "前日" run with a 05:00 border). A run of the current calendar day (当日, or a
        manual run of today) reads the day so far, as it always did.
        """
        end = self.span(working_date)[1]
        calendar_end = datetime.combine(working_date + timedelta(days=1), MIDNIGHT, tzinfo=JST)
        if calendar_end <= now < end:
            return end
        return None


def start_wait(
    *,
    setting: ConnectSetting,
    kind: str,
    target_date: date | None,
    now: datetime,
    rules: WorkdayRules | None = None,
) -> tuple[datetime | None, str]:
    """When a new run must wait, and what it says: KOT's window, or (for a dated run) its
    working day's border by the stored rules. ``(None, "")`` when it can start now."""
    until = window_end(now)
    message = window_wait_message(until) if until else ""
    if target_date is not None and KINDS[kind].dated:
        if rules is None:
            rules = rules_for(setting, members={})  # who is where does not move the day's end
        border = rules.must_wait(target_date, now)
        if border is not None and (until is None or border > until):
            return border, wait_message(target_date, border)
    return until, message


def _jst(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("workday needs an aware datetime")
    return at.astimezone(JST)


def _span(working_date: date, border: time) -> tuple[datetime, datetime]:
    start = datetime.combine(working_date, border, tzinfo=JST)
    return start, start + timedelta(days=1)  # Asia/Tokyo has no daylight saving


def rules_for(
    tenant_or_setting: Tenant | ConnectSetting, *, members: Mapping[str, str] | None = None
) -> WorkdayRules:
    """The tenant's working-day rules from its setting and the stored divisions.

    ``members`` (employee code → division code, e.g. from a fresh KOT employee list) replaces
    the stored employee divisions.
    """
    if isinstance(tenant_or_setting, ConnectSetting):
        setting: ConnectSetting | None = tenant_or_setting
        tenant_id = tenant_or_setting.tenant_id
    else:
        tenant_id = tenant_or_setting.pk
        setting = ConnectSetting.objects.filter(
            tenant_id=tenant_id, connector=ConnectSetting.Connector.SENSELINK
        ).first()
    override = setting.day_change_time if setting is not None else None
    if override is not None:
        return WorkdayRules(override=override.replace(second=0, microsecond=0))
    borders = dict(
        KotDivision.objects.filter(tenant_id=tenant_id).values_list("code", "day_border")
    )
    if members is None:
        members = {}
        if len(set(borders.values())) > 1:  # with one border, who is where does not matter
            members = dict(
                KotEmployeeDivision.objects.filter(tenant_id=tenant_id).values_list(
                    "employee_code", "division_code"
                )
            )
    return WorkdayRules(borders=borders, members=members)


def current_rules(
    *, setting: ConnectSetting, kot: KotClient, store: bool
) -> tuple[WorkdayRules, str]:
    """The rules with KOT's divisions read now (not with day_change_time, which overrides them).

    ``store`` keeps what was read for the tenant (a run does, a preview does not). Returns the
    rules and a notice ("" when all went well): a token that may not read divisions falls back
    on the stored borders. KOT's windows and transient errors are raised as they are.
    """
    if setting.day_change_time is not None:
        return rules_for(setting), ""
    try:
        divisions = kot.list_divisions()
    except ConnectorError as exc:
        if not exc.permanent:
            raise
        log.warning("tenant %s: divisions unreadable (%s)", setting.tenant_id, exc.code)
        return rules_for(setting), DIVISIONS_UNREADABLE
    if store:
        store_divisions(tenant=setting.tenant, divisions=divisions)
        return rules_for(setting), ""
    return WorkdayRules(borders={d.code: d.day_border for d in divisions}), ""


def borders_for_many(settings: Iterable[ConnectSetting]) -> dict[int, WorkdayRules]:
    """Each tenant's rules without employee divisions (enough for spans and day ends), in one
    query for all: the dispatcher's view of many tenants at once."""
    settings = list(settings)
    borders: dict[int, dict[str, time]] = {}
    tenant_ids = [s.tenant_id for s in settings if s.day_change_time is None]
    for tenant_id, code, border in KotDivision.objects.filter(tenant_id__in=tenant_ids).values_list(
        "tenant_id", "code", "day_border"
    ):
        borders.setdefault(tenant_id, {})[code] = border
    return {
        s.tenant_id: WorkdayRules(override=s.day_change_time)
        if s.day_change_time is not None
        else WorkdayRules(borders=borders.get(s.tenant_id, {}))
        for s in settings
    }


def refresh_divisions(*, tenant: Tenant, kot: KotClient) -> list[KotDivisionInfo]:
    """Read KOT's divisions (outside its windows) and store them for the tenant."""
    divisions = kot.list_divisions()
    store_divisions(tenant=tenant, divisions=divisions)
    return divisions


def store_divisions(*, tenant: Tenant, divisions: Iterable[KotDivisionInfo]) -> None:
    """Replace the tenant's stored divisions with KOT's answer (unchanged rows stay as they are)."""
    now = timezone.now()
    fresh = {d.code: d for d in divisions}
    with transaction.atomic():
        stored = {d.code: d for d in KotDivision.objects.filter(tenant=tenant)}
        KotDivision.objects.filter(tenant=tenant).exclude(code__in=list(fresh)).delete()
        for code, division in fresh.items():
            row = stored.get(code)
            if row is None:
                KotDivision.objects.create(
                    tenant=tenant,
                    code=code,
                    name=division.name,
                    day_border=division.day_border,
                    refreshed_at=now,
                )
            elif (row.name, row.day_border) != (division.name, division.day_border):
                KotDivision.objects.filter(pk=row.pk).update(
                    name=division.name, day_border=division.day_border, refreshed_at=now
                )


def remember_members(*, tenant: Tenant, employees: Mapping[str, str]) -> None:
    """Store each employee's division (employee code → division code, as KOT just answered)."""
    members = {
        code: division
        for code, division in employees.items()
        if code and division and len(code) <= CODE_CHARS and len(division) <= CODE_CHARS
    }
    with transaction.atomic():
        stored = dict(
            KotEmployeeDivision.objects.filter(tenant=tenant).values_list(
                "employee_code", "division_code"
            )
        )
        if stored == members:
            return
        gone = [code for code in stored if code not in members]
        KotEmployeeDivision.objects.filter(tenant=tenant, employee_code__in=gone).delete()
        for code, division in members.items():
            if code in stored and stored[code] != division:
                KotEmployeeDivision.objects.filter(tenant=tenant, employee_code=code).update(
                    division_code=division
                )
        KotEmployeeDivision.objects.bulk_create(
            [
                KotEmployeeDivision(tenant=tenant, employee_code=code, division_code=division)
                for code, division in members.items()
                if code not in stored
            ],
            batch_size=1000,
        )


def schedule_wait_warning(setting: ConnectSetting) -> str:
    """The settings page's warning when the attendance schedule must wait every day ("" if not).

    E.g. 03:00 "前日" with a 05:00 border: the previous working day ends at 05:00, so each run
    waits until then.
    """
    if (
        setting.attendance_trigger != ConnectSetting.Trigger.SCHEDULED
        or setting.attendance_target_day != ConnectSetting.TargetDay.PREVIOUS
    ):
        return ""
    latest = max(rules_for(setting).all_borders())
    if time(setting.attendance_hour) >= latest:
        return ""
    return (
        f"勤怠連携の実行時刻({setting.attendance_hour}時)が日付変更時刻({latest:%H:%M})より前の"
        f"ため、前日の勤務日がまだ終わっておらず、毎回{latest:%H:%M}まで待ってから実行されます。"
        f"実行時刻を{latest.hour + (1 if latest.minute else 0)}時以降にすることをおすすめします。"
    )
