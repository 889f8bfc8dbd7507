"""Accounts a tenant runs itself (SPEC 3.6): password reset by e-mail, invitations, メンバー管理.

Password reset is Django's (PasswordResetView and friends) with Japanese pages and mails:
the same answer whether or not the address belongs to anyone, a link valid for
PASSWORD_RESET_TIMEOUT seconds and once, links built from PORTAL_BASE_URL (never from the
request's Host header), and at most PASSWORD_RESET_LIMIT requests per address and per client
address in PASSWORD_RESET_WINDOW_SECONDS (more get the same page and no mail).
"""

from __future__ import annotations

import hashlib
import logging

from axes.helpers import get_client_ip_address
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from integrations.models import TenantMembership
from integrations.services import members

from .decorators import tenant_page

log = logging.getLogger(__name__)


# --- Password reset ---------------------------------------------------------------------------


class MemberPasswordResetForm(PasswordResetForm):
    """Django's form, for active members of a tenant only (not support staff: their accounts
    are managed by the support desk)."""

    email = forms.EmailField(
        label=gettext_lazy("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={
            "required": gettext_lazy("メールアドレスを入力してください。"),
            "invalid": gettext_lazy("メールアドレスを正しく入力してください。"),
        },
    )

    def get_users(self, email):
        return (
            user
            for user in super().get_users(email)
            if not user.is_staff
            and TenantMembership.objects.filter(user=user, is_active=True).exists()
        )


def reset_allowed(request: HttpRequest, email: str) -> bool:
    """Count this request against the address's and the client's limits; False past either."""
    window = settings.PASSWORD_RESET_WINDOW_SECONDS
    address = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:32]
    client = get_client_ip_address(request) or "unknown"
    allowed = True
    for key in (f"password-reset:email:{address}", f"password-reset:ip:{client}"):
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        if count > settings.PASSWORD_RESET_LIMIT:
            allowed = False
    return allowed


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    form_class = MemberPasswordResetForm
    template_name = "portal/password_reset.html"
    email_template_name = "portal/mail/password_reset.txt"
    subject_template_name = "portal/mail/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")

    def form_valid(self, form):
        if not reset_allowed(self.request, form.cleaned_data["email"]):
            log.warning("password reset limit reached; no mail sent")
            return HttpResponseRedirect(self.get_success_url())
        self.extra_email_context = {
            "base_url": settings.PORTAL_BASE_URL.rstrip("/"),
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        }
        return super().form_valid(form)


class MemberSetPasswordForm(SetPasswordForm):
    """新しいパスワード, labelled in Japanese."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("新しいパスワード")
        self.fields["new_password2"].label = _("新しいパスワード(確認)")


class MemberPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link from the mail: a deactivated member's link does not work."""

    form_class = MemberSetPasswordForm
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")
    extra_context = {"heading": gettext_lazy("パスワードの再設定")}

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        if user is None or user.is_staff:
            return None
        if not TenantMembership.objects.filter(user=user, is_active=True).exists():
            return None
        return user


class InviteAcceptView(MemberPasswordResetConfirmView):
    """招待: the invited member sets a password (the link lives INVITE_TIMEOUT_DAYS days)."""

    token_generator = members.invite_token_generator
    reset_url_token = "set-password"  # noqa: S105 - a URL segment, not a password
    extra_context = {"heading": gettext_lazy("パスワードの設定(招待)")}


# --- メンバー管理 ------------------------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("メールアドレス"),
        max_length=150,  # it becomes the user name
        error_messages={
            "required": gettext_lazy("メールアドレスを入力してください。"),
            "invalid": gettext_lazy("メールアドレスを正しく入力してください。"),
        },
    )
    role = forms.ChoiceField(
        label=gettext_lazy("権限"),
        choices=TenantMembership.Role.choices,
        initial=TenantMembership.Role.VIEWER,
    )


class MemberForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("権限"), choices=TenantMembership.Role.choices)
    is_active = forms.BooleanField(label=gettext_lazy("有効"), required=False)


def _member_rows(request: HttpRequest):
    memberships = (
        TenantMembership.objects.filter(tenant=request.tenant)
        .select_related("user")
        .order_by("-is_active", "role", "user__username")
    )
    return [
        {
            "membership": membership,
            "pending": members.is_pending(membership),
            "is_self": membership.user_id == request.user.pk,
        }
        for membership in memberships
    ]


@require_http_methods(["GET", "POST"])
@tenant_page(admin_only=True)
def member_list(request: HttpRequest) -> HttpResponse:
    """メンバー管理: the tenant's users, and an invitation form."""
    form = InviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = members.invite_member(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except members.MemberRefused as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(
                request,
                _("{email} に招待メールを送信しました。").format(email=membership.user.email),
            )
            return redirect("portal:members")
    return render(
        request,
        "portal/members.html",
        {
            "form": form,
            "rows": _member_rows(request),
            "roles": TenantMembership.Role.choices,
            "invite_days": settings.INVITE_TIMEOUT_DAYS,
        },
    )


@require_POST
@tenant_page(admin_only=True)
def member_update(request: HttpRequest, member_id: int) -> HttpResponse:
    """Change one member's role or whether they may log in."""
    membership = get_object_or_404(TenantMembership, pk=member_id, tenant=request.tenant)
    form = MemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("権限を選んでください。"))
        return redirect("portal:members")
    try:
        members.change_member(
            membership=membership,
            role=form.cleaned_data["role"],
            is_active=form.cleaned_data["is_active"],
        )
    except members.MemberRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("{name} を更新しました。").format(name=membership.user.get_username()),
        )
    return redirect("portal:members")


@require_POST
@tenant_page(admin_only=True)
def member_invite(request: HttpRequest, member_id: int) -> HttpResponse:
    """招待メールを再送: a fresh set-your-password link."""
    membership = get_object_or_404(
        TenantMembership.objects.select_related("user", "tenant"),
        pk=member_id,
        tenant=request.tenant,
    )
    try:
        members.send_invitation(membership=membership)
    except members.MemberRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("{email} に招待メールを再送しました。").format(email=membership.user.email),
        )
    return redirect("portal:members")
