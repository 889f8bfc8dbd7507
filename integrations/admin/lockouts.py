"""Login lock-outs (django-axes), in Japanese: who is locked out, until when, and the support
desk's action that unlocks them (django-axes' own admin is switched off: AXES_ENABLE_ADMIN)."""

from __future__ import annotations

from datetime import datetime

from axes.helpers import get_cool_off
from axes.models import AccessAttempt, AccessLog
from axes.utils import reset
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .display import jst
from .mixins import ReadOnlyAdminMixin

# "may unlock": deleting a login's failed attempts is what unlocking is.
UNLOCK_PERMISSION = "axes.delete_accessattempt"


def _unlocks_at(attempt: AccessAttempt) -> datetime | None:
    cool_off = get_cool_off()
    return attempt.attempt_time + cool_off if cool_off else None


def is_locked(attempt: AccessAttempt, now: datetime | None = None) -> bool:
    """Locked out now: enough failures, and the cool-off since the last one not over yet."""
    if attempt.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return False
    until = _unlocks_at(attempt)
    return until is None or until > (now or timezone.now())


class LockedFilter(admin.SimpleListFilter):
    title = _("状態")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", _("ロック中")), ("no", _("ロックなし"))]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        locked = [a.pk for a in queryset if is_locked(a)]  # a handful of rows at most
        if self.value() == "yes":
            return queryset.filter(pk__in=locked)
        return queryset.exclude(pk__in=locked)


@admin.register(AccessAttempt)
class LockoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AccessAttempt]):
    """ログイン失敗・ロック: one row per account and address with failed logins."""

    superusers_may_delete = False  # unlocking is the action below, logged
    list_display = [
        "username",
        "ip_address",
        "failures_since_start",
        "state",
        "last_failure",
        "unlocks",
    ]
    list_filter = [LockedFilter]
    search_fields = ["username", "ip_address"]
    fields = [
        "username",
        "ip_address",
        "failures_since_start",
        "state",
        "last_failure",
        "unlocks",
        "path_info",
        "user_agent",
    ]
    readonly_fields = fields
    actions = ["unlock"]

    @admin.display(description=_("状態"))
    def state(self, obj: AccessAttempt) -> str:
        if is_locked(obj):
            return "ロック中"
        left = settings.AXES_FAILURE_LIMIT - obj.failures_since_start
        return f"あと{left}回でロック" if left > 0 else "解除済み(時間経過)"

    @admin.display(description=_("最後の失敗"), ordering="attempt_time")
    def last_failure(self, obj: AccessAttempt) -> str:
        return jst(obj.attempt_time)

    @admin.display(description=_("自動で解除される日時"))
    def unlocks(self, obj: AccessAttempt) -> str:
        until = _unlocks_at(obj)
        return jst(until) if until else "サポートが解除するまで"

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(UNLOCK_PERMISSION)

    @admin.action(description=_("選択したログインのロックを解除"), permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        names = []
        for attempt in queryset:
            self.log_change(request, attempt, "ロックを解除")
            reset(ip=attempt.ip_address, username=attempt.username)
            names.append(attempt.username or attempt.ip_address or "-")
        self.message_user(
            request,
            f"{len(names)}件のロックを解除しました({'、'.join(names[:5])})。"
            "すぐにログインできます。",
            messages.SUCCESS,
        )


@admin.register(AccessLog)
class LoginLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AccessLog]):
    """ログイン履歴: successful logins and their logouts (read-only)."""

    superusers_may_delete = False
    list_display = ["username", "ip_address", "logged_in", "logged_out", "path_info"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "attempt_time"
    fields = ["username", "ip_address", "logged_in", "logged_out", "path_info", "user_agent"]
    readonly_fields = fields

    @admin.display(description=_("ログイン日時"), ordering="attempt_time")
    def logged_in(self, obj: AccessLog) -> str:
        return jst(obj.attempt_time)

    @admin.display(description=_("ログアウト日時"), ordering="logout_time")
    def logged_out(self, obj: AccessLog) -> str:
        return jst(obj.logout_time)
