"""Behind a load balancer, django-axes locks out the client's own address (X-Forwarded-For, as
many proxies deep as PROXY_COUNT says), not the balancer's: an attacker cannot lock a tenant
administrator out, and a forged X-Forwarded-For does not let the attacker escape the lock."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.test_deploy_checks import PRODUCTION, ROOT, bare_environment

pytestmark = pytest.mark.django_db

BALANCER = "10.0.0.5"  # every request reaches gunicorn from the load balancer
ATTACKER = "133.11.0.7"
HR = "150.95.0.8"


@pytest.fixture
def behind_one_proxy(settings):
    """The settings PROXY_COUNT=1 gives (checked below in a fresh process), lock-out on."""
    from axes.handlers.proxy import AxesProxyHandler
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.AXES_IPWARE_PROXY_ORDER = "left-most"
    settings.IPWARE_STRICT = False
    AxesProxyHandler.implementation = None
    yield
    AccessAttempt.objects.all().delete()
    AxesProxyHandler.implementation = None


def login(forwarded_for: str | None, password: str):
    headers = {"REMOTE_ADDR": BALANCER}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Client().post(
        reverse("portal:login"), {"username": "acme-hr", "password": password}, **headers
    )


def test_an_attacker_locked_out_does_not_lock_out_the_user_behind_the_same_balancer(
    world, behind_one_proxy
):
    for _ in range(3):
        response = login(ATTACKER, "wrong-password")
    assert response.status_code == 429
    assert login(ATTACKER, PASSWORD).status_code == 429  # locked, even with the right password

    response = login(HR, PASSWORD)
    assert response.status_code == 302  # the administrator, from their own address, logs in

    from axes.models import AccessAttempt

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_forged_x_forwarded_for_does_not_escape_the_lock(world, behind_one_proxy):
    # The client writes its own header; the balancer appends the address it really saw.
    for forged in ("1.1.1.1", "8.8.8.8", "9.9.9.9, 4.4.4.4"):
        response = login(f"{forged}, {ATTACKER}", "wrong-password")
    assert response.status_code == 429
    assert login(f"2.2.2.2, {ATTACKER}", PASSWORD).status_code == 429
    assert login(HR, PASSWORD).status_code == 302


def test_without_a_proxy_count_the_header_is_not_trusted(world, settings):
    from axes.helpers import get_client_ip_address
    from django.test import RequestFactory

    request = RequestFactory().post("/login/", REMOTE_ADDR=BALANCER, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert settings.AXES_IPWARE_META_PRECEDENCE_ORDER == ("REMOTE_ADDR",)  # PROXY_COUNT=0
    assert get_client_ip_address(request) == BALANCER


def axes_settings(**environment: str) -> subprocess.CompletedProcess:
    code = (
        "import environ; environ.Env.read_env = staticmethod(lambda *a, **k: None);"
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.AXES_IPWARE_META_PRECEDENCE_ORDER, getattr(s, 'AXES_IPWARE_PROXY_COUNT', None),"
        " getattr(s, 'IPWARE_STRICT', None))"
    )
    env = {**bare_environment(), **PRODUCTION, **environment}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow  # a Python process per case
@pytest.mark.parametrize(
    ("proxy_count", "expected"),
    [
        ("0", "('REMOTE_ADDR',) None None"),
        ("1", "('HTTP_X_FORWARDED_FOR', 'REMOTE_ADDR') 0 False"),
        ("2", "('HTTP_X_FORWARDED_FOR', 'REMOTE_ADDR') 1 False"),
    ],
)
def test_proxy_count_sets_how_deep_the_client_address_is_read(proxy_count, expected):
    result = axes_settings(PROXY_COUNT=proxy_count)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.slow  # a Python process
def test_a_negative_proxy_count_stops_start_up_with_a_clear_message():
    result = axes_settings(PROXY_COUNT="-1")
    assert result.returncode != 0
    assert "PROXY_COUNT must be 0 or more" in result.stderr
