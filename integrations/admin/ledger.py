"""The punch ledger admin (read-only): what was sent to KOT, and what is still to be confirmed."""

from __future__ import annotations

from django.contrib import admin

from ..models import PunchLedger
from .filters import TenantFilter
from .mixins import ReadOnlyAdminMixin


@admin.register(PunchLedger)
class PunchLedgerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[PunchLedger]):
    # Not even superusers delete a row by hand: without it, its punch could be sent again.
    superusers_may_delete = False
    list_display = [
        "tenant",
        "employee_code",
        "working_date",
        "punch",
        "state",
        "punch_time",
        "owner",
        "sent_at",
        "settled_at",
        "run",
    ]
    list_filter = ["state", "punch", TenantFilter]
    list_select_related = ["tenant", "run"]
    search_fields = ["employee_code", "tenant__slug"]
    date_hierarchy = "working_date"
    list_per_page = 100
