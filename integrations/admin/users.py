"""Tenant users: who belongs to which tenant, and who accepted which terms (read-only)."""

from __future__ import annotations

from django.contrib import admin

from ..models import TenantMembership, TermsConsent
from .mixins import ReadOnlyAdminMixin


@admin.register(TenantMembership)
class TenantMembershipAdmin(admin.ModelAdmin[TenantMembership]):
    list_display = ["user", "tenant"]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["user"]


@admin.register(TermsConsent)
class TermsConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[TermsConsent]):
    list_display = ["user", "tenant", "version", "accepted_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["version"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
