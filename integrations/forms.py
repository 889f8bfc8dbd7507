"""Form pieces shared by the support admin and the tenant pages: ConnectSetting's field groups,
the one secret widget and the one "a blank secret keeps the stored one" rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from django import forms
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class FieldGroup(NamedTuple):
    title: StrOrPromise
    fields: tuple[str, ...]


# ConnectSetting's editable fields in their sections, declared once: the support admin's
# fieldsets and the tenant settings page (its form's fields, its headings) both follow them.
CONNECT_SETTING_GROUPS: dict[str, FieldGroup] = {
    "senselink": FieldGroup(_("SenseLinkの情報"), ("senselink_url", "app_key", "app_secret")),
    "attendance": FieldGroup(
        _("勤怠連携 設定"),
        (
            "attendance_mode",
            "attendance_trigger",
            "attendance_hour",
            "attendance_target_day",
            "attendance_paused",
            "day_change_time",
        ),
    ),
    "realtime": FieldGroup(
        _("リアルタイム出勤連携"), ("realtime_clock_in", "realtime_interval_minutes")
    ),
    "employee": FieldGroup(
        _("社員情報連携(KING OF TIME → SenseThunder) 設定"),
        (
            "employee_trigger",
            "employee_interval",
            "employee_day",
            "employee_hour",
            "employee_paused",
            "resigned_policy",
            "deletion_guard_count",
            "deletion_guard_percent",
        ),
    ),
    "persons": FieldGroup(
        _("SenseLinkの人員"),
        ("person_group_ids", "creation_guard_count", "creation_guard_percent", "update_persons"),
    ),
}
# Set by support only: the tenant page shows their state, not an input.
SUPPORT_ONLY_FIELDS = frozenset({"update_persons"})
TENANT_FIELDS = [
    name
    for group in CONNECT_SETTING_GROUPS.values()
    for name in group.fields
    if name not in SUPPORT_ONLY_FIELDS
]


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value back and keeps browsers from autofilling it."""

    def __init__(self, attrs=None):
        super().__init__(
            attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False
        )


def secret_field(label, *, help_text="") -> forms.CharField:
    """An optional, write-only input for a secret model field."""
    return forms.CharField(
        label=label, required=False, strip=True, help_text=help_text, widget=SecretInput()
    )


class WriteOnlySecretsMixin:
    """For a ModelForm whose ``secret_fields`` are model secrets shown as SecretInputs.

    A blank input keeps the stored value (the field is left out of the instance); a typed value
    replaces it and is marked as entered in this change (``instance.entered_secrets``), which
    the model's clean() reads (a new SenseLink URL needs its secret typed with it).
    """

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for name in self.secret_fields:
            # Never an initial value: not rendered, and a blank input is "unchanged".
            self.initial[name] = ""  # type: ignore[attr-defined]

    def _post_clean(self):
        cleaned = self.cleaned_data  # type: ignore[attr-defined]
        instance = self.instance  # type: ignore[attr-defined]
        for name in self.secret_fields:
            if name in cleaned and not cleaned[name]:
                del cleaned[name]  # construct_instance skips it: the stored value stays
            elif cleaned.get(name):
                instance.entered_secrets = {*getattr(instance, "entered_secrets", set()), name}
        super()._post_clean()  # type: ignore[misc]
