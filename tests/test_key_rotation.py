"""reencrypt_secrets rotates the encryption key, and refuses to run over an undecryptable row."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.models import ConnectSetting, Tenant

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_rotation_re_encrypts_every_secret_under_the_new_key(settings):
    settings.FIELD_ENCRYPTION_KEY = [OLD]
    tenant = Tenant.objects.create(name="回転", slug="rotate", kot_access_token="tok-123")
    setting = ConnectSetting.objects.create(tenant=tenant, app_secret="sec-456")
    settings.FIELD_ENCRYPTION_KEY = [NEW, OLD]
    call_command("reencrypt_secrets")
    token_cipher = raw("integrations_tenant", "kot_access_token", tenant.pk)
    secret_cipher = raw("integrations_connectsetting", "app_secret", setting.pk)
    assert Fernet(NEW).decrypt(token_cipher.encode()) == b"tok-123"
    assert Fernet(NEW).decrypt(secret_cipher.encode()) == b"sec-456"
    settings.FIELD_ENCRYPTION_KEY = [NEW]  # the old key can go now
    assert Tenant.objects.get(pk=tenant.pk).kot_access_token == "tok-123"
    assert ConnectSetting.objects.get(pk=setting.pk).app_secret == "sec-456"


def test_an_undecryptable_row_stops_the_command_before_any_change(settings):
    settings.FIELD_ENCRYPTION_KEY = [OLD]
    good = Tenant.objects.create(name="良", slug="good", kot_access_token="tok-good")
    lost = Tenant.objects.create(name="失", slug="lost")
    with connection.cursor() as cursor:  # written with a key nobody has any more
        cursor.execute(
            "UPDATE integrations_tenant SET kot_access_token = %s WHERE id = %s",
            [Fernet(Fernet.generate_key()).encrypt(b"tok-lost").decode(), lost.pk],
        )
    before = raw("integrations_tenant", "kot_access_token", good.pk)
    settings.FIELD_ENCRYPTION_KEY = [NEW, OLD]
    with pytest.raises(CommandError, match=f"Tenant #{lost.pk} kot_access_token"):
        call_command("reencrypt_secrets")
    assert raw("integrations_tenant", "kot_access_token", good.pk) == before


def test_check_only_reports(settings, capsys):
    Tenant.objects.create(name="確", slug="check", kot_access_token="tok")
    call_command("reencrypt_secrets", "--check")
    assert "All 1 stored secrets decrypt." in capsys.readouterr().out


def test_rotation_refreshes_the_token_digests(settings):
    from integrations.fields import secret_digest

    settings.FIELD_ENCRYPTION_KEY = [OLD]
    tenant = Tenant.objects.create(name="回転", slug="rotate", kot_access_token="tok-123456")
    old_digest = Tenant.objects.get(pk=tenant.pk).kot_token_digest
    settings.FIELD_ENCRYPTION_KEY = [NEW, OLD]
    call_command("reencrypt_secrets")
    new_digest = Tenant.objects.get(pk=tenant.pk).kot_token_digest
    assert new_digest == secret_digest("tok-123456") != old_digest
    # The one-token rule still finds the holder under the new key.
    other = Tenant(name="別", slug="other", kot_access_token="tok-123456")
    assert other.kot_token_problem("tok-123456")
