"""Small list filters for the support admin; each runs at most one small query."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..models import SyncRun, Tenant

PROBLEM_STATUSES = (SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL)


class LastResultFilter(admin.SimpleListFilter):
    """Tenants whose latest employee or attendance run ended badly.

    Filters on the ``last_*_status`` annotations of TenantAdmin.get_queryset.
    """

    title = _("最新の連携結果")
    parameter_name = "last_result"

    def lookups(self, request, model_admin):
        return [
            ("failure", _("FAILUREあり")),
            ("problem", _("FAILURE・PARTIALあり")),
        ]

    def queryset(self, request, queryset):
        statuses = {
            "failure": [SyncRun.Status.FAILURE],
            "problem": list(PROBLEM_STATUSES),
        }.get(self.value() or "")
        if statuses is None:
            return queryset
        return queryset.filter(
            Q(last_employee_status__in=statuses) | Q(last_attendance_status__in=statuses)
        )


class TenantFilter(admin.SimpleListFilter):
    """One tenant, by id (``?tenant=12``).

    With hundreds of tenants a list of them all would be useless and slow, so the sidebar only
    shows the chosen tenant (reached from the tenant list's links or by searching).
    """

    title = _("テナント")
    parameter_name = "tenant"
    tenant_field = "tenant_id"

    def tenant_id(self) -> int | None:
        """The chosen id; None for anything but ASCII digits within a bigint ("²", "9"*30)."""
        value = self.value()
        if not value or not (value.isascii() and value.isdigit()) or len(value) > 18:
            return None
        return int(value)

    def lookups(self, request, model_admin):
        pk = self.tenant_id()
        if pk is None:
            return []
        return [(str(t.pk), t.name) for t in Tenant.objects.filter(pk=pk).only("pk", "name")]

    def queryset(self, request, queryset):
        pk = self.tenant_id()
        if pk is None:
            return queryset
        return queryset.filter(**{self.tenant_field: pk})


class ErrorTenantFilter(TenantFilter):
    tenant_field = "run__tenant_id"


class PushStoppedFilter(admin.SimpleListFilter):
    """Tenants whose SenseLink push subscription was found stopped (support restores it)."""

    title = _("プッシュ受信")
    parameter_name = "push"

    def lookups(self, request, model_admin):
        return [("stopped", _("停止中")), ("receiving", _("受信中"))]

    def queryset(self, request, queryset):
        if self.value() == "stopped":
            return queryset.filter(
                connect_settings__push_receiver__stopped_at__isnull=False
            ).distinct()
        if self.value() == "receiving":
            return queryset.filter(
                connect_settings__push_receiver__isnull=False,
                connect_settings__push_receiver__stopped_at__isnull=True,
            ).distinct()
        return queryset
