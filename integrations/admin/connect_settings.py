"""A tenant's SenseLink settings, edited inline on the tenant page (its fields in the groups of
integrations/forms.py, which the tenant settings page follows too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..forms import CONNECT_SETTING_GROUPS
from ..models import ConnectSetting, PushReceiver, Tenant
from ..services import push
from ..services.poll_state import polled_at as realtime_polled_at
from .display import jst, secret_status, without_fields
from .forms import ConnectSettingForm, ConnectSettingSecretsForm

if TYPE_CHECKING:
    from django_stubs_ext import FieldOpts, StrOrPromise


def _fieldset(
    group: str, *extra: str, description: StrOrPromise = ""
) -> tuple[StrOrPromise, FieldOpts]:
    """One of the shared groups as an admin fieldset: the App Secret's status just before its
    input, then ``extra`` (read-only displays)."""
    fields: list[str] = []
    for name in CONNECT_SETTING_GROUPS[group].fields:
        if name == "app_secret":
            fields.append("app_secret_status")
        fields.append(name)
    options: FieldOpts = {"fields": [*fields, *extra]}
    if description:
        options["description"] = description
    return (CONNECT_SETTING_GROUPS[group].title, options)


class ConnectSettingInline(admin.StackedInline[ConnectSetting, Tenant]):
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
        _fieldset("senselink"),
        _fieldset("attendance"),
        _fieldset(
            "realtime",
            "realtime_polled",
            description=_("出勤は数分以内に、退勤は翌日の勤怠連携で打刻されます"),
        ),
        _fieldset("employee"),
        _fieldset(
            "persons",
            description=_(
                "「既存の人員を更新する」はサポートだけが設定します(テナントの画面には"
                "状態だけを表示します)。更新で送っていない項目(顔写真など)が変わった場合は"
                "連携が自動でオフにします。"
            ),
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
    def realtime_polled(self, obj: ConnectSetting | None) -> str:
        polled = realtime_polled_at(obj) if obj and obj.pk else None
        if polled is None:
            return "-"
        return f"{timezone.localtime(polled):%Y-%m-%d %H:%M:%S}"

    @admin.display(description=_("受信URL"))
    def push_url(self, obj: ConnectSetting | None) -> str:
        return push.push_url(obj) if obj and obj.pk else "-"

    @admin.display(description=_("状態"))
    def push_state(self, obj: ConnectSetting | None) -> Any:
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
    def app_secret_status(self, obj: ConnectSetting | None) -> str:
        return secret_status(obj.app_secret if obj else "")

    # Below, ``obj`` is the tenant being edited (django-stubs says the setting): typed Any.
    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if request.user.is_superuser:
            return self.fieldsets
        return without_fields(self.fieldsets, {"app_secret"})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Where a tenant's data goes (the URL) and the secrets: superusers only. The サポート
        # group looks and presses buttons; it cannot send data or signatures elsewhere.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "senselink_url"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if request.user.is_superuser:
            # The admin would also exclude the base form's Meta.exclude (the secret).
            kwargs["form"] = ConnectSettingSecretsForm
            kwargs["exclude"] = list(self.get_readonly_fields(request, obj))
        return super().get_formset(request, obj, **kwargs)
