"""Tenant users: who belongs to which tenant with which role, and who accepted which terms.

Support does what a tenant's 管理者 does on メンバー管理: change a role, deactivate, and (re)send
the invitation (a POST-only button, as Django's UserAdmin adds its password change). The last
active 管理者 of a tenant can be neither demoted nor deactivated (services/members.py). The
models leave their user and tenant fields unnamed (Django would show "USER" and "TENANT"): the
columns and the form name them in Japanese.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from ..models import TenantMembership, TermsConsent
from ..services import members
from .display import jst
from .mixins import AppendOnlyAdminMixin


class TenantMembershipForm(forms.ModelForm):
    class Meta:
        model = TenantMembership
        fields = ["user", "tenant", "role", "is_active"]
        labels = {"user": _("ユーザー"), "tenant": _("テナント")}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk and not self.errors:
            try:
                with transaction.atomic():
                    members.check_change(
                        membership=self.instance,
                        role=cleaned.get("role", self.instance.role),
                        is_active=cleaned.get("is_active", self.instance.is_active),
                    )
            except members.MemberRefused as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


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
    list_display = ["user_name", "tenant_name", "role", "is_active", "state", "invited"]
    list_filter = ["role", "is_active"]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["user"]
    change_form_template = "admin/integrations/tenantmembership/change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A member never moves to another tenant (nor becomes another user): invite anew.
        return ["user", "tenant"] if obj is not None else []

    @admin.display(description=_("状態"))
    def state(self, obj: TenantMembership) -> str:
        if not obj.is_active:
            return str(_("無効"))
        return str(_("招待中(パスワード未設定)")) if members.is_pending(obj) else str(_("有効"))

    @admin.display(description=_("招待メール送信日時"), ordering="invited_at")
    def invited(self, obj: TenantMembership) -> str | None:
        return jst(obj.invited_at)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/invite/",
                self.admin_site.admin_view(self.invite_view),
                name="integrations_tenantmembership_invite",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def invite_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """招待メールを送信: a (new) set-your-password link to a member without a password."""
        membership = self.get_object(request, unquote(object_id))
        if membership is None:
            raise Http404
        if not self.has_change_permission(request, membership):
            raise PermissionDenied
        back = HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:integrations_tenantmembership_change",
                args=[membership.pk],
            )
        )
        try:
            members.send_invitation(membership=membership)
        except members.MemberRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return back
        self.log_change(request, membership, "招待メールを送信")
        self.message_user(
            request, f"{membership.user.email} に招待メールを送信しました。", messages.SUCCESS
        )
        return back


@admin.register(TermsConsent)
class TermsConsentAdmin(
    _UserAndTenantColumns, AppendOnlyAdminMixin, admin.ModelAdmin[TermsConsent]
):
    list_display = ["user_name", "tenant_name", "version", "accepted_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["version"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    fields = ["user_name", "tenant_name", "version", "accepted_at"]
    readonly_fields = fields
