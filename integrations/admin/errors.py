"""The error admin (エラー詳細): every run's problems, one row each, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import SyncError
from ..services.runs import describe
from .display import CappedCountPaginator, jst
from .filters import ErrorTenantFilter
from .mixins import AppendOnlyAdminMixin


@admin.register(SyncError)
class SyncErrorAdmin(AppendOnlyAdminMixin, admin.ModelAdmin[SyncError]):
    list_display = [
        "created",
        "run_link",
        "tenant_name",
        "employee_code",
        "target_date",
        "punch",
        "severity",
        "code",
        "message",
    ]
    list_filter = [
        "severity",
        "code",
        ErrorTenantFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=employee_code"]
    search_help_text = _("従業員コード(完全一致)で検索できます。")
    list_select_related = ["run__tenant"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100

    @admin.display(description=_("発生日時"), ordering="created_at")
    def created(self, obj: SyncError) -> str:
        return jst(obj.created_at)

    @admin.display(description=_("連携ログ"), ordering="run")
    def run_link(self, obj: SyncError) -> SafeString:
        url = reverse("admin:integrations_syncrun_change", args=[obj.run_id])
        return format_html('<a href="{}">{}</a>', url, describe(obj.run))

    @admin.display(description=_("テナント"), ordering="run__tenant__name")
    def tenant_name(self, obj: SyncError) -> str:
        return obj.run.tenant.name
