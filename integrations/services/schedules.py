"""When syncs are due: the tenant's ConnectSetting is the one source of truth (SPEC 3.3, 4.4).

All in Asia/Tokyo whatever the host's zone. A slot is the JST hour a sync is due at; the
dispatcher turns each due slot into exactly one run (a unique constraint on the slot).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from connectors.clock import JST

from ..kinds import KINDS
from ..models import ConnectSetting


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=JST)


def _monthly_day(year: int, month: int, day: int) -> date:
    """Day D of a month; days 29–31 fall on a shorter month's last day."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def is_scheduled(setting: ConnectSetting, kind: str) -> bool:
    return setting.trigger_for(kind) == ConnectSetting.Trigger.SCHEDULED


def _daily(setting: ConnectSetting, kind: str) -> bool:
    field = KINDS[kind].interval_field
    return field is None or getattr(setting, field) == ConnectSetting.Interval.DAILY


def _monthly_slot(setting: ConnectSetting, kind: str, year: int, month: int) -> datetime:
    day = getattr(setting, KINDS[kind].day_field or "")
    return _at(_monthly_day(year, month, day), setting.hour_for(kind))


def latest_slot(setting: ConnectSetting, kind: str, now: datetime) -> datetime | None:
    """The most recent slot at or before ``now`` (None for a manual sync)."""
    if not is_scheduled(setting, kind):
        return None
    local = now.astimezone(JST)
    if _daily(setting, kind):
        slot = _at(local.date(), setting.hour_for(kind))
        return slot if slot <= local else slot - timedelta(days=1)
    slot = _monthly_slot(setting, kind, local.year, local.month)
    if slot <= local:
        return slot
    return _monthly_slot(setting, kind, *_previous_month(local.year, local.month))


def next_slot(setting: ConnectSetting, kind: str, now: datetime) -> datetime | None:
    """The first slot strictly after ``now`` (None for a manual sync)."""
    latest = latest_slot(setting, kind, now)
    if latest is None:
        return None
    if _daily(setting, kind):
        return latest + timedelta(days=1)  # Asia/Tokyo has no daylight saving
    return _monthly_slot(setting, kind, *_next_month(latest.year, latest.month))


def target_date_for(setting: ConnectSetting, slot: datetime) -> date:
    """The attendance day a slot syncs: the slot's JST date, or the day before."""
    day = slot.astimezone(JST).date()
    if setting.attendance_target_day == ConnectSetting.TargetDay.PREVIOUS:
        return day - timedelta(days=1)
    return day


def schedule_summary(setting: ConnectSetting | None) -> str:
    """The コネクト一覧 status: "手動", "毎日3時(前日), 毎月1日2時", with (一時停止中) marks."""
    if setting is None:
        return "未設定"
    parts = []
    if setting.realtime_clock_in:
        parts.append(f"出勤: リアルタイム({setting.realtime_interval_minutes}分毎)")
    if setting.attendance_trigger == ConnectSetting.Trigger.SCHEDULED:
        text = (
            f"勤怠 毎日{setting.attendance_hour}時({setting.get_attendance_target_day_display()})"
        )
        parts.append(text + ("(一時停止中)" if setting.attendance_paused else ""))
    if setting.employee_trigger == ConnectSetting.Trigger.SCHEDULED:
        if setting.employee_interval == ConnectSetting.Interval.DAILY:
            text = f"社員 毎日{setting.employee_hour}時"
        else:
            text = f"社員 毎月{setting.employee_day}日{setting.employee_hour}時"
        parts.append(text + ("(一時停止中)" if setting.employee_paused else ""))
    return ", ".join(parts) if parts else "手動"


def next_runs(setting: ConnectSetting | None, now: datetime) -> dict[str, datetime | None]:
    """Next scheduled run per kind (None when manual or paused)."""
    if setting is None:
        return dict.fromkeys(KINDS)
    return {
        kind: None if setting.is_paused(kind) else next_slot(setting, kind, now) for kind in KINDS
    }
