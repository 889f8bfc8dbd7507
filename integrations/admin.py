"""The support desk's admin: customers, their settings, runs, errors and reruns.

Who may do what (the "サポート" group is made by ``manage.py setup_support_group``):
- viewing needs the usual view permissions;
- triggering runs (the tenant page's buttons, the rerun action) needs ``integrations.add_syncrun``,
  which this project uses as "may trigger runs": nobody adds run rows by hand (the run admin
  is read-only), so the permission has no other meaning;
- secrets and the subscription status are changed by superusers only.

Secrets are write-only here: pages show whether one is set (and its last 4 characters), a
separate input replaces it, an empty input keeps it, and history only names the field.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from .admin_filters import (
    PROBLEM_STATUSES,
    ErrorTenantFilter,
    LastResultFilter,
    PushStoppedFilter,
    TenantFilter,
)
from .forms import WriteOnlySecretsMixin, secret_field
from .kinds import KINDS
from .models import (
    ConnectSetting,
    KotDivision,
    PunchLedger,
    PushReceiver,
    SyncError,
    SyncRun,
    Tenant,
    TenantMembership,
    TermsConsent,
)
from .services import push
from .services.connection_test import check_connections
from .services.poll_state import polled_at as realtime_polled_at
from .services.reruns import rerun
from .services.runs import RunRefused, describe, request_run
from .services.schedules import schedule_summary
from .validators import validate_target_date

JST = ZoneInfo("Asia/Tokyo")
TRIGGER_PERMISSION = "integrations.add_syncrun"
FAILED_RUNS_LIMIT = 500
REASONS_SHOWN = 5

STATUS_COLOURS = {
    SyncRun.Status.SUCCESS: "#2e7d32",
    SyncRun.Status.PARTIAL: "#e08a00",
    SyncRun.Status.FAILURE: "#c62828",
    SyncRun.Status.RUNNING: "#1565c0",
    SyncRun.Status.COLLECTING: "#1565c0",
    SyncRun.Status.QUEUED: "#757575",
    SyncRun.Status.WAITING: "#757575",
}


def can_trigger_runs(user) -> bool:
    return user.has_perm(TRIGGER_PERMISSION)


def status_badge(status: str):
    if not status:
        return None
    return format_html(
        '<span class="run-status run-status-{}" style="display:inline-block; padding:1px 6px; '
        'border-radius:3px; color:#fff; font-weight:bold; background:{}">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#757575"),
        SyncRun.Status(status).label,
    )


def jst(value: datetime | None) -> str | None:
    return f"{value.astimezone(JST):%Y-%m-%d %H:%M}" if value else None


def jst_today() -> date:
    return timezone.now().astimezone(JST).date()


def format_duration(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}時間{minutes}分{seconds}秒"
    if minutes:
        return f"{minutes}分{seconds}秒"
    return f"{seconds}秒"


def secret_status(value: str) -> str:
    """Whether a secret is set; its last 4 characters only when it is long enough to hide."""
    if not value:
        return "未設定"
    if len(value) > 8:
        return f"設定済み (末尾 {value[-4:]})"
    return "設定済み"


def runs_url(**params) -> str:
    url = reverse("admin:integrations_syncrun_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def without_fields(fieldsets, names: set[str]):
    return [
        (title, {**options, "fields": [f for f in options["fields"] if f not in names]})
        for title, options in fieldsets
    ]


# --- Write-only secrets -----------------------------------------------------------------------

SECRET_HELP = _(
    "置き換える場合のみ新しい値を入力してください。空欄のまま保存すると登録済みの値を保持します。"
)


# The admin's secret inputs (the inline's carry its prefix): never in an error report.
SECRET_POST_FIELDS = sensitive_post_parameters(
    "kot_access_token", "connect_settings-0-app_secret", "connect_settings-__prefix__-app_secret"
)


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        # Excluded whatever fields the admin passes: the stored secret is never a form field.
        exclude = ["kot_access_token"]  # noqa: DJ006


class TenantSecretsForm(WriteOnlySecretsMixin, forms.ModelForm):
    """The superuser's form: may replace the KOT token; an empty input keeps the stored one."""

    secret_fields = ("kot_access_token",)
    # Labelled like the model field, so the history says "KING OF TIME アクセストークン を変更".
    kot_access_token = secret_field(_("KING OF TIME アクセストークン"), help_text=SECRET_HELP)

    class Meta:
        model = Tenant
        fields = ["kot_access_token"]  # the admin adds its fieldsets' fields


