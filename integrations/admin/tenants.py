"""The tenant admin: the customers' list, their settings, and the buttons on a tenant's page.

The buttons (接続テスト, プッシュ受信URLを再発行, 手動実行) are POST-only views added with
``get_urls`` and wrapped in ``admin_view``, as Django's UserAdmin adds its password change: each
checks its permission, calls one service, logs the change and redirects back with a message.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from ..kinds import KINDS
from ..models import ConnectSetting, KotDivision, SyncRun, Tenant
from ..services import push
from ..services.connection_test import check_connections
from ..services.runs import RunRefused, describe, request_run
from ..services.schedules import schedule_summary
from .connect_settings import ConnectSettingInline
from .display import jst, jst_today, runs_url, secret_status, status_badge, without_fields
from .filters import LastResultFilter, PushStoppedFilter
from .forms import AttendanceRunForm, TenantForm, TenantSecretsForm
from .mixins import ReadOnlyAdminMixin, TriggersRunsMixin

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class TenantRow(TypedDict):
    """What get_queryset adds to each tenant (the list's columns, the buttons' settings)."""

    last_employee_status: str | None
    last_employee_at: datetime | None
    last_attendance_status: str | None
    last_attendance_at: datetime | None
    senselink_settings: list[ConnectSetting]


# The admin's secret inputs (the inline's carry its prefix): never in an error report.
SECRET_POST_FIELDS = sensitive_post_parameters(
    "kot_access_token", "connect_settings-0-app_secret", "connect_settings-__prefix__-app_secret"
)


class KotDivisionInline(ReadOnlyAdminMixin, admin.TabularInline[KotDivision, Tenant]):
    """KOT's divisions and their 日付変更時刻 as last read (by a run or the connection test)."""

    model = KotDivision
    readonly_fields = ("code", "name", "day_border", "refreshed_at")
    fields = readonly_fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("KING OF TIMEの所属と日付変更時刻(勤怠連携・接続テストで取得)")


