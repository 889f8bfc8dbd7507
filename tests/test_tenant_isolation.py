"""Isolation: a tenant user sees, changes and runs nothing of another tenant (SPEC 3)."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from integrations.models import ConnectSetting, SyncError, SyncRun, Tenant, TermsConsent
from tests.conftest import JST


@pytest.fixture
def two(world, client):
    """acme-hr logged in; globex made active too, with a run and an error of its own."""
    Tenant.objects.filter(pk=world.globex.pk).update(subscription_status="active")
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)
    world.client = client
    world.acme_setting = world.acme.connect_settings.get()
    world.globex_setting = world.globex.connect_settings.get()
    at = datetime(2026, 11, 24, 3, 0, tzinfo=JST)
    world.globex_run = SyncRun.objects.create(
        tenant=world.globex,
        kind="attendance",
        trigger="manual",
        status="partial",
        created_at=at,
        started_at=at,
        finished_at=at,
        failed_count=1,
    )
    SyncError.objects.create(
        run=world.globex_run, employee_code="9999", code="x", message="globex-only-error-line"
    )
    world.acme_run = SyncRun.objects.create(
        tenant=world.acme,
        kind="employee",
        trigger="manual",
        status="failure",
        created_at=at,
        started_at=at,
        finished_at=at,
        failed_count=1,
    )
    SyncError.objects.create(run=world.acme_run, code="x", message="acme-error-line")
    return world


def other_tenant_urls(w) -> list[str]:
    """Every tenant URL that carries an object id, with globex's ids."""
    return [
        reverse("portal:run_errors", args=[w.globex_run.pk]),
        reverse("portal:connect_settings", args=[w.globex_setting.pk]),
        reverse("portal:connect_preview", args=[w.globex_setting.pk]) + "?kind=employee",
        reverse("portal:manual_run", args=[w.globex_setting.pk]),
    ]


def own_urls(w) -> list[str]:
    return [
        reverse("portal:connect_list"),
        reverse("portal:run_log"),
        reverse("portal:terms"),
        reverse("portal:password_change"),
        reverse("portal:password_change_done"),
        reverse("portal:connect_settings_new"),
        reverse("portal:run_errors", args=[w.acme_run.pk]),
        reverse("portal:connect_settings", args=[w.acme_setting.pk]),
        reverse("portal:connect_preview", args=[w.acme_setting.pk]) + "?kind=employee",
        reverse("portal:manual_run", args=[w.acme_setting.pk]),
    ]


def test_other_tenants_ids_answer_404_on_get(two):
    for url in other_tenant_urls(two):
        assert two.client.get(url).status_code == 404, url


def test_other_tenants_ids_answer_404_on_post_and_nothing_changes(two):
    before = ConnectSetting.objects.filter(pk=two.globex_setting.pk).values().get()
    runs = SyncRun.objects.count()
    settings_url = reverse("portal:connect_settings", args=[two.globex_setting.pk])
    run_url = reverse("portal:manual_run", args=[two.globex_setting.pk])
    assert two.client.post(settings_url, {"app_key": "stolen", "action": "save"}).status_code == 404
    assert two.client.post(settings_url, {"action": "test"}).status_code == 404
    assert two.client.post(run_url, {"kind": "employee"}).status_code == 404
    assert ConnectSetting.objects.filter(pk=two.globex_setting.pk).values().get() == before
    assert SyncRun.objects.count() == runs


def test_ids_that_do_not_exist_answer_404(two):
    for url in (
        reverse("portal:run_errors", args=[999999]),
        reverse("portal:connect_settings", args=[999999]),
        reverse("portal:manual_run", args=[999999]),
        reverse("portal:connect_preview", args=[999999]),
    ):
        assert two.client.get(url).status_code == 404, url


def test_own_pages_answer_and_show_only_own_data(two):
    for url in own_urls(two):
        response = two.client.get(url)
        assert response.status_code in (200, 302), url
        page = response.content.decode()
        assert "globex" not in page, url
        assert "globex-only-error-line" not in page
    page = two.client.get(reverse("portal:connect_list")).content.decode()
    assert reverse("portal:run_errors", args=[two.acme_run.pk]) in page
    assert reverse("portal:run_errors", args=[two.globex_run.pk]) not in page


def test_anonymous_users_are_sent_to_login(two):
    anonymous = Client()
    for url in own_urls(two) + other_tenant_urls(two):
        response = anonymous.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("portal:login") + "?next="), url
    response = anonymous.post(
        reverse("portal:manual_run", args=[two.acme_setting.pk]), {"kind": "employee"}
    )
    assert response["Location"].startswith(reverse("portal:login"))
    assert not SyncRun.objects.filter(tenant=two.acme, kind="employee", status="queued").exists()


def test_secrets_are_absent_from_every_page(two):
    secrets = [two.sandbox.kot_token, two.sandbox.app_secret]
    pages = [two.client.get(url).content.decode() for url in own_urls(two)]
    pages.append(
        two.client.post(
            reverse("portal:connect_settings", args=[two.acme_setting.pk]), {"action": "test"}
        ).content.decode()
    )
    pages.append(
        two.client.post(
            reverse("portal:connect_settings", args=[two.acme_setting.pk]), {"action": "save"}
        ).content.decode()
    )
    for page in pages:
        for secret in secrets:
            assert secret not in page
