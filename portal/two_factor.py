"""Two-factor login (TOTP, with recovery codes) through django-otp, for staff and tenant users.

The password is the first step, as before (the login pages, django-axes). A session whose user
has a confirmed device, or is staff while ``STAFF_REQUIRE_2FA`` is on, is then "pending" until
the second step: ``SecondFactorMiddleware`` sends every request of a pending session (admin
pages included, whatever the URL) to 確認コードの入力, or to 二段階認証の設定 for staff
without a device, and lets through only those pages, logout and the language switch.

Whether the user has a device is read at login and kept in the session, so pages of users
without two-factor cost no query; staff are checked against the setting on every request.
A device's code is checked with django-otp's throttling (each failure doubles the wait).
"""

from __future__ import annotations

import base64
import re
from functools import cache
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

SESSION_KEY = "portal_has_2fa_device"
PENDING_KEY_SESSION_KEY = "portal_totp_pending_key"
RECOVERY_CODES = 10
TOTP_NAME = "認証アプリ"
STATIC_NAME = "リカバリーコード"
TOTP_SHAPE = re.compile(r"^\d{6,8}$")


def required(user) -> bool:
    """Whether this user must have a second factor (staff, while STAFF_REQUIRE_2FA is on)."""
    return bool(user.is_staff and settings.STAFF_REQUIRE_2FA)


def _note_devices(sender, request, user, **kwargs) -> None:
    """At login: remember in the session whether this user has a device to verify."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_has_device(user)


user_logged_in.connect(_note_devices, dispatch_uid="portal.two_factor.note_devices")


@cache
def _exempt_paths() -> frozenset[str]:
    return frozenset(
        reverse(name)
        for name in (
            "portal:two_factor_verify",
            "portal:two_factor",
            "portal:logout",
            "set_language",
        )
    )


def pending_step(request: HttpRequest) -> str | None:
    """ "verify", "setup" or None (nothing owed) for an authenticated, unverified session."""
    has_device = request.session.get(SESSION_KEY)
    if has_device is None:
        has_device = user_has_device(request.user)
        request.session[SESSION_KEY] = has_device
    if has_device:
        return "verify"
    if required(request.user):
        return "setup"
    return None


class SecondFactorMiddleware:
    """Every request of a session that still owes its second factor goes to the code page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified():
            step = pending_step(request)
            if step and request.path_info not in _exempt_paths():
                name = "portal:two_factor_verify" if step == "verify" else "portal:two_factor"
                query = urlencode({"next": request.get_full_path()})
                return redirect(f"{reverse(name)}?{query}")
        return self.get_response(request)


# --- Pages ------------------------------------------------------------------------------------


