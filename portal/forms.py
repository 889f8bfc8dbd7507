"""Forms of the tenant pages. Validation rules live on the model; these forms only collect input."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from integrations.forms import (
    CONNECT_SETTING_GROUPS,
    TENANT_FIELDS,
    WriteOnlySecretsMixin,
    secret_field,
)
from integrations.kinds import KINDS
from integrations.models import ConnectSetting, SyncRun, Tenant
from integrations.validators import parse_person_group_ids, validate_target_date


class TermsForm(forms.Form):
    agree = forms.BooleanField(
        label=_("規約を確認のうえ、同意します。"),
        error_messages={"required": _("規約を確認のうえ、同意のチェックを入れてください。")},
    )


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """パスワード変更, throttled like the login: the old password is checked through
    ``authenticate`` so django-axes counts each wrong one and locks the account+address out
    after ``AXES_FAILURE_LIMIT`` (the middleware then answers the lock-out page)."""

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        username = self.user.get_username()
        checked = authenticate(self.request, username=username, password=old_password)
        if checked is None or checked.pk != self.user.pk:
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class ConnectSettingForm(WriteOnlySecretsMixin, forms.ModelForm):
    """連携設定: the tenant's ConnectSetting plus the tenant's KOT token, saved together.

    Secrets are write-only (integrations.forms): an empty input keeps the stored value.
    """

    # The page's sections: ConnectSetting's groups, as in the support admin.
    groups = CONNECT_SETTING_GROUPS
    secret_fields = ("app_secret",)
    kot_access_token = secret_field(_("アクセストークン"))
    app_secret = secret_field(_("Appシークレット"))

    class Meta:
        model = ConnectSetting
        fields = TENANT_FIELDS  # in the shared groups' order
        labels = {
            "senselink_url": _("SenseLink URL"),
            "app_key": _("Appキー"),
            "attendance_mode": _("連携項目"),
            "attendance_trigger": _("連携タイミング"),
            "attendance_hour": _("毎日"),
            "attendance_target_day": _("取得する認証レコード"),
            "attendance_paused": _("スケジュール実行を一時停止する"),
            "day_change_time": _("日付変更時刻"),
            "realtime_clock_in": _("リアルタイム出勤連携を使う"),
            "realtime_interval_minutes": _("確認間隔(分)"),
            "employee_trigger": _("連携タイミング"),
            "employee_interval": _("実行間隔"),
            "employee_day": _("実行日"),
            "employee_hour": _("実行時刻"),
            "employee_paused": _("スケジュール実行を一時停止する"),
            "resigned_policy": _("退職者の扱い"),
            "person_group_ids": _("登録先の人員グループID"),
        }
        widgets = {
            "senselink_url": forms.URLInput(attrs={"placeholder": "https://link.japancv.co.jp/"}),
            "app_key": forms.TextInput(attrs={"autocomplete": "off"}),
            "attendance_mode": forms.RadioSelect,
            "attendance_trigger": forms.RadioSelect,
            "employee_trigger": forms.RadioSelect,
            "resigned_policy": forms.RadioSelect,
            "day_change_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "person_group_ids": forms.TextInput(
                attrs={"placeholder": _("例: 3,12"), "autocomplete": "off"}
            ),
        }
        error_messages = {
            "senselink_url": {"required": _("SenseLink URLを入力してください。")},
            "app_key": {"required": _("Appキーを入力してください。")},
        }

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # The manual requires the SenseLink connection; the model allows blanks for onboarding.
        self.fields["senselink_url"].required = True
        self.fields["app_key"].required = True
        self.fields["attendance_hour"].widget.attrs["aria-describedby"] = "hour-rule"
        self.fields["employee_hour"].widget.attrs["aria-describedby"] = "hour-rule"
        # Optional: a form without it (an older page still open) keeps the saved interval.
        self.fields["realtime_interval_minutes"].required = False
        self.fields["realtime_clock_in"].widget.attrs["aria-describedby"] = "realtime-rule"
        # Number inputs offer the valid range (the model's validators): the browser's arrows and
        # hints stop at 1–60 minutes, 100 %.
        self.fields["realtime_interval_minutes"].widget.attrs.update(min=1, max=60)
        for name in ("deletion_guard_percent", "creation_guard_percent"):
            self.fields[name].widget.attrs["max"] = 100

    def clean_realtime_interval_minutes(self) -> int:
        value = self.cleaned_data.get("realtime_interval_minutes")
        if value is None:
            return self.instance.realtime_interval_minutes or 5
        return value

    @property
    def has_token(self) -> bool:
        return bool(self.tenant.kot_access_token)

    @property
    def has_app_secret(self) -> bool:
        return bool(self.instance.pk and self.instance.app_secret)

    def clean_app_secret(self) -> str:
        value = self.cleaned_data["app_secret"]
        if not value and not self.has_app_secret:
            raise forms.ValidationError(_("Appシークレットを入力してください。"), code="required")
        return value

    @method_decorator(sensitive_variables())
    def clean_kot_access_token(self) -> str:
        value = self.cleaned_data["kot_access_token"]
        if value and value != self.tenant.kot_access_token:
            problem = self.tenant.kot_token_problem(value)
            if problem:
                raise forms.ValidationError(problem, code="kot_token_taken")
        return value

    def clean_person_group_ids(self) -> str:
        """The picked groups when the list was shown (its checkboxes), else the typed ids."""
        if self.data.get("group_picker"):
            getlist = getattr(self.data, "getlist", lambda key: self.data.get(key) or [])
            picked = [v for v in getlist("person_group_pick") if v.isascii() and v.isdigit()]
            return ",".join(dict.fromkeys(picked))
        value = self.cleaned_data["person_group_ids"]
        try:
            return ",".join(map(str, parse_person_group_ids(value)))
        except ValueError:
            return value  # the model's validator says what is wrong, beside the field

    def chosen_group_ids(self) -> set[int]:
        """The group ids the form holds now (for ticking the picked groups)."""
        if self.is_bound and self.data.get("group_picker"):
            value = ",".join(getattr(self.data, "getlist", lambda key: [])("person_group_pick"))
        elif self.is_bound:
            value = self.data.get("person_group_ids", "")
        else:
            value = self.instance.person_group_ids
        try:
            return set(parse_person_group_ids(value or ""))
        except ValueError:
            return set()

    def save(self, commit: bool = True) -> ConnectSetting:
        """Save the setting and the tenant's token in one transaction (nothing saved half)."""
        setting = super().save(commit=False)
        setting.tenant = self.tenant
        token = self.cleaned_data.get("kot_access_token")
        with transaction.atomic():
            setting.save()
            if token:
                self.tenant.kot_access_token = token
                self.tenant.save(update_fields=["kot_access_token"])
        return setting

    @method_decorator(sensitive_variables())
    def connection_values(self) -> dict[str, str]:
        """What the connection test uses: the typed values, stored secrets for empty inputs.

        The stored App Secret signs requests only to the saved URL: to test another URL, the
        secret must be typed (else none is given and the test asks for it).
        """
        data = self.data
        url = data.get("senselink_url", "").strip()
        stored_secret = ""
        if self.instance.pk and url == self.instance.senselink_url.strip():
            stored_secret = self.instance.app_secret
        return {
            "token": data.get("kot_access_token", "").strip() or self.tenant.kot_access_token,
            "url": url,
            "app_key": data.get("app_key", "").strip(),
            "app_secret": data.get("app_secret", "").strip() or stored_secret,
        }


