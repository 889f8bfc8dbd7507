"""Two-factor login (django-otp): staff enrol a TOTP app and log in with its code; with
STAFF_REQUIRE_2FA on, a staff session without the second factor reaches no admin page at all;
tenant users may enrol and are then asked for the code; recovery codes work once."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD
from tests.test_isolation_walk import admin_urls


@pytest.fixture
def required(settings):
    settings.STAFF_REQUIRE_2FA = True


def code_for(device: TOTPDevice) -> str:
    """What the authenticator app shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def code_from_page(html: str) -> str:
    """The app's code for the key the enrolment page shows (as a person would type it)."""
    (shown,) = re.findall(r'<code class="secret-key">([A-Z2-7 ]+)</code>', html)
    key = base64.b32decode(shown.replace(" ", "")).hex()
    return code_for(TOTPDevice(key=key))


def password_login(client: Client, username: str, url_name: str = "admin:login"):
    return client.post(
        reverse(url_name),
        {"username": username, "password": PASSWORD, "next": "/admin/"},
        follow=True,
    )


def enrol(client: Client, user) -> list[str]:
    """Open 二段階認証の設定, type the app's code; the recovery codes shown once."""
    page = client.get(reverse("portal:two_factor"))
    assert page.status_code == 200
    assert "<svg" in page.content.decode()  # the QR code
    assert not TOTPDevice.objects.filter(user=user).exists()  # nothing written by a GET
    wrong = client.post(reverse("portal:two_factor"), {"otp_token": "123456"})
    assert "確認コードが正しくありません" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=user).exists()
    code = code_from_page(client.get(reverse("portal:two_factor")).content.decode())
    response = client.post(reverse("portal:two_factor"), {"otp_token": code})
    assert response.status_code == 200
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    assert len(codes) == 10
    return codes


