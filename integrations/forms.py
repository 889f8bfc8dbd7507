"""Form pieces shared by the support admin and the tenant pages: the one secret widget and the
one "a blank secret keeps the stored one" rule."""

from __future__ import annotations

from django import forms


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
