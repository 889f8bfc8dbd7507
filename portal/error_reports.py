"""Error reports (the DEBUG page, the admins' error mails) never show a secret.

Django's own filter hides variables marked with ``sensitive_variables`` and POST fields marked
with ``sensitive_post_parameters`` only when DEBUG is off; this one always does, and it also
hides, wherever they appear in a report, every POST field, frame variable or dictionary key
whose name says it holds a secret (a token, a secret, a key, a password, a signature), so an
inline admin form's ``connect_settings-0-app_secret`` or a connector's ``app_secret`` argument
are covered even where nobody marked them. The values of such variables and attributes (a
model's ``kot_access_token``, a client's ``token``) are then blanked out of every other value
shown, e.g. a KOT URL that carries the token in its path.
"""

from __future__ import annotations

import re
import sys
from types import FrameType

from django.template.defaultfilters import pprint
from django.utils.datastructures import MultiValueDict
from django.views.debug import SafeExceptionReporterFilter

SECRET_NAMES = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|DATABASE_URL|EMAIL_URL|REDIS|DSN",
    flags=re.IGNORECASE,
)


MIN_SECRET_LENGTH = 6


class _Shown:
    """A frame value already rendered (and scrubbed): the report prints it as it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = SECRET_NAMES

    def is_active(self, request) -> bool:
        # Also with DEBUG on: a development page shown to the wrong person is still a leak.
        return True

    def is_secret_name(self, name) -> bool:
        return isinstance(name, str) and bool(self.hidden_settings.search(name))

    def _cleanse_keys(self, value: MultiValueDict) -> MultiValueDict:
        cleansed = value.copy()
        for key in list(cleansed.keys()):
            if self.is_secret_name(key):
                cleansed[key] = self.cleansed_substitute
        return cleansed

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        if request is None or not isinstance(params, MultiValueDict):
            return params
        return self._cleanse_keys(params)

    def cleanse_special_types(self, request, value):
        value = super().cleanse_special_types(request, value)
        if isinstance(value, MultiValueDict):
            return self._cleanse_keys(value)
        if isinstance(value, (dict, list, tuple)):
            return self.cleanse_setting("", value)
        return value

    def get_traceback_frame_variables(self, request, tb_frame):
        secrets = self._secrets_of(request, tb_frame)
        shown = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if self.is_secret_name(name):
                value = self.cleansed_substitute
            elif secrets and value != self.cleansed_substitute:
                text = pprint(value)
                scrubbed = self._scrub(text, secrets)
                if scrubbed != text:
                    value = _Shown(scrubbed)
            shown.append((name, value))
        return shown

    def _scrub(self, text: str, secrets: set[str]) -> str:
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, self.cleansed_substitute)
        return text

    def _secrets_of(self, request, tb_frame: FrameType) -> set[str]:
        """The secret values held under secret names anywhere in the failing stack."""
        cached = getattr(request, "_report_secrets", None) if request is not None else None
        secrets: set[str] = set(cached or ())
        frames: list[FrameType] = []
        frame: FrameType | None = tb_frame
        while frame is not None:  # this frame and its callers
            frames.append(frame)
            frame = frame.f_back
        tb = sys.exc_info()[2]
        while tb is not None:  # the exception being handled, down to where it was raised
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in frames:
            for name, value in list(frame.f_locals.items()):
                self._harvest(name, value, secrets)
                attributes = getattr(value, "__dict__", None)
                if isinstance(attributes, dict) and not isinstance(value, type):
                    for attribute, attribute_value in list(attributes.items()):
                        self._harvest(attribute, attribute_value, secrets)
        if request is not None:
            request._report_secrets = secrets
        return secrets

    def _harvest(self, name, value, secrets: set[str]) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and self.is_secret_name(name):
            secrets.add(value)
