"""The audit trail (変更履歴) for support: every recorded change of tenants' settings and
members, secrets shown as 「変更」 (integrations/audit.py). Append-only: nobody adds, changes or
deletes a row here, superusers included. Replaces django-auditlog's own admin."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .. import audit
from .display import CappedCountPaginator, jst
from .filters import TenantFilter
from .mixins import AppendOnlyAdminMixin


class AuditTenantFilter(TenantFilter):
    tenant_field = "additional_data__tenant_id"


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditEntryAdmin(AppendOnlyAdminMixin, admin.ModelAdmin[LogEntry]):
    list_display = ["at", "who", "what", "action_label", "change_lines"]
    list_filter = [AuditTenantFilter, "action", ("content_type", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "actor__username"]
    search_help_text = _("対象(会社名・利用者名)または変更者のユーザー名で検索できます。")
    list_select_related = ["actor", "actor__membership", "content_type"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    fields = ["at", "who", "what", "action_label", "change_lines", "remote_addr"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[LogEntry]:
        return super().get_queryset(request).order_by("-timestamp", "-id")

    @admin.display(description=_("日時"), ordering="timestamp")
    def at(self, obj: LogEntry) -> str | None:
        return jst(obj.timestamp)

    @admin.display(description=_("変更者"))
    def who(self, obj: LogEntry) -> str:
        return audit.actor_label(obj)

    @admin.display(description=_("対象"))
    def what(self, obj: LogEntry) -> str:
        return audit.object_label(obj)

    @admin.display(description=_("操作"), ordering="action")
    def action_label(self, obj: LogEntry) -> str:
        return audit.action_label(obj)

    @admin.display(description=_("変更内容"))
    def change_lines(self, obj: LogEntry) -> SafeString:
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            ((change.label, change.text) for change in audit.describe_changes(obj)),
        )
