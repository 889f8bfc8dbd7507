"""Small display helpers for the tenant pages (JST dates in the manual's format)."""

from __future__ import annotations

import re

from django import template
from django.utils import timezone
from django.utils.safestring import SafeData, mark_safe

register = template.Library()

DAY_TIME = "%Y年%m月%d日 %H:%M:%S"
_SPACE_BEFORE_NUMBER = re.compile(r" (?=\d)")


@register.filter
def processing_time(run) -> str:
    """処理時間 as in the manual: "2021年02月24日 11:35:40 - 11:35:48" (JST).

    The end shows its date too when it falls on another day; a run not yet started shows when
    it was requested, and one not yet finished an open end.
    """
    start = timezone.localtime(run.started_at or run.created_at)
    text = f"{start:{DAY_TIME}} - "
    if run.finished_at:
        end = timezone.localtime(run.finished_at)
        text += f"{end:%H:%M:%S}" if end.date() == start.date() else f"{end:{DAY_TIME}}"
    return text


@register.filter
def jst(value, fmt: str = "%Y年%m月%d日 %H:%M") -> str:
    """A datetime in JST, formatted with strftime (the manual's 年月日 style by default)."""
    if value is None:
        return ""
    return f"{timezone.localtime(value):{fmt}}"


@register.filter
def keep_numbers(text: str) -> str:
    """A label and its number ("スキップ 37") never end up on two lines: a no-break space
    before each number. Safe text stays safe: only spaces change."""
    kept = _SPACE_BEFORE_NUMBER.sub("\u00a0", str(text))
    return mark_safe(kept) if isinstance(text, SafeData) else kept  # noqa: S308


@register.filter
def duration_ja(delta) -> str:
    """A timedelta as people say it: "30分", "1時間", "1時間30分" (minutes rounded up)."""
    if delta is None:
        return ""
    minutes = -(-int(delta.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}時間{minutes}分"
    return f"{hours}時間" if hours else f"{minutes}分"


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with some parameters replaced (for paging links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params[key] = value
    return "?" + params.urlencode()
