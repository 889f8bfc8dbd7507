"""The slim tenant pages (SPEC 3). Every query is scoped to ``request.tenant``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from integrations import audit
from integrations.models import ConnectSetting, SyncRun, TermsConsent
from integrations.services import exports, push
from integrations.services.clients import connect_setting
from integrations.services.connection_test import check_connections, load_person_groups
from integrations.services.poll_state import polled_at as realtime_polled_at
from integrations.services.preview import preview_sync
from integrations.services.runs import RunRefused, describe, request_run
from integrations.services.schedules import next_runs, schedule_summary
from integrations.services.workday import schedule_wait_warning
from integrations.validators import forbidden_hours

from .decorators import has_accepted_terms, tenant_page
from .forms import (
    ConnectSettingForm,
    ManualRunForm,
    PreviewForm,
    TermsForm,
    ThrottledPasswordChangeForm,
    yesterday,
)

PER_PAGE_CHOICES = (5, 10, 25, 50)
DEFAULT_PER_PAGE = 10
ERRORS_PER_PAGE = 200
HISTORY_PER_PAGE = 50


def _own_setting(request: HttpRequest, setting_id: int) -> ConnectSetting:
    return get_object_or_404(ConnectSetting, pk=setting_id, tenant=request.tenant)


class ThrottledPasswordChangeView(auth_views.PasswordChangeView):
    """パスワード変更: wrong old passwords count towards the login's lock-out (django-axes)."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


