"""The run admin (連携ログ): read-only audit rows, the rerun action and the creation guard's
override button; its page of one day's failures is failed_runs.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from ..models import SyncError, SyncRun, Tenant
from ..services import exports
from ..services.preview import preview_sync
from ..services.reruns import rerun
from ..services.runs import RunRefused, describe, request_run
from .display import EMPTY, CappedCountPaginator, format_duration, jst, jst_today, status_badge
from .failed_runs import failed_runs_page
from .filters import TenantFilter
from .mixins import AppendOnlyAdminMixin, TriggersRunsMixin

REASONS_SHOWN = 5
# The confirmation of the creation guard's override lists this many of the persons to register.
MASS_CREATE_LINES = 20


def _first_few(texts: list[str]) -> str:
    shown = " ".join(texts[:REASONS_SHOWN])
    if len(texts) > REASONS_SHOWN:
        shown += f" ほか{len(texts) - REASONS_SHOWN}件。"
    return shown


class SyncErrorInline(AppendOnlyAdminMixin, admin.TabularInline[SyncError, SyncRun]):
    model = SyncError
    readonly_fields = (
        "employee_code",
        "target_date",
        "punch",
        "severity",
        "code",
        "message",
        "created_at",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False


@admin.register(SyncRun)
class SyncRunAdmin(AppendOnlyAdminMixin, TriggersRunsMixin, admin.ModelAdmin[SyncRun]):
    # Fits a 1280 px screen beside the filters: the kind's cell carries how it was started and
    # its target date, and no header or value is broken inside a word (change_list.html).
    list_display = [
        "id",
        "tenant_link",
        "kind_cell",
        "status_badge",
        "started",
        "duration_display",
        "counters",
        "who",
    ]
    list_filter = [
        "status",
        "kind",
        "trigger",
        TenantFilter,
        ("created_at", admin.DateFieldListFilter),
        ("target_date", admin.DateFieldListFilter),
    ]
    search_fields = ["tenant__name", "tenant__slug"]
    search_help_text = _("会社名・スラッグ、従業員コード(完全一致)、#連携ログ番号で検索できます。")
    list_select_related = ["tenant"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = ["rerun_failed_attendance"]
    inlines = [SyncErrorInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "tenant",
                    "kind",
                    "trigger",
                    "status_badge",
                    "error_type",
                    "message",
                    "target_date",
                    "rerun_of",
                    "triggered_by",
                    "triggered_by_label",
                ]
            },
        ),
        (
            _("時刻"),
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "not_before",
                    "attempt",
                ]
            },
        ),
        (
            _("件数"),
            {
                "fields": [
                    "created_count",
                    "updated_count",
                    "deleted_count",
                    "skipped_count",
                    "failed_count",
                    "warning_count",
                    "not_updated_count",
                    "allow_mass_create",
                ]
            },
        ),
    ]
    readonly_fields = ["status_badge", "duration_display"]
    change_form_template = "admin/integrations/syncrun/change_form.html"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SyncRun], search_term: str
    ) -> tuple[QuerySet[SyncRun], bool]:
        # Tenant name or slug, an employee code through the run's errors (Exists: one row per
        # run however many of its errors match), or "#12" for a run id.
        term = search_term.strip()
        if not term:
            return queryset, False
        by_error = SyncError.objects.filter(run=OuterRef("pk"), employee_code=term)
        condition = (
            Q(tenant__name__icontains=term) | Q(tenant__slug__icontains=term) | Q(Exists(by_error))
        )
        number = term.removeprefix("#")
        # ASCII digits only ("²".isdigit() is true but int() refuses it), and within a bigint.
        if number.isascii() and number.isdigit() and len(number) <= 18:
            condition |= Q(pk=int(number))
        return queryset.filter(condition), False

    @admin.display(description=_("テナント"), ordering="tenant__name")
    def tenant_link(self, obj: SyncRun) -> SafeString:
        url = reverse("admin:integrations_tenant_change", args=[obj.tenant_id])
        return format_html('<a href="{}">{}</a>', url, obj.tenant.name)

    @admin.display(description=_("種別"), ordering="kind")
    def kind_cell(self, obj: SyncRun) -> SafeString:
        details = [obj.get_trigger_display()]
        if obj.target_date:
            details.append(f"対象日 {obj.target_date:%Y年%m月%d日}")
        return format_html("{}<br><small>{}</small>", obj.get_kind_display(), " ".join(details))

    @admin.display(description=_("実行者"), ordering="triggered_by_label")
    def who(self, obj: SyncRun) -> str:
        return obj.triggered_by_label or EMPTY

    @admin.display(description=_("結果"), ordering="status")
    def status_badge(self, obj: SyncRun) -> SafeString | None:
        return status_badge(obj.status)

    @admin.display(description=_("開始日時"), ordering="started_at")
    def started(self, obj: SyncRun) -> str:
        return jst(obj.started_at)

    @admin.display(description=_("処理時間"))
    def duration_display(self, obj: SyncRun) -> str:
        return format_duration(obj.duration)

    @admin.display(description=_("登録/更新/削除/スキップ/失敗"))
    def counters(self, obj: SyncRun) -> str:
        text = (
            f"{obj.created_count}/{obj.updated_count}/{obj.deleted_count}/"
            f"{obj.skipped_count}/{obj.failed_count}"
        )
        if obj.warning_count:
            text += f" (警告{obj.warning_count})"
        return text

    @admin.action(description=_("失敗した勤怠連携を再実行"), permissions=["trigger"])
    def rerun_failed_attendance(self, request: HttpRequest, queryset: QuerySet[SyncRun]) -> None:
        registered: list[str] = []
        skipped: list[str] = []
        for run in queryset.select_related("tenant"):
            try:
                result = rerun(run=run, user=request.user)
            except RunRefused as exc:
                skipped.append(str(exc))
                continue
            registered.append(result.message)
            if result.created:
                self.log_change(request, run, f"{describe(result.run)} で再実行")
        if registered:
            shown = _first_few(registered)
            self.message_user(request, f"再実行 {len(registered)}件: {shown}", messages.SUCCESS)
        if skipped:
            reasons = _first_few(skipped)
            self.message_user(
                request, f"{len(skipped)}件は再実行しませんでした。{reasons}", messages.WARNING
            )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(  # 本日の失敗
                "failed/",
                self.admin_site.admin_view(self.failed_runs_view),
                name="integrations_syncrun_failed",
            ),
            path(  # CSV downloads (reads: GET, like the pages they export)
                "tenant/<int:tenant_id>/export.csv",
                self.admin_site.admin_view(self.runs_csv_view),
                name="integrations_syncrun_export",
            ),
            path(
                "<path:object_id>/errors.csv",
                self.admin_site.admin_view(self.errors_csv_view),
                name="integrations_syncrun_errors_csv",
            ),
            path(
                "<path:object_id>/allow-mass-create/",
                self.admin_site.admin_view(self.allow_mass_create_view),
                name="integrations_syncrun_allow_mass_create",
            ),
            *super().get_urls(),
        ]

    # --- The creation guard's override (a button on a run the guard stopped) ---

    @staticmethod
    def stopped_by_creation_guard(run: SyncRun) -> bool:
        return (
            run.kind == SyncRun.Kind.EMPLOYEE
            and run.status == SyncRun.Status.FAILURE
            and run.errors.filter(code="creation_guard").exists()
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        run = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "can_allow_mass_create": bool(
                run is not None
                and self.has_trigger_permission(request)
                and self.stopped_by_creation_guard(run)
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @method_decorator(require_http_methods(["GET", "POST"]))
    def allow_mass_create_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """この実行のみ上限を超えて登録: a confirmation page (GET) with how many persons the new
        run would register now, then (POST) a new employee run allowed past the creation guard
        once, linked to the stopped run (``rerun_of``)."""
        if not (self.has_trigger_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        change_url = f"{self.admin_site.name}:integrations_syncrun_change"
        back = HttpResponseRedirect(reverse(change_url, args=[run.pk]))
        if not self.stopped_by_creation_guard(run):
            self.message_user(
                request,
                f"{describe(run)} は一括登録の上限で停止した社員情報連携ではありません。",
                messages.ERROR,
            )
            return back
        if request.method == "GET":
            return self._confirm_mass_create(request, run)
        try:
            result = request_run(
                tenant=run.tenant,
                kind=SyncRun.Kind.EMPLOYEE,
                trigger=SyncRun.Trigger.MANUAL,
                user=request.user,
                rerun_of=run,
                allow_mass_create=True,
            )
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return back
        self.log_change(
            request, run, f"{describe(result.run)} を一括登録の上限を超えて登録できるよう実行"
        )
        run_url = reverse(change_url, args=[result.run.pk])
        if result.created:
            text = format_html(
                '<a href="{}">{}</a> の実行を受け付けました({} の再実行)。'
                "この実行に限り、一括登録の上限を超えて登録します。{}",
                run_url,
                describe(result.run),
                describe(run),
                result.run.message,
            )
        else:
            text = format_html('<a href="{}">{}</a>', run_url, result.message)
        self.message_user(request, text, messages.SUCCESS if result.created else messages.WARNING)
        return HttpResponseRedirect(run_url)

    def _confirm_mass_create(self, request: HttpRequest, run: SyncRun) -> HttpResponse:
        """What the override would do now (the preview: reads only), and the button to do it."""
        preview = preview_sync(tenant=run.tenant, kind=SyncRun.Kind.EMPLOYEE)
        creates = [line for line in preview.lines if line.startswith("登録: ")]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"一括登録の上限を超えて登録: {describe(run)}",
            "run": run,
            "preview": preview,
            "creates": creates[:MASS_CREATE_LINES],
            "more": max(0, preview.counts.get("create", 0) - MASS_CREATE_LINES),
        }
        return TemplateResponse(
            request, "admin/integrations/syncrun/allow_mass_create.html", context
        )

    def failed_runs_view(self, request: HttpRequest) -> HttpResponse:
        return failed_runs_page(self, request)

    # --- CSV (the tenant pages' downloads, for support) ---

    def runs_csv_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """A tenant's 連携ログ as CSV (UTF-8 with a BOM, streamed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        tenant = Tenant.objects.filter(pk=tenant_id).only("pk", "slug").first()
        if tenant is None:
            raise Http404
        return exports.csv_response(
            exports.runs_csv(tenant_id=tenant.pk),
            exports.runs_filename(tenant.slug, jst_today()),
        )

    def errors_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One run's エラー詳細 as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        return exports.csv_response(exports.errors_csv(run=run), exports.errors_filename(run))
