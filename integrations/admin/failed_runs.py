"""本日の失敗: one JST day's FAILURE and PARTIAL runs across all tenants (a page of the run
admin, at ``admin/integrations/syncrun/failed/``)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest
from django.template.response import TemplateResponse

from connectors.clock import JST

from ..models import SyncError, SyncRun
from ..validators import validate_target_date
from .display import jst, jst_today, status_badge
from .filters import PROBLEM_STATUSES

if TYPE_CHECKING:
    from .runs import SyncRunAdmin

FAILED_RUNS_LIMIT = 500


def failed_runs_page(model_admin: SyncRunAdmin, request: HttpRequest) -> TemplateResponse:
    """The runs that failed on one JST day (today unless ?date=), newest first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    form = forms.DateField(required=False, validators=[validate_target_date])
    try:
        day = form.clean(request.GET.get("date")) or jst_today()
    except forms.ValidationError as exc:
        # A typed or crafted ?date= (9999-12-31, "x") is said, and today is shown instead.
        model_admin.message_user(
            request, " ".join(["日付を正しく指定してください。", *exc.messages]), messages.ERROR
        )
        day = jst_today()
    start = datetime.combine(day, time.min, tzinfo=JST)
    first_error = SyncError.objects.filter(run=OuterRef("pk")).order_by("id")
    runs: list[Any] = list(
        SyncRun.objects.filter(
            status__in=PROBLEM_STATUSES,
            created_at__gte=start,
            created_at__lt=start + timedelta(days=1),
        )
        .select_related("tenant")
        .annotate(first_error=Subquery(first_error.values("message")[:1]))
        .order_by("-created_at", "-id")[:FAILED_RUNS_LIMIT]
    )
    for run in runs:
        run.badge = status_badge(run.status)
        run.started = jst(run.started_at or run.created_at)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": SyncRun._meta,
        "title": f"{day:%Y年%m月%d日} に失敗した連携",
        "runs": runs,
        "limit": FAILED_RUNS_LIMIT,
        "truncated": len(runs) == FAILED_RUNS_LIMIT,
        "tenant_count": len({run.tenant_id for run in runs}),
        "previous_day": (day - timedelta(days=1)).isoformat(),
        "next_day": (day + timedelta(days=1)).isoformat() if day < jst_today() else None,
    }
    return TemplateResponse(request, "admin/integrations/syncrun/failed_runs.html", context)