def yesterday():
    return timezone.localdate() - timedelta(days=1)


class ManualRunForm(forms.Form):
    """手動実行: which sync, and for attendance the day whose recognition records to send."""

    kind = forms.ChoiceField(choices=SyncRun.Kind.choices, widget=forms.HiddenInput)
    target_date = forms.DateField(
        label=_("日付"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("日付を正しく入力してください(例: 2026-11-24)。")},
        validators=[validate_target_date],
    )

    def clean(self):
        cleaned = super().clean()
        if not _dated(cleaned.get("kind")):
            cleaned["target_date"] = None
            return cleaned
        day = cleaned.get("target_date")
        if day is None and "target_date" not in self.errors:
            self.add_error("target_date", _("日付を入力してください。"))
        elif day is not None and day > timezone.localdate():
            self.add_error("target_date", _("未来の日付は指定できません。"))
        return cleaned


def _dated(kind: str | None) -> bool:
    """Whether runs of this kind carry a target date (integrations/kinds.py)."""
    return kind in KINDS and KINDS[kind].dated


class PreviewForm(forms.Form):
    """プレビュー: which sync, and for attendance the day to look at."""

    kind = forms.ChoiceField(choices=SyncRun.Kind.choices)
    target_date = forms.DateField(
        label=_("日付"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("日付を正しく入力してください(例: 2026-11-24)。")},
        validators=[validate_target_date],
    )

    def clean(self):
        cleaned = super().clean()
        missing = not cleaned.get("target_date") and "target_date" not in self.errors
        if _dated(cleaned.get("kind")) and missing:
            self.add_error("target_date", _("日付を入力してください。"))
        return cleaned
