"""Who uses a tenant's pages, with which role, and who accepted which terms."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .tenants import Tenant


class TenantMembership(models.Model):
    """Makes a user a member of exactly one tenant (the tenant pages' login), with a role.

    管理者 change settings, run syncs and manage members; 閲覧者 only read (コネクト一覧, 連携ログ,
    エラー詳細, 変更履歴). An inactive membership cannot log in (portal.backends). The rules about
    the last administrator live in integrations/services/members.py.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", _("管理者")
        VIEWER = "viewer", _("閲覧者")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("権限"), max_length=10, choices=Role.choices, default=Role.ADMIN)
    is_active = models.BooleanField(
        _("有効"), default=True, help_text=_("無効にした利用者はログインできません。")
    )
    invited_at = models.DateTimeField(_("招待メール送信日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("テナント利用者")
        verbose_name_plural = _("テナント利用者")

    def __str__(self) -> str:
        return f"{self.user} ({self.tenant})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    def get_additional_data(self) -> dict:
        # Stored with each audit row (django-auditlog): the tenant whose 変更履歴 shows it.
        return {"tenant_id": self.tenant_id}


class TermsConsent(models.Model):
    """Who accepted which version of the terms, and when."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_consents"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="terms_consents")
    version = models.CharField(_("規約バージョン"), max_length=32)
    accepted_at = models.DateTimeField(_("同意日時"), default=timezone.now)

    class Meta:
        verbose_name = _("利用規約同意")
        verbose_name_plural = _("利用規約同意")
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="one_consent_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.version}"