# --- 利用規約同意 -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_page(consent=False)
def terms(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    accepted = has_accepted_terms(request.user)
    form = TermsForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and not accepted and form.is_valid():
        TermsConsent.objects.get_or_create(
            user=request.user,
            version=settings.TERMS_VERSION,
            defaults={"tenant": request.tenant, "accepted_at": timezone.now()},
        )
        return redirect(next_url or "portal:connect_list")
    if request.method == "POST" and accepted:
        return redirect(next_url or "portal:connect_list")
    return render(
        request,
        "portal/terms.html",
        {
            "form": form,
            "accepted": accepted,
            "next": next_url,
            "version": settings.TERMS_VERSION,
        },
    )


# --- コネクト一覧 and 連携ログ ----------------------------------------------------------------


def _per_page(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        return DEFAULT_PER_PAGE
    return value if value in PER_PAGE_CHOICES else DEFAULT_PER_PAGE


def _log_context(request: HttpRequest) -> dict:
    """One page of the tenant's runs: a COUNT, one page of rows and one EXISTS (no N+1)."""
    runs = SyncRun.objects.filter(tenant=request.tenant).order_by("-created_at", "-id")
    per_page = _per_page(request)
    page = Paginator(runs, per_page).get_page(request.GET.get("page"))
    active = SyncRun.objects.filter(
        tenant=request.tenant, status__in=SyncRun.ACTIVE_STATUSES
    ).exists()
    return {
        "page": page,
        "per_page": per_page,
        "per_page_choices": PER_PAGE_CHOICES,
        "any_active": active,
        "connector_name": ConnectSetting.Connector.SENSELINK.label,
    }


@require_GET
@tenant_page
def connect_list(request: HttpRequest) -> HttpResponse:
    setting = connect_setting(request.tenant)
    upcoming = []
    for kind, at in next_runs(setting, timezone.now()).items():
        if at is not None:
            upcoming.append((SyncRun.Kind(kind).label, at))
    upcoming.sort(key=lambda item: item[1])
    context = {
        "setting": setting,
        "summary": schedule_summary(setting),
        "realtime_polled_at": realtime_polled_at(setting),
        "upcoming": upcoming,
        **_log_context(request),
    }
    return render(request, "portal/connect_list.html", context)


@require_GET
@tenant_page
def run_log(request: HttpRequest) -> HttpResponse:
    """The 連携ログ table alone, polled by the list page while a run is in progress."""
    return render(request, "portal/_run_log.html", _log_context(request))


@require_GET
@tenant_page
def run_errors(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(SyncRun, pk=run_id, tenant=request.tenant)
    errors = run.errors.order_by("id").only("id", "run_id", "severity", "message")
    page = Paginator(errors, ERRORS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/run_errors.html",
        {"run": run, "title": describe(run), "page": page},
    )


# --- 連携設定 -----------------------------------------------------------------------------------


@sensitive_post_parameters("kot_access_token", "app_secret")
@require_http_methods(["GET", "POST"])
@tenant_page(admin_only=True)
def connect_settings_new(request: HttpRequest) -> HttpResponse:
    """連携設定 for a tenant that has no setting yet; once saved it lives at its own id."""
    setting = connect_setting(request.tenant)
    if setting is not None:
        return redirect("portal:connect_settings", setting_id=setting.pk)
    return _settings_page(request, ConnectSetting(tenant=request.tenant))


@sensitive_post_parameters("kot_access_token", "app_secret")
@require_http_methods(["GET", "POST"])
@tenant_page(admin_only=True)
def connect_settings(request: HttpRequest, setting_id: int) -> HttpResponse:
    return _settings_page(request, _own_setting(request, setting_id))


@sensitive_variables()
def _settings_page(request: HttpRequest, setting: ConnectSetting) -> HttpResponse:
    checks = None
    groups = None
    if request.method == "POST":
        form = ConnectSettingForm(request.POST, instance=setting, tenant=request.tenant)
        action = request.POST.get("action")
        if action == "test":
            # 接続テスト: the values as typed, nothing saved.
            picked = request.POST.getlist("person_group_pick")
            checks = check_connections(
                **form.connection_values(),
                person_group_ids=",".join(picked)
                if request.POST.get("group_picker")
                else request.POST.get("person_group_ids", ""),
                tenant=request.tenant,
            )
        elif action == "groups":
            # 人員グループを読み込む: SenseLink's group list with the values as typed, to pick from.
            groups = load_person_groups(**form.connection_values())
        elif form.is_valid():
            saved = form.save()
            messages.success(request, _("連携設定を保存しました。"))
            return redirect("portal:connect_settings", setting_id=saved.pk)
        else:
            messages.error(
                request, _("入力内容に誤りがあります。各項目のメッセージをご確認ください。")
            )
    else:
        form = ConnectSettingForm(instance=setting, tenant=request.tenant)
    return render(
        request,
        "portal/connect_settings.html",
        {
            "form": form,
            "setting": setting,
            "checks": checks,
            "groups": groups,
            "chosen_groups": form.chosen_group_ids(),
            "outbound_ip": settings.PORTAL_OUTBOUND_IP,
            "forbidden_hours": "、".join(f"{h}時" for h in forbidden_hours()),
            "preview_form": PreviewForm(initial={"target_date": yesterday()}),
            "kot_divisions": request.tenant.kot_divisions.all()[:50],
            "workday_warning": schedule_wait_warning(setting) if setting.pk else "",
            "push": push.details_for(setting) if setting.pk else None,
        },
    )


@require_GET
@tenant_page(admin_only=True)
def connect_preview(request: HttpRequest, setting_id: int) -> HttpResponse:
    """プレビュー: what a sync would do now, from reads only."""
    setting = _own_setting(request, setting_id)
    form = PreviewForm(request.GET)
    preview = None
    if form.is_valid():
        preview = preview_sync(
            tenant=request.tenant,
            kind=form.cleaned_data["kind"],
            target_date=form.cleaned_data["target_date"],
        )
    return render(
        request,
        "portal/preview.html",
        {
            "setting": setting,
            "form": form,
            "preview": preview,
            "kind_label": SyncRun.Kind(form.cleaned_data["kind"]).label if preview else "",
        },
    )


# --- 手動実行 -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_page(admin_only=True)
def manual_run(request: HttpRequest, setting_id: int) -> HttpResponse:
    setting = _own_setting(request, setting_id)
    # Two forms on one page: the employee form's ids get their own prefix (no two id_kind).
    employee_ids = "employee_%s"
    employee_form = ManualRunForm(initial={"kind": SyncRun.Kind.EMPLOYEE}, auto_id=employee_ids)
    attendance_form = ManualRunForm(
        initial={"kind": SyncRun.Kind.ATTENDANCE, "target_date": yesterday()}
    )
    if request.method == "POST":
        employee = request.POST.get("kind") == SyncRun.Kind.EMPLOYEE
        form = ManualRunForm(request.POST, auto_id=employee_ids if employee else "id_%s")
        if form.is_valid():
            return _request_run(request, form.cleaned_data)
        if employee:
            employee_form = form
        else:
            attendance_form = form
    return render(
        request,
        "portal/manual_run.html",
        {
            "setting": setting,
            "employee_form": employee_form,
            "attendance_form": attendance_form,
        },
    )


def _request_run(request: HttpRequest, data: dict) -> HttpResponse:
    try:
        with transaction.atomic():
            result = request_run(
                tenant=request.tenant,
                kind=data["kind"],
                trigger=SyncRun.Trigger.MANUAL,
                user=request.user,
                target_date=data["target_date"],
            )
    except RunRefused as exc:
        messages.error(request, str(exc))
        return redirect("portal:connect_list")
    if result.created:
        # Queued, not done: nothing is registered in SenseLink or KOT yet.
        accepted = _("%(run)s の実行を受け付けました。結果は連携ログに表示されます。") % {
            "run": describe(result.run)
        }
        messages.success(request, accepted + result.run.message)  # + when it waits, and why
    else:
        messages.warning(request, result.message)
    for notice in result.notices:
        messages.info(request, notice)
    return redirect(reverse("portal:connect_list"))


# --- CSV (連携ログ, エラー詳細) and 変更履歴 -------------------------------------------------


@require_GET
@tenant_page
def runs_csv(request: HttpRequest) -> StreamingHttpResponse:
    """連携ログ as CSV: every run of the tenant, streamed."""
    return exports.csv_response(
        exports.runs_csv(tenant_id=request.tenant.pk),
        exports.runs_filename(request.tenant.slug, timezone.localdate()),
    )


@require_GET
@tenant_page
def run_errors_csv(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    """エラー詳細 of one of the tenant's runs as CSV; another tenant's run is 404."""
    run = get_object_or_404(SyncRun, pk=run_id, tenant=request.tenant)
    return exports.csv_response(exports.errors_csv(run=run), exports.errors_filename(run))


@require_GET
@tenant_page
def history(request: HttpRequest) -> HttpResponse:
    """変更履歴: every change of the tenant's settings and members (secrets as 「変更」)."""
    entries = audit.entries_for_tenant(request.tenant.pk)
    page = Paginator(entries, HISTORY_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "at": entry.timestamp,
            "who": audit.actor_label(entry, tenant_id=request.tenant.pk),
            "what": audit.object_label(entry),
            "action": audit.action_label(entry),
            "changes": audit.describe_changes(entry),
        }
        for entry in page
    ]
    return render(request, "portal/history.html", {"page": page, "rows": rows})
