"""A stored secret signs only for the URL it was saved with, and only superusers redirect data.

One rule on the model (ConnectSetting.clean: a changed SenseLink URL needs the App Secret typed
in the same change), used by the admin, the tenant page and scripts; the connection test never
signs a typed URL with the stored secret; the サポート group cannot change the URL or secrets.
One KOT token, one tenant (Tenant.clean, compared by keyed digest)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from integrations.fields import secret_digest
from integrations.models import ConnectSetting, Tenant, TermsConsent
from tests.admin_helpers import change_form_data, support_user
from tests.test_tenant_settings_form import field_error, form_data
from tests.world import make_acme, make_bare, make_globex, make_initech

pytestmark = pytest.mark.django_db

ELSEWHERE = "https://collector.example.net/"


@pytest.fixture
def acme(world, client):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)
    world.client = client
    world.setting = world.acme.connect_settings.get()
    world.url = reverse("portal:connect_settings", args=[world.setting.pk])
    return world


def senselink_calls(sandbox) -> int:
    return sum(n for route, n in sandbox.request_counts().items() if "/api/" in route)


# --- The model rule -------------------------------------------------------------------------


def test_model_refuses_a_new_url_without_the_secret(acme):
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    setting.senselink_url = ELSEWHERE
    with pytest.raises(ValidationError) as caught:
        setting.full_clean()
    assert "app_secret" in caught.value.message_dict
    assert "Appシークレットも入力してください" in caught.value.message_dict["app_secret"][0]


def test_model_accepts_a_new_url_with_the_secret_entered_even_if_unchanged(acme):
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    setting.senselink_url = ELSEWHERE
    setting.enter_app_secret(acme.sandbox.app_secret)
    setting.full_clean()

    other = ConnectSetting.objects.get(pk=acme.setting.pk)
    other.senselink_url = ELSEWHERE
    other.app_secret = "a-different-secret-typed-now"
    other.full_clean()


def test_model_accepts_other_changes_and_a_first_url(acme):
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    setting.attendance_hour = 4
    setting.full_clean()
    bare = make_bare(senselink_url="", app_secret="")
    fresh = bare.connect_settings.get()
    fresh.senselink_url = ELSEWHERE
    fresh.full_clean()  # nothing stored to misuse


# --- The tenant page --------------------------------------------------------------------------


def test_tenant_form_refuses_a_new_url_without_the_secret(acme):
    response = acme.client.post(acme.url, form_data(acme, senselink_url=ELSEWHERE))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Appシークレットも入力してください" in field_error(page, "app_secret")
    assert (
        ConnectSetting.objects.get(pk=acme.setting.pk).senselink_url == acme.sandbox.senselink_url
    )


def test_tenant_form_saves_a_new_url_with_the_secret(acme):
    response = acme.client.post(
        acme.url, form_data(acme, senselink_url=ELSEWHERE, app_secret="typed-secret-for-new-url")
    )
    assert response.status_code == 302
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    assert (setting.senselink_url, setting.app_secret) == (ELSEWHERE, "typed-secret-for-new-url")


def test_connection_test_never_signs_another_url_with_the_stored_secret(acme):
    # The same sandbox under another spelling of its address: a "foreign" URL we can observe.
    other_url = acme.sandbox.senselink_url.replace("127.0.0.1", "localhost")
    acme.sandbox.reset_counts()
    page = acme.client.post(
        acme.url, form_data(acme, action="test", senselink_url=other_url)
    ).content.decode()
    assert senselink_calls(acme.sandbox) == 0
    assert "SenseLink URL・Appキー・Appシークレットを入力してください。" in page

    acme.client.post(acme.url, form_data(acme, action="groups", senselink_url=other_url))
    assert senselink_calls(acme.sandbox) == 0

    # Typed, the secret may be tried against the new URL.
    page = acme.client.post(
        acme.url,
        form_data(acme, action="test", senselink_url=other_url, app_secret=acme.sandbox.app_secret),
    ).content.decode()
    assert senselink_calls(acme.sandbox) > 0
    assert "SenseLink:</strong> OK" in page


def test_connection_test_uses_the_stored_secret_for_the_saved_url(acme):
    page = acme.client.post(acme.url, form_data(acme, action="test")).content.decode()
    assert "SenseLink:</strong> OK" in page


# --- The admin --------------------------------------------------------------------------------


def admin_change_url(tenant):
    return reverse("admin:integrations_tenant_change", args=[tenant.pk])


def test_support_sees_the_url_read_only_and_cannot_change_it(world):
    client = Client()
    client.force_login(support_user())
    response = client.get(admin_change_url(world.acme))
    html = response.content.decode()
    assert world.sandbox.senselink_url in html  # shown
    assert 'name="connect_settings-0-senselink_url"' not in html
    assert 'name="connect_settings-0-app_secret"' not in html
    assert 'name="kot_access_token"' not in html

    data = change_form_data(response)
    data["connect_settings-0-senselink_url"] = ELSEWHERE
    data["connect_settings-0-app_secret"] = "support-typed-secret"
    data["kot_access_token"] = "support-typed-token"
    client.post(admin_change_url(world.acme), data)
    tenant = Tenant.objects.get(pk=world.acme.pk)
    setting = tenant.connect_settings.get()
    assert setting.senselink_url == world.sandbox.senselink_url
    assert setting.app_secret == world.sandbox.app_secret
    assert tenant.kot_access_token == world.sandbox.kot_token


def test_support_can_still_press_the_connection_test(world):
    client = Client()
    client.force_login(support_user())
    url = reverse("admin:integrations_tenant_connection_test", args=[world.acme.pk])
    assert client.post(url).status_code == 302


def test_superuser_changes_the_url_only_with_the_secret(world, admin_client):
    data = change_form_data(admin_client.get(admin_change_url(world.acme)))
    data["connect_settings-0-senselink_url"] = ELSEWHERE
    response = admin_client.post(admin_change_url(world.acme), data)
    assert response.status_code == 200
    assert "Appシークレットも入力してください" in response.content.decode()
    assert world.acme.connect_settings.get().senselink_url == world.sandbox.senselink_url

    data["connect_settings-0-app_secret"] = "secret-for-the-new-url"
    response = admin_client.post(admin_change_url(world.acme), data)
    assert response.status_code == 302
    setting = world.acme.connect_settings.get()
    assert (setting.senselink_url, setting.app_secret) == (ELSEWHERE, "secret-for-the-new-url")


# --- One KOT token, one tenant ----------------------------------------------------------------


def test_the_digest_follows_the_token_and_is_no_plain_hash(world):
    tenant = Tenant.objects.get(pk=world.acme.pk)
    assert tenant.kot_token_digest == secret_digest(world.sandbox.kot_token)
    assert len(tenant.kot_token_digest) == 64
    import hashlib

    assert tenant.kot_token_digest != hashlib.sha256(world.sandbox.kot_token.encode()).hexdigest()
    tenant.kot_access_token = "a-new-token-for-acme-1234"
    tenant.save(update_fields=["kot_access_token"])
    assert Tenant.objects.get(pk=tenant.pk).kot_token_digest == secret_digest(
        "a-new-token-for-acme-1234"
    )
    # The column holds ciphertext, the digest column no token.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kot_access_token, kot_token_digest FROM integrations_tenant WHERE id = %s",
            [tenant.pk],
        )
        raw, digest = cursor.fetchone()
    assert raw.startswith("gAAAA") and "a-new-token" not in digest


def test_model_refuses_a_token_another_tenant_holds_naming_neither(noon):
    make_acme()
    globex = make_globex()
    globex.kot_access_token = "kot-token-acme"
    with pytest.raises(ValidationError) as caught:
        globex.full_clean()
    message = caught.value.message_dict["kot_access_token"][0]
    assert "登録できません" in message
    assert "kot-token-acme" not in message and "acme" not in message

    globex.kot_access_token = "kot-token-globex-new"
    globex.full_clean()
    newcomer = Tenant(name="n", slug="n", kot_access_token="kot-token-acme")
    with pytest.raises(ValidationError):
        newcomer.full_clean()


def test_tenant_form_refuses_a_token_another_tenant_holds(acme):
    other = make_initech()
    response = acme.client.post(acme.url, form_data(acme, kot_access_token="kot-token-initech"))
    page = response.content.decode()
    assert "登録できません" in field_error(page, "kot_access_token")
    assert "initech" not in page and "kot-token-initech" not in page
    assert Tenant.objects.get(pk=acme.acme.pk).kot_access_token == acme.sandbox.kot_token
    assert other.kot_access_token == "kot-token-initech"


def test_superuser_admin_refuses_a_token_another_tenant_holds(world, admin_client, noon):
    make_initech()
    data = change_form_data(admin_client.get(admin_change_url(world.acme)))
    data["kot_access_token"] = "kot-token-initech"
    response = admin_client.post(admin_change_url(world.acme), data)
    assert response.status_code == 200
    assert "登録できません" in response.content.decode()
    assert Tenant.objects.get(pk=world.acme.pk).kot_access_token == world.sandbox.kot_token


def test_the_data_migration_fills_digests_of_existing_rows(world):
    import importlib

    Tenant.objects.update(kot_token_digest="")
    migration = importlib.import_module(
        "integrations.migrations.0005_insiders_token_digest_fitted_codes"
    )
    from django.apps import apps

    migration.fill_digests(apps, None)
    assert Tenant.objects.get(pk=world.acme.pk).kot_token_digest == secret_digest(
        world.sandbox.kot_token
    )


def test_a_saved_change_is_the_new_baseline(acme):
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    setting.senselink_url = ELSEWHERE
    setting.enter_app_secret("secret-for-elsewhere")
    setting.full_clean()
    setting.save()
    setting.senselink_url = "https://another.example.net/"
    with pytest.raises(ValidationError):
        setting.full_clean()  # the secret typed for the last change does not carry over
