"""Display helpers shared by the admins: run badges, JST times, durations, secrets' status,
fieldsets without a field, and a list paginator that never counts a whole table."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from connectors.clock import JST

from ..models import SyncRun

if TYPE_CHECKING:
    from django_stubs_ext import FieldOpts, FieldsetSpec, StrOrPromise

STATUS_COLOURS: dict[str, str] = {
    SyncRun.Status.SUCCESS: "#2e7d32",
    SyncRun.Status.PARTIAL: "#e08a00",
    SyncRun.Status.FAILURE: "#c62828",
    SyncRun.Status.RUNNING: "#1565c0",
    SyncRun.Status.COLLECTING: "#1565c0",
    SyncRun.Status.QUEUED: "#757575",
    SyncRun.Status.WAITING: "#757575",
}


def status_badge(status: str) -> SafeString | None:
    if not status:
        return None
    return format_html(
        '<span class="run-status run-status-{}" style="display:inline-block; padding:1px 6px; '
        'border-radius:3px; color:#fff; font-weight:bold; background:{}">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#757575"),
        SyncRun.Status(status).label,
    )


# What an admin shows for no value. A display method's None reads "None" on a change form (Django
# shows its read-only callables as they are), so the helpers below return this instead.
EMPTY = "-"


def jst(value: datetime | None) -> str:
    return f"{value.astimezone(JST):%Y-%m-%d %H:%M}" if value else EMPTY


def jst_today() -> date:
    return timezone.now().astimezone(JST).date()


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return EMPTY
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}時間{minutes}分{seconds}秒"
    if minutes:
        return f"{minutes}分{seconds}秒"
    return f"{seconds}秒"


def secret_status(value: str) -> str:
    """Whether a secret is set; its last 4 characters only when it is long enough to hide."""
    if not value:
        return "未設定"
    if len(value) > 8:
        return f"設定済み (末尾 {value[-4:]})"
    return "設定済み"


def runs_url(**params: Any) -> str:
    url = reverse("admin:integrations_syncrun_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def without_fields(
    fieldsets: FieldsetSpec, names: set[str]
) -> list[tuple[StrOrPromise | None, FieldOpts]]:
    """The fieldsets without the named fields (a secret's input, for all but superusers)."""
    return [
        (title, {**options, "fields": [f for f in options["fields"] if f not in names]})
        for title, options in fieldsets
    ]


class CappedCountPaginator(Paginator[Any]):
    """Counts at most ``cap`` rows. A COUNT(*) over years of runs costs more than the page
    itself; past the cap the list says "10000" and the filters narrow it down."""

    cap = 10_000
    object_list: QuerySet[Any]  # an admin list's

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap].count()