def test_staff_enrol_then_log_in_with_a_totp_code(team, required, noon):
    client = Client()
    response = password_login(client, "sam")
    # Password right, second factor missing: sent to enrolment, not to the admin.
    assert response.redirect_chain[-1][0].startswith(reverse("portal:two_factor"))
    assert "二段階認証の設定" in response.content.decode()
    assert client.get("/admin/").status_code == 302

    enrol(client, team.sam)
    assert client.get("/admin/").status_code == 200  # this session proved the code

    # A new login asks for the code.
    noon.shift(timedelta(minutes=2))  # a fresh code (a used one is not accepted twice)
    client = Client()
    response = password_login(client, "sam")
    assert response.redirect_chain[-1][0].startswith(reverse("portal:two_factor_verify"))
    assert "確認コードの入力" in response.content.decode()
    device = TOTPDevice.objects.get(user=team.sam, confirmed=True)
    wrong = client.post(
        reverse("portal:two_factor_verify"), {"otp_token": "000000", "next": "/admin/"}
    )
    assert "確認コードが正しくない" in wrong.content.decode()
    assert client.get("/admin/").status_code == 302
    device.refresh_from_db()
    device.throttling_failure_timestamp = None  # the wrong code's wait, skipped for the test
    device.save()
    response = client.post(
        reverse("portal:two_factor_verify"), {"otp_token": code_for(device), "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_recovery_code_logs_in_once(team, required):
    client = Client()
    password_login(client, "sam")
    codes = enrol(client, team.sam)
    for attempt in range(2):
        client = Client()
        password_login(client, "sam")
        response = client.post(
            reverse("portal:two_factor_verify"), {"otp_token": codes[0].upper(), "next": "/admin/"}
        )
        if attempt == 0:
            assert response["Location"] == "/admin/"
            assert client.get("/admin/").status_code == 200
        else:
            assert response.status_code == 200  # spent
            assert client.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device__user=team.sam).count() == 9


def test_staff_without_the_second_factor_reach_no_admin_page(team, required):
    """Every admin URL, object ids filled in: each sends the session to enrolment or the
    code page, never shows admin content."""

    class Ids:  # the objects whose admin pages are walked (the walk's helper fills ids)
        objects = {
            "tenant": team.acme.pk,
            "connectsetting": team.setting.pk,
            "tenantmembership": team.alice.membership.pk,
            "user": team.alice.pk,
        }

    urls = admin_urls(Ids)
    assert len(urls) > 30
    # Never enrolled: every URL, GET and POST, goes to enrolment.
    unenrolled = Client()
    password_login(unenrolled, "sam")
    for url in urls:
        for method in ("get", "post"):
            response = getattr(unenrolled, method)(url)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith(reverse("portal:two_factor")), url

    # Enrolled, but this session has not given the code: every URL goes to the code page.
    enrolled = Client()
    password_login(enrolled, "sam")
    enrol(enrolled, team.sam)
    pending = Client()
    password_login(pending, "sam")
    for url in urls:
        response = pending.get(url)
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith(reverse("portal:two_factor_verify")), url
    # A pending session cannot enrol a new phone either: it must prove the old one first.
    response = pending.get(reverse("portal:two_factor"))
    assert response["Location"].startswith(reverse("portal:two_factor_verify"))


def test_with_the_setting_off_staff_log_in_with_a_password(team, settings):
    settings.STAFF_REQUIRE_2FA = False
    client = Client()
    password_login(client, "sam")
    assert client.get("/admin/").status_code == 200


def test_a_tenant_user_may_enrol_and_is_then_asked_for_the_code(team, noon):
    client = Client()
    password_login(client, "alice", "portal:login")
    assert client.get(reverse("portal:connect_list")).status_code == 200  # optional
    codes = enrol(client, team.alice)
    assert codes

    noon.shift(timedelta(minutes=2))
    client = Client()
    response = client.post(
        reverse("portal:login"), {"username": "alice", "password": PASSWORD}, follow=True
    )
    assert "確認コードの入力" in response.content.decode()
    for name in ("portal:connect_list", "portal:history", "portal:members"):
        response = client.get(reverse(name))
        assert response["Location"].startswith(reverse("portal:two_factor_verify")), name
    device = TOTPDevice.objects.get(user=team.alice)
    response = client.post(
        reverse("portal:two_factor_verify"), {"otp_token": code_for(device), "next": "/"}
    )
    assert response["Location"] == "/"
    assert client.get(reverse("portal:connect_list")).status_code == 200

    # Turned off again (password asked): the next login needs no code.
    bad = client.post(reverse("portal:two_factor_disable"), {"password": "wrong"}, follow=True)
    assert "パスワードが正しくありません" in bad.content.decode()
    client.post(reverse("portal:two_factor_disable"), {"password": PASSWORD})
    assert not TOTPDevice.objects.filter(user=team.alice).exists()
    client = Client()
    password_login(client, "alice", "portal:login")
    assert client.get(reverse("portal:connect_list")).status_code == 200


def test_staff_cannot_turn_a_required_second_factor_off(team, required):
    client = Client()
    password_login(client, "sam")
    enrol(client, team.sam)
    client.post(reverse("portal:two_factor_disable"), {"password": PASSWORD})
    assert TOTPDevice.objects.filter(user=team.sam, confirmed=True).exists()


def test_the_setting_is_a_strict_boolean_on_without_debug(monkeypatch):
    import subprocess
    import sys

    script = "from django.conf import settings; print(settings.STAFF_REQUIRE_2FA)"
    base = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEY": "fnm0fqDYbUhIh6naWtTKnbqFo9CShhOKQXfKT6kPq_A=",
        "PATH": "/usr/bin:/bin",
    }

    def run(**env):
        return subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {script}"],
            env={**base, **env},
            capture_output=True,
            text=True,
            cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
        )

    assert run(DEBUG="false").stdout.strip() == "True"
    assert run(DEBUG="true").stdout.strip() == "False"
    assert run(DEBUG="true", STAFF_REQUIRE_2FA="true").stdout.strip() == "True"
    refused = run(DEBUG="false", STAFF_REQUIRE_2FA="maybe")
    assert refused.returncode != 0 and "STAFF_REQUIRE_2FA must be true or false" in refused.stderr
