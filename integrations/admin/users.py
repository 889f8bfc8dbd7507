"""Tenant users: who belongs to which tenant, and who accepted which terms (read-only).

The models leave their user and tenant fields unnamed (Django would show "USER" and "TENANT"):
the columns and the form name them in Japanese.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import TenantMembership, TermsConsent
from .forms import TenantMembershipForm
from .mixins import ReadOnlyAdminMixin


class _UserAndTenantColumns:
    @admin.display(description=_("ユーザー"), ordering="user__username")
    def user_name(self, obj: TenantMembership | TermsConsent) -> str:
        return obj.user.get_username()

    @admin.display(description=_("テナント"), ordering="tenant__name")
    def tenant_name(self, obj: TenantMembership | TermsConsent) -> str:
        return obj.tenant.name


@admin.register(TenantMembership)
class TenantMembershipAdmin(_UserAndTenantColumns, admin.ModelAdmin[TenantMembership]):
    form = TenantMembershipForm
    list_display = ["user_name", "tenant_name"]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["user"]


@admin.register(TermsConsent)
class TermsConsentAdmin(_UserAndTenantColumns, ReadOnlyAdminMixin, admin.ModelAdmin[TermsConsent]):
    list_display = ["user_name", "tenant_name", "version", "accepted_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["version"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    fields = ["user_name", "tenant_name", "version", "accepted_at"]
    readonly_fields = fields