class ConnectSettingForm(forms.ModelForm):
    class Meta:
        model = ConnectSetting
        exclude = ["app_secret"]  # noqa: DJ006


class ConnectSettingSecretsForm(WriteOnlySecretsMixin, forms.ModelForm):
    """The superuser's form: may replace the App Secret; an empty input keeps the stored one."""

    secret_fields = ("app_secret",)
    app_secret = secret_field(_("Appシークレット"), help_text=SECRET_HELP)

    class Meta:
        model = ConnectSetting
        fields = ["app_secret"]  # the admin adds its fieldsets' fields


class AttendanceRunForm(forms.Form):
    target_date = forms.DateField(label=_("対象日"), validators=[validate_target_date])


# --- Tenants ----------------------------------------------------------------------------------


class ConnectSettingInline(admin.StackedInline):
    model = ConnectSetting
    form = ConnectSettingForm
    extra = 1
    max_num = 1  # one connector (SenseLink) today
    can_delete = False
    readonly_fields = [
        "app_secret_status",
        "realtime_polled",
        "push_url",
        "push_state",
        "updated_at",
    ]
    fieldsets = [
        (
            _("SenseLinkの情報"),
            {"fields": ["senselink_url", "app_key", "app_secret_status", "app_secret"]},
        ),
        (
            _("勤怠連携 設定"),
            {
                "fields": [
                    "attendance_mode",
                    "attendance_trigger",
                    "attendance_hour",
                    "attendance_target_day",
                    "attendance_paused",
                    "day_change_time",
                ]
            },
        ),
        (
            _("リアルタイム出勤連携"),
            {
                "fields": ["realtime_clock_in", "realtime_interval_minutes", "realtime_polled"],
                "description": _("出勤は数分以内に、退勤は翌日の勤怠連携で打刻されます"),
            },
        ),
        (
            _("社員情報連携 設定"),
            {
                "fields": [
                    "employee_trigger",
                    "employee_interval",
                    "employee_day",
                    "employee_hour",
                    "employee_paused",
                    "resigned_policy",
                    "deletion_guard_count",
                    "deletion_guard_percent",
                ]
            },
        ),
        (
            _("SenseLinkの人員"),
            {
                "fields": [
                    "person_group_ids",
                    "creation_guard_count",
                    "creation_guard_percent",
                    "update_persons",
                ],
                "description": _(
                    "「既存の人員を更新する」はサポートだけが設定します(テナントの画面には"
                    "状態だけを表示します)。更新で送っていない項目(顔写真など)が変わった場合は"
                    "連携が自動でオフにします。"
                ),
            },
        ),
        (
            _("プッシュ受信(SenseLinkイベントサブスクリプション)"),
            {
                "fields": ["push_url", "push_state"],
                "description": _(
                    "受信URLは秘密です(SenseLinkは受信側の認証に対応していません)。漏れた場合は"
                    "上の[プッシュ受信URLを再発行]で作り直し、新しいURLをJCVに申請してもらいます。"
                ),
            },
        ),
        (None, {"fields": ["updated_at"]}),
    ]

    @admin.display(description=_("最終確認日時"))
    def realtime_polled(self, obj):
        polled = realtime_polled_at(obj) if obj and obj.pk else None
        if polled is None:
            return "-"
        return f"{timezone.localtime(polled):%Y-%m-%d %H:%M:%S}"

    @admin.display(description=_("受信URL"))
    def push_url(self, obj):
        return push.push_url(obj) if obj and obj.pk else "-"

    @admin.display(description=_("状態"))
    def push_state(self, obj):
        receiver = PushReceiver.objects.filter(setting_id=obj.pk).first() if obj else None
        if receiver is None:
            return _("未受信")
        if receiver.stopped_at:
            return format_html(
                "<strong>{}</strong> {} ({}: {}) {}",
                _("停止中"),
                jst(receiver.stopped_at),
                _("最新の受信"),
                jst(receiver.last_push_at),
                push.RESTORE_HOWTO,
            )
        state = format_html(
            "{} ({}: {}, {}件)",
            _("受信中"),
            _("最新の受信"),
            jst(receiver.last_push_at),
            receiver.push_count,
        )
        # Pushes answered 200 but not stored: a broken body, or beyond the per-minute bound.
        for label, count, last in (
            (_("読めないプッシュ"), receiver.unusable_count, receiver.last_unusable_at),
            (_("上限超過"), receiver.unstored_count, receiver.last_unstored_at),
        ):
            if count:
                state = format_html(
                    "{}<br>{}: {}件 ({}: {})", state, label, count, _("最新"), jst(last)
                )
        return state

    @admin.display(description=_("Appシークレット(登録状況)"))
    def app_secret_status(self, obj):
        return secret_status(obj.app_secret if obj else "")

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return self.fieldsets
        return without_fields(self.fieldsets, {"app_secret"})

    def get_readonly_fields(self, request, obj=None):
        # Where a tenant's data goes (the URL) and the secrets: superusers only. The サポート
        # group looks and presses buttons; it cannot send data or signatures elsewhere.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "senselink_url"]

    def get_formset(self, request, obj=None, **kwargs):
        if request.user.is_superuser:
            # The admin would also exclude the base form's Meta.exclude (the secret).
            kwargs["form"] = ConnectSettingSecretsForm
            kwargs["exclude"] = list(self.get_readonly_fields(request, obj))
        return super().get_formset(request, obj, **kwargs)


