"""Secrets in the admin are write-only: never rendered, never in history, kept on an empty submit,
and changed by superusers only (as is the subscription status)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from integrations.models import ConnectSetting, Tenant
from tests.admin_helpers import change_form_data, make_run, support_user
from tests.world import make_acme, make_bare

pytestmark = pytest.mark.django_db

TOKEN = "kot-token-acme-0123456789abcdef"
SECRET = "appsecret-acme-fedcba9876543210"


@pytest.fixture
def acme(noon):
    tenant = make_acme()
    tenant.kot_access_token = TOKEN
    tenant.save()
    setting = tenant.connect_settings.get()
    setting.app_secret = SECRET
    setting.save()
    return tenant


def change_url(tenant):
    return reverse("admin:integrations_tenant_change", args=[tenant.pk])


def assert_no_secret(html: bytes | str):
    text = html.decode() if isinstance(html, bytes) else html
    assert TOKEN not in text
    assert SECRET not in text


def stored(tenant):
    tenant = Tenant.objects.get(pk=tenant.pk)
    return tenant.kot_access_token, tenant.connect_settings.get().app_secret


@pytest.mark.parametrize("who", ["superuser", "support"])
def test_no_admin_page_renders_a_secret(client, admin_user, acme, who):
    client.force_login(admin_user if who == "superuser" else support_user())
    run = make_run(acme, errors=["1001"])
    pages = [
        reverse("admin:integrations_tenant_changelist"),
        reverse("admin:integrations_tenant_changelist") + "?q=acme",
        change_url(acme),
        reverse("admin:integrations_tenant_history", args=[acme.pk]),
        reverse("admin:integrations_syncrun_changelist"),
        reverse("admin:integrations_syncrun_change", args=[run.pk]),
        reverse("admin:integrations_syncrun_failed"),
        reverse("admin:integrations_syncerror_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content)


def test_change_page_shows_only_whether_a_secret_is_set(client, admin_user, acme):
    client.force_login(admin_user)
    page = client.get(change_url(acme)).content.decode()
    assert "設定済み (末尾 cdef)" in page
    assert "設定済み (末尾 3210)" in page

    bare = make_bare()
    Tenant.objects.filter(pk=bare.pk).update(kot_access_token="")
    ConnectSetting.objects.filter(tenant=bare).update(app_secret="")
    page = client.get(change_url(bare)).content.decode()
    assert page.count("未設定") >= 2


def test_empty_submit_keeps_both_secrets(client, admin_user, acme):
    client.force_login(admin_user)
    data = change_form_data(client.get(change_url(acme)))
    assert data["kot_access_token"] == ""
    assert data["connect_settings-0-app_secret"] == ""
    data["contact_email"] = "new-hr@acme.example.jp"

    response = client.post(change_url(acme), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert stored(acme) == (TOKEN, SECRET)
    assert Tenant.objects.get(pk=acme.pk).contact_email == "new-hr@acme.example.jp"


def test_superuser_replaces_secrets_and_history_names_only_the_fields(client, admin_user, acme):
    client.force_login(admin_user)
    data = change_form_data(client.get(change_url(acme)))
    data["kot_access_token"] = "brand-new-kot-token-7777"
    data["connect_settings-0-app_secret"] = "brand-new-app-secret-8888"

    response = client.post(change_url(acme), data)

    assert response.status_code == 302
    assert stored(acme) == ("brand-new-kot-token-7777", "brand-new-app-secret-8888")
    entry = LogEntry.objects.get(object_id=str(acme.pk))
    message = entry.get_change_message()
    assert "KING OF TIME アクセストークン" in message
    assert "Appシークレット" in message
    for value in ("brand-new-kot-token-7777", "brand-new-app-secret-8888", TOKEN, SECRET):
        assert value not in entry.change_message
        assert value not in message
    history = client.get(reverse("admin:integrations_tenant_history", args=[acme.pk]))
    assert "brand-new" not in history.content.decode()


def test_support_cannot_change_secrets_or_subscription(client, acme):
    client.force_login(support_user())
    page = client.get(change_url(acme))
    html = page.content.decode()
    assert 'name="kot_access_token"' not in html
    assert 'name="connect_settings-0-app_secret"' not in html
    assert 'name="subscription_status"' not in html
    assert "設定済み (末尾 cdef)" in html

    data = change_form_data(page)
    data["kot_access_token"] = "support-typed-token-1111"
    data["connect_settings-0-app_secret"] = "support-typed-secret-2222"
    data["subscription_status"] = "suspended"
    data["contact_email"] = "desk-edit@acme.example.jp"
    response = client.post(change_url(acme), data)

    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=acme.pk)
    assert stored(acme) == (TOKEN, SECRET)
    assert tenant.subscription_status == "active"
    assert tenant.contact_email == "desk-edit@acme.example.jp"


def test_superuser_sets_secrets_of_a_new_tenant(client, admin_user, noon):
    client.force_login(admin_user)
    add_url = reverse("admin:integrations_tenant_add")
    data = change_form_data(client.get(add_url))
    data.update(
        {
            "name": "新規 株式会社",
            "slug": "shinki",
            "subscription_status": "active",
            "kot_access_token": "first-kot-token-3333",
            "connect_settings-0-senselink_url": "https://link.example.jp/",
            "connect_settings-0-app_key": "key-shinki",
            "connect_settings-0-app_secret": "first-app-secret-4444",
        }
    )
    response = client.post(add_url, data)

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="shinki")
    assert stored(tenant) == ("first-kot-token-3333", "first-app-secret-4444")
    assert "first-" not in LogEntry.objects.get(object_id=str(tenant.pk)).change_message
