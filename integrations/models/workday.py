"""KOT's divisions and their day borders (the working day, SPEC 4.6), kept per tenant."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .tenants import Tenant


class KotDivision(models.Model):
    """A KOT division (所属) of a tenant and its 日付変更時刻, as last read from KOT (SPEC 4.6).

    Refreshed by each attendance run and each connection test, outside KOT's windows; read by
    ``services.workday`` to place a recognition on its working date.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="kot_divisions", verbose_name=_("テナント")
    )
    code = models.CharField(_("所属コード"), max_length=64)
    name = models.CharField(_("所属名"), max_length=200, blank=True, default="")
    day_border = models.TimeField(_("日付変更時刻"))
    refreshed_at = models.DateTimeField(_("取得日時"), default=timezone.now)

    class Meta:
        verbose_name = _("KING OF TIMEの所属")
        verbose_name_plural = _("KING OF TIMEの所属")
        ordering = ["tenant", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="one_division_per_tenant_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name} ({self.day_border:%H:%M})"


class KotEmployeeDivision(models.Model):
    """Which division a KOT employee belongs to, as last read from KOT.

    Kept so that a working date can be computed while KOT refuses reads (its windows).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # A KOT code as KOT sends it, whatever its length (a cut code could name another employee):
    # text, not a bounded column, so an over-long code is still keyed exactly (PostgreSQL).
    employee_code = models.TextField(_("従業員コード"))
    division_code = models.CharField(_("所属コード"), max_length=64)

    class Meta:
        verbose_name = _("従業員の所属")
        verbose_name_plural = _("従業員の所属")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_code"], name="one_division_per_tenant_employee"
            )
        ]

    def __str__(self) -> str:
        return f"{self.employee_code} → {self.division_code}"