class KotDivisionInline(admin.TabularInline):
    """KOT's divisions and their 日付変更時刻 as last read (by a run or the connection test)."""

    model = KotDivision
    fields = ["code", "name", "day_border", "refreshed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("KING OF TIMEの所属と日付変更時刻(勤怠連携・接続テストで取得)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
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

    def get_queryset(self, request):
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

    def get_readonly_fields(self, request, obj=None):
        fields = ["created_at", "kot_access_token_status"]
        if not request.user.is_superuser:
            fields.append("subscription_status")
        return fields

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return self.fieldsets
        return without_fields(self.fieldsets, {"kot_access_token"})

    def get_form(self, request, obj=None, **kwargs):
        if request.user.is_superuser:
            # The admin would also exclude the base form's Meta.exclude (the secret).
            kwargs["form"] = TenantSecretsForm
            kwargs["exclude"] = list(self.get_readonly_fields(request, obj))
        return super().get_form(request, obj, **kwargs)

    @admin.display(description=_("KING OF TIME アクセストークン(登録状況)"))
    def kot_access_token_status(self, obj):
        return secret_status(obj.kot_access_token if obj else "")

    @admin.display(description=_("スケジュール"))
    def schedule(self, obj):
        settings = obj.senselink_settings
        return schedule_summary(settings[0] if settings else None)

    def _last_run(self, obj, kind: str, status: str | None, at: datetime | None):
        if not status:
            return None
        return format_html(
            '<a href="{}">{}</a> {}',
            runs_url(tenant=obj.pk, kind=kind),
            status_badge(status),
            jst(at),
        )

    @admin.display(description=_("最新の社員情報連携"), ordering="last_employee_at")
    def last_employee_run(self, obj):
        return self._last_run(
            obj, SyncRun.Kind.EMPLOYEE, obj.last_employee_status, obj.last_employee_at
        )

    @admin.display(description=_("最新の勤怠連携"), ordering="last_attendance_at")
    def last_attendance_run(self, obj):
        return self._last_run(
            obj, SyncRun.Kind.ATTENDANCE, obj.last_attendance_status, obj.last_attendance_at
        )

    # --- Object buttons (as Django's UserAdmin does its password-change view) ---

    def has_trigger_permission(self, request, obj=None) -> bool:
        return can_trigger_runs(request.user)

    def get_urls(self):
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
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_trigger_runs": self.has_trigger_permission(request),
            "default_target_date": (jst_today() - timedelta(days=1)).isoformat(),
            "runs_url": runs_url(tenant=unquote(object_id)),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _button_tenant(self, request, object_id) -> Tenant:
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
    def connection_test_view(self, request, object_id):
        tenant = self._button_tenant(request, object_id)
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
    def push_token_view(self, request, object_id):
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
    def run_view(self, request, object_id, kind):
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
        self.message_user(
            request,
            format_html('<a href="{}">{}</a>', run_url, result.message),
            messages.SUCCESS if result.created else messages.WARNING,
        )
        return self._back(tenant)


# --- Runs and errors (audit rows: read-only) ---------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows. A COUNT(*) over years of runs costs more than the page
    itself; past the cap the list says "10000" and the filters narrow it down."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap].count()


class ReadOnlyAdminMixin:
    """Audit rows: nobody adds or changes them; superusers may delete (so tenants can be)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class SyncErrorInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SyncError
    fields = ["employee_code", "target_date", "punch", "severity", "code", "message", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "tenant_link",
        "kind",
        "trigger",
        "target_date",
        "status_badge",
        "started",
        "duration_display",
        "counters",
        "triggered_by_label",
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

    def get_search_results(self, request, queryset, search_term):
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
    def tenant_link(self, obj):
        url = reverse("admin:integrations_tenant_change", args=[obj.tenant_id])
        return format_html('<a href="{}">{}</a>', url, obj.tenant.name)

    @admin.display(description=_("結果"), ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status)

    @admin.display(description=_("開始日時"), ordering="started_at")
    def started(self, obj):
        return jst(obj.started_at)

    @admin.display(description=_("処理時間"))
    def duration_display(self, obj):
        return format_duration(obj.duration)

    @admin.display(description=_("登録/更新/削除/スキップ/失敗"))
    def counters(self, obj):
        text = (
            f"{obj.created_count}/{obj.updated_count}/{obj.deleted_count}/"
            f"{obj.skipped_count}/{obj.failed_count}"
        )
        if obj.warning_count:
            text += f" (警告{obj.warning_count})"
        return text

    def has_trigger_permission(self, request) -> bool:
        return can_trigger_runs(request.user)

    @admin.action(description=_("失敗した勤怠連携を再実行"), permissions=["trigger"])
    def rerun_failed_attendance(self, request, queryset):
        registered, skipped = [], []
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
            shown = " ".join(registered[:REASONS_SHOWN])
            if len(registered) > REASONS_SHOWN:
                shown += f" ほか{len(registered) - REASONS_SHOWN}件。"
            self.message_user(request, f"再実行 {len(registered)}件: {shown}", messages.SUCCESS)
        if skipped:
            reasons = " ".join(skipped[:REASONS_SHOWN])
            if len(skipped) > REASONS_SHOWN:
                reasons += f" ほか{len(skipped) - REASONS_SHOWN}件。"
            self.message_user(
                request, f"{len(skipped)}件は再実行しませんでした。{reasons}", messages.WARNING
            )

    # --- Today's failures across all tenants ---

    def get_urls(self):
        return [
            path(
                "failed/",
                self.admin_site.admin_view(self.failed_runs_view),
                name="integrations_syncrun_failed",
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
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

    @method_decorator(require_POST)
    def allow_mass_create_view(self, request, object_id):
        """この実行のみ上限を超えて登録: a new employee run allowed past the creation guard once."""
        if not (self.has_trigger_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        back = HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:integrations_syncrun_change", args=[run.pk])
        )
        if not self.stopped_by_creation_guard(run):
            self.message_user(
                request,
                f"{describe(run)} は一括登録の上限で停止した社員情報連携ではありません。",
                messages.ERROR,
            )
            return back
        try:
            result = request_run(
                tenant=run.tenant,
                kind=SyncRun.Kind.EMPLOYEE,
                trigger=SyncRun.Trigger.MANUAL,
                user=request.user,
                allow_mass_create=True,
            )
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return back
        self.log_change(
            request, run, f"{describe(result.run)} を一括登録の上限を超えて登録できるよう実行"
        )
        run_url = reverse(
            f"{self.admin_site.name}:integrations_syncrun_change", args=[result.run.pk]
        )
        self.message_user(
            request,
            format_html(
                '<a href="{}">{}</a> この実行に限り、一括登録の上限を超えて登録します。',
                run_url,
                result.message,
            ),
            messages.SUCCESS if result.created else messages.WARNING,
        )
        return HttpResponseRedirect(run_url)

    def failed_runs_view(self, request):
        """FAILURE and PARTIAL runs registered on one JST day (today unless ?date=)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = forms.DateField(required=False, validators=[validate_target_date])
        try:
            day = form.clean(request.GET.get("date")) or jst_today()
        except forms.ValidationError as exc:
            # A typed or crafted ?date= (9999-12-31, "x") is said, and today is shown instead.
            self.message_user(
                request, " ".join(["日付を正しく指定してください。", *exc.messages]), messages.ERROR
            )
            day = jst_today()
        start = datetime.combine(day, time.min, tzinfo=JST)
        first_error = SyncError.objects.filter(run=OuterRef("pk")).order_by("id")
        runs = list(
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
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{day:%Y年%m月%d日} に失敗した連携",
            "runs": runs,
            "limit": FAILED_RUNS_LIMIT,
            "truncated": len(runs) == FAILED_RUNS_LIMIT,
            "tenant_count": len({run.tenant_id for run in runs}),
            "previous_day": (day - timedelta(days=1)).isoformat(),
            "next_day": (day + timedelta(days=1)).isoformat() if day < jst_today() else None,
        }
        return TemplateResponse(request, "admin/integrations/syncrun/failed_runs.html", context)


@admin.register(SyncError)
class SyncErrorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created",
        "run_link",
        "tenant_name",
        "employee_code",
        "target_date",
        "punch",
        "severity",
        "code",
        "message",
    ]
    list_filter = [
        "severity",
        "code",
        ErrorTenantFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=employee_code"]
    search_help_text = _("従業員コード(完全一致)で検索できます。")
    list_select_related = ["run__tenant"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100

    @admin.display(description=_("発生日時"), ordering="created_at")
    def created(self, obj):
        return jst(obj.created_at)

    @admin.display(description=_("連携ログ"), ordering="run")
    def run_link(self, obj):
        url = reverse("admin:integrations_syncrun_change", args=[obj.run_id])
        return format_html('<a href="{}">{}</a>', url, describe(obj.run))

    @admin.display(description=_("テナント"), ordering="run__tenant__name")
    def tenant_name(self, obj):
        return obj.run.tenant.name


# --- Tenant users and their consents -----------------------------------------------------------


@admin.register(TenantMembership)
class TenantMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant"]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["user"]


@admin.register(TermsConsent)
class TermsConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "tenant", "version", "accepted_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["version"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]


@admin.register(PunchLedger)
class PunchLedgerAdmin(admin.ModelAdmin):
    """The punch ledger (read-only): what was sent to KOT, and what is still to be confirmed."""

    list_display = [
        "tenant",
        "employee_code",
        "working_date",
        "punch",
        "state",
        "punch_time",
        "sent_at",
        "settled_at",
        "run",
    ]
    list_filter = ["state", "punch", TenantFilter]
    list_select_related = ["tenant", "run"]
    search_fields = ["employee_code", "tenant__slug"]
    date_hierarchy = "working_date"
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