class CodeForm(forms.Form):
    otp_token = forms.CharField(
        label=gettext_lazy("確認コード"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
        error_messages={"required": gettext_lazy("確認コードを入力してください。")},
        help_text=gettext_lazy(
            "認証アプリに表示される6桁の数字、またはリカバリーコードを入力してください。"
        ),
    )

    def clean_otp_token(self) -> str:
        return re.sub(r"[\s-]", "", self.cleaned_data["otp_token"]).lower()


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("現在のパスワード"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": gettext_lazy("現在のパスワードを入力してください。")},
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index") if request.user.is_staff else reverse("portal:connect_list")


def verify_code(user, token: str):
    """The user's device that accepts ``token`` (a TOTP code or a recovery code), or None.

    Each device counts its own failures and makes the next try wait (django-otp throttling).
    """
    kind = TOTPDevice if TOTP_SHAPE.match(token) else StaticDevice
    with transaction.atomic():
        for device in devices_for_user(user, for_verify=True):
            if not isinstance(device, kind):
                continue
            allowed, _extra = device.verify_is_allowed()
            if allowed and device.verify_token(token):
                return device
    return None


def _signed_in(request: HttpRequest, device) -> None:
    request.session.cycle_key()  # a new session id once the second factor is proven
    otp_login(request, device)
    request.session[SESSION_KEY] = True


@never_cache
@sensitive_post_parameters("otp_token")
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """確認コードの入力: the second step of the login."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    if request.user.is_verified() or not user_has_device(request.user):
        return redirect(_next_url(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        device = verify_code(request.user, form.cleaned_data["otp_token"])
        if device is not None:
            _signed_in(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(
                    request,
                    _(
                        "リカバリーコードでログインしました(残り{count}個)。"
                        "二段階認証の設定から新しいリカバリーコードを発行できます。"
                    ).format(count=left),
                )
            return redirect(_next_url(request))
        form.add_error(
            "otp_token",
            _(
                "確認コードが正しくないか、有効期限が切れています。しばらく待ってから再度お試しください。"
            ),
        )
    return render(
        request,
        "portal/two_factor_verify.html",
        {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")},
    )


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg = image.to_string(encoding="unicode")
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)


def _new_recovery_codes(user) -> list[str]:
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=STATIC_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _codes_page(request: HttpRequest, codes: list[str]) -> HttpResponse:
    response = render(
        request,
        "portal/two_factor_codes.html",
        {"codes": codes, "next": _next_url(request)},
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@sensitive_post_parameters("otp_token", "password")
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """二段階認証の設定: enrol an authenticator app (QR code), or manage the enrolled one."""
    user = request.user
    if not user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None and not user.is_verified():
        # Enrolled already: prove it first (a password alone never enrols a new phone).
        return redirect(
            f"{reverse('portal:two_factor_verify')}?{urlencode({'next': request.path})}"
        )
    if confirmed is not None:
        return render(
            request,
            "portal/two_factor.html",
            {
                "device": confirmed,
                "codes_left": StaticToken.objects.filter(device__user=user).count(),
                "required": required(user),
                "password_form": PasswordConfirmForm(auto_id="codes_%s"),
                "disable_form": PasswordConfirmForm(auto_id="disable_%s"),
            },
        )
    # The new key waits in the session (nothing is written on GET) until a code proves the app
    # holds it; then the device is saved, confirmed.
    key = request.session.get(PENDING_KEY_SESSION_KEY)
    if not key:
        key = request.session[PENDING_KEY_SESSION_KEY] = default_key()
    device = TOTPDevice(user=user, name=TOTP_NAME, key=key, confirmed=True)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        token = form.cleaned_data["otp_token"]
        if TOTP_SHAPE.match(token) and totp.verify(int(token), device.tolerance):
            device.last_t = totp.t()
            with transaction.atomic():
                device.save()
                codes = _new_recovery_codes(user)
            del request.session[PENDING_KEY_SESSION_KEY]
            _signed_in(request, device)
            messages.success(request, _("二段階認証を有効にしました。"))
            return _codes_page(request, codes)
        form.add_error(
            "otp_token",
            _("確認コードが正しくありません。認証アプリの最新のコードを入力してください。"),
        )
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return render(
        request,
        "portal/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - generated here
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "required": required(user),
            "next": request.GET.get("next", ""),
        },
    )


def _password_confirmed(request: HttpRequest) -> bool:
    form = PasswordConfirmForm(request.POST)
    if not form.is_valid():
        return False
    checked = authenticate(
        request, username=request.user.get_username(), password=form.cleaned_data["password"]
    )
    return checked is not None and checked.pk == request.user.pk


@never_cache
@sensitive_post_parameters("password")
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working); needs a verified session."""
    if not (request.user.is_authenticated and request.user.is_verified()):
        return redirect("portal:two_factor")
    if not _password_confirmed(request):
        messages.error(request, _("パスワードが正しくありません。"))
        return redirect("portal:two_factor")
    return _codes_page(request, _new_recovery_codes(request.user))


@never_cache
@sensitive_post_parameters("password")
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    """二段階認証を解除 (not for staff while it is required)."""
    user = request.user
    if not (user.is_authenticated and user.is_verified()):
        return redirect("portal:two_factor")
    if required(user):
        messages.error(request, _("サポート担当者のアカウントは二段階認証を解除できません。"))
        return redirect("portal:two_factor")
    if not _password_confirmed(request):
        messages.error(request, _("パスワードが正しくありません。"))
        return redirect("portal:two_factor")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    request.session[SESSION_KEY] = False
    messages.success(request, _("二段階認証を解除しました。"))
    return redirect("portal:two_factor")
