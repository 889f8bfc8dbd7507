"""Accounts: login lock-out (tenant and admin), CSRF on every form, session expiry, headers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def axes_on(settings):
    from axes.handlers.proxy import AxesProxyHandler
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    AxesProxyHandler.implementation = None  # re-read settings
    yield
    AccessAttempt.objects.all().delete()
    AxesProxyHandler.implementation = None


@pytest.mark.parametrize(
    "url_name,username",
    [("portal:login", "acme-hr"), ("admin:login", "support-desk")],
)
def test_repeated_failed_logins_lock_the_account_out(world, axes_on, url_name, username):
    get_user_model().objects.create_user(
        username="support-desk", password=PASSWORD, is_staff=True, is_superuser=True
    )
    client = Client()
    url = reverse(url_name)
    for _ in range(3):
        response = client.post(url, {"username": username, "password": "wrong-password"})
    assert response.status_code == 429
    # Even the right password is refused while locked out.
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_forms_refuse_a_post_without_a_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD})
    assert response.status_code == 403
    client.force_login(world.acme_user)
    setting = world.acme.connect_settings.get()
    response = client.post(reverse("portal:manual_run", args=[setting.pk]), {"kind": "employee"})
    assert response.status_code == 403


def test_a_session_expires(world, settings):
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    later = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)
    with time_machine.travel(later):
        response = client.get(reverse("portal:connect_list"))
    assert response.status_code == 302
    assert reverse("portal:login") in response["Location"]


def test_security_headers_are_sent(world):
    response = Client().get(reverse("portal:login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