@admin.register(Tenant)
class TenantAdmin(TriggersRunsMixin, admin.ModelAdmin[Tenant]):
    form = TenantForm
    inlines = [ConnectSettingInline, KotDivisionInline]
    list_display = [
        "name",
        "slug",
        "subscription_status",
        "schedule",
        "last_employee_run",
        "last_attendance_run",
    ]
    list_filter = ["subscription_status", LastResultFilter, PushStoppedFilter]
    search_fields = ["name", "slug"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["name", "slug", "subscription_status", "created_at"]}),
        (
            _("KING OF TIMEの情報"),
            {"fields": ["kot_access_token_status", "kot_access_token"]},
        ),
        (_("通知"), {"fields": ["contact_email", "notify_contact", "notify_support"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        # The list's last runs are subqueries and the settings one prefetch: a fixed number of
        # queries however many tenants there are.
        latest = {
            kind: SyncRun.objects.filter(tenant=OuterRef("pk"), kind=kind)
            .order_by("-created_at", "-id")
            .annotate(at=Coalesce("started_at", "created_at"))
            for kind in SyncRun.Kind
        }
        employee, attendance = latest[SyncRun.Kind.EMPLOYEE], latest[SyncRun.Kind.ATTENDANCE]
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_employee_status=Subquery(employee.values("status")[:1]),
                last_employee_at=Subquery(employee.values("at")[:1]),
                last_attendance_status=Subquery(attendance.values("status")[:1]),
                last_attendance_at=Subquery(attendance.values("at")[:1]),
            )
            .prefetch_related(
                Prefetch(
                    "connect_settings",
                    queryset=ConnectSetting.objects.filter(
                        connector=ConnectSetting.Connector.SENSELINK
                    ).defer("app_secret"),  # the list never needs it
                    to_attr="senselink_settings",
                )
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        fields = ["created_at", "kot_access_token_status"]
        if not request.user.is_superuser:
            fields.append("subscription_status")
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if request.user.is_superuser:
            return self.fieldsets
        return without_fields(self.fieldsets, {"kot_access_token"})

    def get_form(
        self, request: HttpRequest, obj: Tenant | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if request.user.is_superuser:
            # The admin would also exclude the base form's Meta.exclude (the secret).
            kwargs["form"] = TenantSecretsForm
            kwargs["exclude"] = list(self.get_readonly_fields(request, obj))
        return super().get_form(request, obj, change, **kwargs)

    # --- The list's columns ---

    @admin.display(description=_("KING OF TIME アクセストークン(登録状況)"))
    def kot_access_token_status(self, obj: Tenant | None) -> str:
        return secret_status(obj.kot_access_token if obj else "")

    @admin.display(description=_("スケジュール"))
    def schedule(self, obj: WithAnnotations[Tenant, TenantRow]) -> str:
        settings = obj.senselink_settings
        return schedule_summary(settings[0] if settings else None)

    def _last_run(
        self, obj: Tenant, kind: str, status: str | None, at: datetime | None
    ) -> SafeString | None:
        if not status:
            return None
        return format_html(
            '<a href="{}">{}</a> {}',
            runs_url(tenant=obj.pk, kind=kind),
            status_badge(status),
            jst(at),
        )

    @admin.display(description=_("最新の社員情報連携"), ordering="last_employee_at")
    def last_employee_run(self, obj: WithAnnotations[Tenant, TenantRow]) -> SafeString | None:
        return self._last_run(
            obj, SyncRun.Kind.EMPLOYEE, obj.last_employee_status, obj.last_employee_at
        )

    @admin.display(description=_("最新の勤怠連携"), ordering="last_attendance_at")
    def last_attendance_run(self, obj: WithAnnotations[Tenant, TenantRow]) -> SafeString | None:
        return self._last_run(
            obj, SyncRun.Kind.ATTENDANCE, obj.last_attendance_status, obj.last_attendance_at
        )

    # --- Object buttons ---

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/connection-test/",
                self.admin_site.admin_view(self.connection_test_view),
                name="integrations_tenant_connection_test",
            ),
            path(
                "<path:object_id>/push-token/",
                self.admin_site.admin_view(self.push_token_view),
                name="integrations_tenant_push_token",
            ),
            path(
                "<path:object_id>/run/<str:kind>/",
                self.admin_site.admin_view(self.run_view),
                name="integrations_tenant_run",
            ),
            *super().get_urls(),
        ]

    @method_decorator(SECRET_POST_FIELDS)
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_trigger_runs": self.has_trigger_permission(request),
            "default_target_date": (jst_today() - timedelta(days=1)).isoformat(),
            "runs_url": runs_url(tenant=unquote(object_id)),
            "history_url": reverse(f"{self.admin_site.name}:auditlog_logentry_changelist")
            + "?"
            + urlencode({"tenant": unquote(object_id)}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _button_tenant(self, request: HttpRequest, object_id: str) -> Any:
        """The tenant (with get_queryset's TenantRow) a run button is pressed on."""
        if not (
            self.has_trigger_permission(request) and self.has_view_or_change_permission(request)
        ):
            raise PermissionDenied
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404
        return tenant

    def _back(self, tenant: Tenant) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:integrations_tenant_change", args=[tenant.pk])
        )

    @method_decorator(require_POST)
    @method_decorator(sensitive_variables())
    def connection_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        tenant: WithAnnotations[Tenant, TenantRow] = self._button_tenant(request, object_id)
        setting = tenant.senselink_settings[0] if tenant.senselink_settings else None
        results = check_connections(
            token=tenant.kot_access_token,
            url=setting.senselink_url if setting else "",
            app_key=setting.app_key if setting else "",
            app_secret=setting.app_secret if setting else "",
            person_group_ids=setting.person_group_ids if setting else None,
            tenant=tenant,
        )
        levels = {"warning": messages.WARNING, "info": messages.INFO}
        for result in results:
            self.message_user(
                request,
                f"{result.service}: {result.message}",
                levels.get(result.level) or (messages.SUCCESS if result.ok else messages.ERROR),
            )
        summary = ", ".join(f"{r.service} {'OK' if r.ok else 'NG'}" for r in results)
        self.log_change(request, tenant, f"接続テスト ({summary})")
        return self._back(tenant)

    @method_decorator(require_POST)
    def push_token_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A new SenseLink push receiving path; the old one answers 404 from now on."""
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        setting = tenant.connect_settings.filter(
            connector=ConnectSetting.Connector.SENSELINK
        ).first()
        if setting is None:
            raise Http404
        push.regenerate_token(setting=setting)
        self.log_change(request, tenant, "プッシュ受信URLを再発行")  # the token is not logged
        self.message_user(
            request,
            _(
                "プッシュ受信URLを再発行しました。新しいURLをJCVに申請するようお客様にご案内ください。"
            ),
            messages.SUCCESS,
        )
        return self._back(tenant)

    @method_decorator(require_POST)
    def run_view(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        if kind not in SyncRun.Kind.values:
            raise Http404
        tenant = self._button_tenant(request, object_id)
        target_date = None
        if KINDS[kind].dated:
            form = AttendanceRunForm(request.POST)
            if not form.is_valid():
                problems = [
                    str(error.message)
                    for error in form.errors.as_data().get("target_date", [])
                    if error.code == "date_out_of_range"
                ]
                self.message_user(
                    request,
                    " ".join(["勤怠連携の対象日を正しく入力してください。", *problems]),
                    messages.ERROR,
                )
                return self._back(tenant)
            target_date = form.cleaned_data["target_date"]
        try:
            result = request_run(
                tenant=tenant,
                kind=kind,
                trigger=SyncRun.Trigger.MANUAL,
                user=request.user,
                target_date=target_date,
            )
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(tenant)
        if result.created:
            self.log_change(request, tenant, f"{describe(result.run)} を手動実行")
        for notice in result.notices:
            self.message_user(request, notice, messages.WARNING)
        run_url = reverse(
            f"{self.admin_site.name}:integrations_syncrun_change", args=[result.run.pk]
        )
        if result.created:  # queued, not done: nothing is registered yet
            text = format_html(
                '<a href="{}">{}</a> の実行を受け付けました。{}',
                run_url,
                describe(result.run),
                result.run.message,
            )
        else:
            text = format_html('<a href="{}">{}</a>', run_url, result.message)
        self.message_user(request, text, messages.SUCCESS if result.created else messages.WARNING)
        return self._back(tenant)
