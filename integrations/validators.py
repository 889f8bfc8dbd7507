"""Validators shared by the model fields, the admin and the tenant forms."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from connectors.clock import JST

EARLIEST_TARGET_DATE = date(2000, 1, 1)


def latest_target_date() -> date:
    """Tomorrow in Japan: the last day a person may ask a sync or a page about."""
    return timezone.now().astimezone(JST).date() + timedelta(days=1)


def target_date_problem(value: date) -> str | None:
    """Why a date typed by a person is out of range (2000-01-01 to tomorrow, JST), or None."""
    if EARLIEST_TARGET_DATE <= value <= latest_target_date():
        return None
    return (
        f"日付は{EARLIEST_TARGET_DATE:%Y-%m-%d}から{latest_target_date():%Y-%m-%d}までの間で"
        "指定してください。"
    )


def validate_target_date(value: date) -> None:
    """Refuse dates outside 2000-01-01..tomorrow (JST): forms, admin views and commands."""
    problem = target_date_problem(value)
    if problem:
        raise ValidationError(problem, code="date_out_of_range")


def validate_senselink_url(value: str) -> None:
    """Refuse URLs the portal must never call (see connectors.netcheck)."""
    from connectors.netcheck import UnsafeUrlError, check_senselink_url

    try:
        check_senselink_url(value, allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS)
    except UnsafeUrlError as exc:
        raise ValidationError(str(exc), code="unsafe_url") from None


def parse_person_group_ids(value: str) -> list[int]:
    """SenseLink person-group ids from "3, 12,40" (ValueError on anything but digits)."""
    ids = [part.strip() for part in (value or "").replace("、", ",").split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in ids):
        raise ValueError("not a comma-separated list of numbers")
    return list(dict.fromkeys(int(part) for part in ids))


def validate_person_group_ids(value: str) -> None:
    try:
        parse_person_group_ids(value)
    except ValueError:
        raise ValidationError(
            "人員グループIDは数字で入力してください(複数の場合はカンマ区切り、例: 3,12)。",
            code="invalid_group_ids",
        ) from None


def hour_in_forbidden_window(hour: int) -> bool:
    """Whether a run starting at HH:00 JST would start inside a KOT API-forbidden window."""
    from connectors.kot import FORBIDDEN_WINDOWS

    minutes = hour * 60
    return any(
        start.hour * 60 + start.minute <= minutes < end.hour * 60 + end.minute
        for start, end in FORBIDDEN_WINDOWS
    )


def forbidden_hours() -> tuple[int, ...]:
    """The schedule hours (0–23) refused because they start inside a KOT window."""
    return tuple(h for h in range(24) if hour_in_forbidden_window(h))
