"""メンバー管理: invite a colleague, change a role, deactivate; the same rules for the tenant's
administrators and for support in the admin.

A tenant always keeps one active 管理者: the last one can be neither demoted nor deactivated.
The check runs under a lock on the tenant's row (``select_for_update``), so two administrators
demoting each other at the same moment cannot both succeed.

An invitation creates the user without a usable password and mails a set-your-password link
(Django's password reset token, with its own salt and INVITE_TIMEOUT_DAYS); the link dies once
a password is set.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode
from django.utils.translation import gettext as _

from ..models import Tenant, TenantMembership

Role = TenantMembership.Role
log = logging.getLogger(__name__)


class MemberRefused(Exception):
    """A change the rules refuse; the message is for the person who asked (Japanese)."""


class InviteTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token (it changes when the password is set), another salt and lifetime."""

    key_salt = "portal.members.InviteTokenGenerator"

    def check_token(self, user, token) -> bool:
        if not (user and token):
            return False
        try:
            ts_b36, _hash = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        for secret in [self.secret, *self.secret_fallbacks]:
            if constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token):
                break
        else:
            return False
        return self._num_seconds(self._now()) - ts <= settings.INVITE_TIMEOUT_DAYS * 86400


invite_token_generator = InviteTokenGenerator()


def active_admins(tenant: Tenant):
    return TenantMembership.objects.filter(tenant=tenant, role=Role.ADMIN, is_active=True)


def check_change(*, membership: TenantMembership, role: str, is_active: bool) -> None:
    """Refuse a change that would leave the tenant without an active administrator.

    Call inside a transaction: it locks the tenant's row so concurrent changes queue up.
    """
    if membership.pk is None:
        return
    Tenant.objects.select_for_update().filter(pk=membership.tenant_id).first()
    stays_admin = role == Role.ADMIN and is_active
    stored = TenantMembership.objects.get(pk=membership.pk)
    was_admin = stored.role == Role.ADMIN and stored.is_active
    if was_admin and not stays_admin:
        others = active_admins(membership.tenant).exclude(pk=membership.pk)
        if not others.exists():
            raise MemberRefused(
                _(
                    "最後の管理者は閲覧者への変更や無効化ができません。"
                    "先に別の利用者を管理者にしてください。"
                )
            )


def change_member(*, membership: TenantMembership, role: str, is_active: bool) -> None:
    """Set a member's role and whether they may log in (the last-administrator rule applies)."""
    if role not in Role.values:
        raise MemberRefused(_("権限を選んでください。"))
    with transaction.atomic():
        check_change(membership=membership, role=role, is_active=is_active)
        membership.role = role
        membership.is_active = is_active
        membership.save(update_fields=["role", "is_active"])


def invite_member(*, tenant: Tenant, email: str, role: str) -> TenantMembership:
    """A new member who sets their own password from a mailed link; their user name is the
    e-mail address."""
    User = get_user_model()
    email = User.objects.normalize_email(email.strip()).lower()
    if role not in Role.values:
        raise MemberRefused(_("権限を選んでください。"))
    with transaction.atomic():
        taken = User.objects.filter(username__iexact=email).exists() or (
            User.objects.filter(email__iexact=email).exists()
        )
        if taken:
            raise MemberRefused(
                _(
                    "このメールアドレスは登録できません。別のメールアドレスを入力するか、"
                    "サポートへお問い合わせください。"
                )
            )
        user = User(username=email, email=email)
        user.set_unusable_password()
        user.save()
        membership = TenantMembership.objects.create(user=user, tenant=tenant, role=role)
    # Saved first: if the mail cannot go out now, the invitation can be sent again.
    send_invitation(membership=membership)
    return membership


def is_pending(membership: TenantMembership) -> bool:
    """Invited, and no password set yet."""
    return not membership.user.has_usable_password()


def send_invitation(*, membership: TenantMembership, now: datetime | None = None) -> None:
    """(Re)send the set-your-password mail; the link is valid INVITE_TIMEOUT_DAYS days."""
    user = membership.user
    if not user.email:
        raise MemberRefused(_("メールアドレスが登録されていないため招待メールを送れません。"))
    if not membership.is_active:
        raise MemberRefused(_("無効な利用者には招待メールを送れません。"))
    if user.has_usable_password():
        raise MemberRefused(
            _(
                "この利用者はパスワードを設定済みです。パスワードを忘れた場合は"
                "ログイン画面の「パスワードをお忘れの方」から再設定できます。"
            )
        )
    path = reverse(
        "portal:invite_accept",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": invite_token_generator.make_token(user),
        },
    )
    context = {
        "tenant": membership.tenant,
        "username": user.get_username(),
        "role": membership.get_role_display(),
        "url": settings.PORTAL_BASE_URL.rstrip("/") + path,
        "days": settings.INVITE_TIMEOUT_DAYS,
    }
    subject = render_to_string("portal/mail/invite_subject.txt", context).strip()
    body = render_to_string("portal/mail/invite.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("invitation mail to member %s failed: %s", membership.pk, type(exc).__name__)
        raise MemberRefused(
            _("招待メールを送信できませんでした。しばらくしてから招待メールを再送してください。")
        ) from None
    TenantMembership.objects.filter(pk=membership.pk).update(invited_at=now or timezone.now())
