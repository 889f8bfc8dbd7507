"""Secrets are encrypted at rest, read back, and fail closed on a wrong key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from integrations.fields import SecretDecryptionError
from integrations.models import ConnectSetting, Tenant

pytestmark = pytest.mark.django_db

TOKEN = "kot-token-4f9a1c2b7e"
SECRET = "senselink-app-secret-77d0"


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def stored():
    tenant = Tenant.objects.create(name="暗号株式会社", slug="crypt", kot_access_token=TOKEN)
    setting = ConnectSetting.objects.create(tenant=tenant, app_key="k", app_secret=SECRET)
    return tenant, setting


def test_raw_columns_hold_fernet_tokens_not_plaintext(stored):
    tenant, setting = stored
    token_column = raw("integrations_tenant", "kot_access_token", tenant.pk)
    secret_column = raw("integrations_connectsetting", "app_secret", setting.pk)
    assert token_column.startswith("gAAAA") and TOKEN not in token_column
    assert secret_column.startswith("gAAAA") and SECRET not in secret_column


def test_secrets_read_back(stored):
    tenant, setting = stored
    assert Tenant.objects.get(pk=tenant.pk).kot_access_token == TOKEN
    assert ConnectSetting.objects.get(pk=setting.pk).app_secret == SECRET
    assert list(Tenant.objects.filter(pk=tenant.pk).values_list("kot_access_token", flat=True)) == [
        TOKEN
    ]


def test_a_wrong_key_raises_instead_of_returning_ciphertext(stored, settings):
    tenant, _setting = stored
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    with pytest.raises(SecretDecryptionError) as caught:
        Tenant.objects.get(pk=tenant.pk)
    assert TOKEN not in str(caught.value)
    assert "gAAAA" not in str(caught.value)


def test_old_keys_still_decrypt_after_rotation(stored, settings):
    tenant, _setting = stored
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEY]
    assert Tenant.objects.get(pk=tenant.pk).kot_access_token == TOKEN


def test_empty_secret_stays_empty(db):
    tenant = Tenant.objects.create(name="空", slug="empty")
    assert raw("integrations_tenant", "kot_access_token", tenant.pk) == ""
    assert Tenant.objects.get(pk=tenant.pk).kot_access_token == ""
