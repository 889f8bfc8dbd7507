"""The support admin's forms, kept out of the admins as Django keeps UserChangeForm.

Secrets are write-only: the base forms exclude them, and the superuser's forms add a separate
input that replaces the stored value (an empty input keeps it; integrations/forms.py).
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ..forms import WriteOnlySecretsMixin, secret_field
from ..models import ConnectSetting, Tenant, TenantMembership
from ..validators import validate_target_date

SECRET_HELP = _(
    "置き換える場合のみ新しい値を入力してください。空欄のまま保存すると登録済みの値を保持します。"
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
    """The tenant page's [勤怠連携を実行] button: the day whose records to send."""

    target_date = forms.DateField(label=_("対象日"), validators=[validate_target_date])


class TenantMembershipForm(forms.ModelForm):
    """The membership's two fields under Japanese names (the model leaves them unnamed)."""

    class Meta:
        model = TenantMembership
        fields = "__all__"  # noqa: DJ007
        labels = {"user": _("ユーザー"), "tenant": _("テナント")}
