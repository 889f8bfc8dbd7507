"""With DEBUG on, a crash's technical 500 page (frames, POST, settings) shows no secret: not the
stored KOT token or App Secret, not the typed ones."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse

from integrations.models import TermsConsent
from tests.admin_helpers import change_form_data

pytestmark = pytest.mark.django_db

TYPED_TOKEN = "typed-kot-token-5a5a5a5a5a"
TYPED_SECRET = "typed-app-secret-6b6b6b6b6b"


@pytest.fixture
def debug_pages(settings):
    settings.DEBUG = True


def assert_no_secret(page: str, world):
    # The page is Django's technical 500 page: the test would prove nothing otherwise.
    assert "Traceback" in page and "RuntimeError" in page
    assert "Local vars" in page or "local vars" in page.lower()
    for secret in (world.sandbox.kot_token, world.sandbox.app_secret, TYPED_TOKEN, TYPED_SECRET):
        assert secret not in page, secret
    assert settings.SECRET_KEY not in page


def test_tenant_settings_page_crash_in_the_senselink_call_shows_no_secret(
    debug_pages, world, monkeypatch
):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    original = requests.Session.send

    def crash_on_senselink(session, request, **kwargs):
        # KOT answers; the SenseLink call crashes deep in the stack, signatures in its frames.
        if str(world.sandbox.senselink_port) in request.url:
            raise RuntimeError("boom inside the SenseLink call")
        return original(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", crash_on_senselink)
    client = Client(raise_request_exception=False)
    client.force_login(world.acme_user)
    setting = world.acme.connect_settings.get()
    response = client.post(
        reverse("portal:connect_settings", args=[setting.pk]),
        {
            "action": "test",
            "kot_access_token": TYPED_TOKEN,
            "senselink_url": world.sandbox.senselink_url,
            "app_key": world.sandbox.app_key,
            "app_secret": TYPED_SECRET,
        },
    )
    assert response.status_code == 500
    assert_no_secret(response.content.decode(), world)


def test_tenant_settings_page_crash_with_stored_secrets_shows_none(debug_pages, world, monkeypatch):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )

    def crash(session, request, **kwargs):
        raise RuntimeError("boom inside the KOT call")

    monkeypatch.setattr(requests.Session, "send", crash)
    client = Client(raise_request_exception=False)
    client.force_login(world.acme_user)
    setting = world.acme.connect_settings.get()
    response = client.post(
        reverse("portal:connect_settings", args=[setting.pk]),
        {
            "action": "test",
            "senselink_url": world.sandbox.senselink_url,
            "app_key": world.sandbox.app_key,
        },
    )
    assert response.status_code == 500
    assert_no_secret(response.content.decode(), world)


def test_admin_change_form_crash_shows_no_secret(debug_pages, world, admin_user, monkeypatch):
    from integrations.admin import TenantAdmin

    def crash(self, request, obj, form, change):
        raise RuntimeError("boom while saving")

    monkeypatch.setattr(TenantAdmin, "save_model", crash)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    url = reverse("admin:integrations_tenant_change", args=[world.acme.pk])
    data = change_form_data(client.get(url))
    data["kot_access_token"] = TYPED_TOKEN
    data["connect_settings-0-app_secret"] = TYPED_SECRET
    response = client.post(url, data)
    assert response.status_code == 500
    assert_no_secret(response.content.decode(), world)


def test_admin_connection_test_crash_shows_no_secret(debug_pages, world, admin_user, monkeypatch):
    def crash(session, request, **kwargs):
        raise RuntimeError("boom inside the KOT call")

    monkeypatch.setattr(requests.Session, "send", crash)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    url = reverse("admin:integrations_tenant_connection_test", args=[world.acme.pk])
    response = client.post(url)
    assert response.status_code == 500
    assert_no_secret(response.content.decode(), world)
