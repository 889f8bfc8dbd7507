"""変更履歴: changes of a tenant's settings, company data and members, by the tenant or by
support, with who and when; secrets appear as 「変更」 and neither their values nor their
ciphertexts are stored anywhere in the audit table. Tenants see only their own history."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.db import connection
from django.test import Client
from django.urls import reverse

from integrations import audit
from integrations.models import ConnectSetting, Tenant, TenantMembership
from tests.admin_helpers import change_form_data

TENANT_SECRET = "tenant-typed-app-secret-5555"
TENANT_TOKEN = "tenant-typed-kot-token-6666"
SUPPORT_TOKEN = "support-typed-kot-token-7777"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def settings_form(team, **changes) -> dict:
    s = team.setting
    data = {
        "kot_access_token": "",
        "senselink_url": s.senselink_url,
        "app_key": s.app_key,
        "app_secret": "",
        "attendance_mode": "clock_in",
        "attendance_trigger": "manual",
        "attendance_hour": "3",
        "attendance_target_day": "previous",
        "employee_trigger": "manual",
        "employee_interval": "daily",
        "employee_day": "1",
        "employee_hour": "2",
        "resigned_policy": "keep",
        "deletion_guard_count": "10",
        "deletion_guard_percent": "20",
        "creation_guard_count": "10",
        "creation_guard_percent": "20",
        "person_group_ids": "",
        "action": "save",
    }
    data.update(changes)
    return data


def raw_secrets(team) -> list[str]:
    """The ciphertexts as stored in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kot_access_token FROM integrations_tenant WHERE id = %s", [team.acme.pk]
        )
        (token,) = cursor.fetchone()
        cursor.execute(
            "SELECT app_secret, push_token FROM integrations_connectsetting WHERE id = %s",
            [team.setting.pk],
        )
        secret, push_token = cursor.fetchone()
    assert token.startswith("gAAAA") and secret.startswith("gAAAA")
    return [token, secret, push_token]


def audit_table_text() -> str:
    """Every column of every audit row, as text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {LogEntry._meta.db_table}")
        return "\n".join(" ".join(str(v) for v in row) for row in cursor.fetchall())


@pytest.fixture
def changed(team, mailoutbox):
    """alice changes settings and both secrets; sam (support) changes the subscription, the KOT
    token and the push URL; alice makes victor an administrator."""
    LogEntry.objects.all().delete()  # the world's own creation rows
    alice = logged_in(team.alice)
    response = alice.post(
        reverse("portal:connect_settings", args=[team.setting.pk]),
        settings_form(
            team,
            attendance_hour="4",
            app_secret=TENANT_SECRET,
            kot_access_token=TENANT_TOKEN,
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.post(
        reverse("portal:member_update", args=[team.victor.membership.pk]),
        {"role": "admin", "is_active": "on"},
    )

    sam = logged_in(team.sam)
    url = reverse("admin:integrations_tenant_change", args=[team.acme.pk])
    data = change_form_data(sam.get(url))
    data["subscription_status"] = "suspended"
    data["kot_access_token"] = SUPPORT_TOKEN
    response = sam.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    sam.post(reverse("admin:integrations_tenant_push_token", args=[team.acme.pk]))
    team.old_push_token = team.setting.push_token
    return team


def test_the_tenant_sees_who_changed_what_with_secrets_masked(changed):
    team = changed
    Tenant.objects.filter(pk=team.acme.pk).update(subscription_status="active")
    page = logged_in(team.victor).get(reverse("portal:history")).content.decode()
    assert "変更履歴" in page
    assert "勤怠連携の実行時刻(時)</strong>: 3 → 4" in page
    assert "Appシークレット</strong>: 「変更」" in page
    assert "KING OF TIME アクセストークン</strong>: 「変更」" in page
    assert "プッシュ受信トークン</strong>: 「変更」" in page
    assert "契約状態</strong>: 利用中 → 停止中" in page
    assert "権限</strong>: 閲覧者 → 管理者" in page
    assert ">alice<" in page and ">サポート<" in page
    assert "sam" not in page  # support staff are not named to the customer
    for secret in (TENANT_SECRET, TENANT_TOKEN, SUPPORT_TOKEN, *raw_secrets(team)):
        assert secret not in page


def test_no_secret_nor_ciphertext_is_stored_in_the_audit_table(changed):
    team = changed
    text = audit_table_text()
    assert "attendance_hour" in text  # the rows are there
    assert LogEntry.objects.filter(additional_data__tenant_id=team.acme.pk).count() >= 5
    for secret in (TENANT_SECRET, TENANT_TOKEN, SUPPORT_TOKEN, *raw_secrets(team)):
        assert secret not in text
    assert team.setting.app_secret not in text  # the world's original secret
    assert "gAAAA" not in text


def test_support_sees_the_history_in_the_admin_masked(changed):
    team = changed
    sam = logged_in(team.sam)
    url = reverse("admin:auditlog_logentry_changelist") + f"?tenant={team.acme.pk}"
    page = sam.get(url).content.decode()
    assert "「変更」" in page and "サポート(sam)" in page and "alice" in page
    for secret in (TENANT_SECRET, TENANT_TOKEN, SUPPORT_TOKEN, *raw_secrets(team)):
        assert secret not in page
    tenant_page = sam.get(reverse("admin:integrations_tenant_change", args=[team.acme.pk]))
    assert "変更履歴を見る" in tenant_page.content.decode()


def test_a_tenant_sees_only_its_own_history(changed):
    team = changed
    gina = logged_in(team.gina)
    page = gina.get(reverse("portal:history")).content.decode()
    assert "変更履歴はまだありません" in page
    ConnectSetting.objects.get(tenant=team.globex).save()  # nothing changed: no row
    TenantMembership.objects.filter(user=team.gina).update(role="admin")
    assert "acme" not in gina.get(reverse("portal:history")).content.decode()


def test_every_secret_looking_field_of_an_audited_model_is_masked_or_untracked():
    for model in (Tenant, ConnectSetting, TenantMembership):
        assert auditlog.contains(model)
        fields = auditlog.get_model_fields(model)
        tracked = set(fields["include_fields"]) - set(fields["exclude_fields"])
        for field in model._meta.concrete_fields:
            if audit.SECRET_NAME.search(field.name) and field.name in tracked:
                assert field.name in fields["mask_fields"], (model, field.name)
    assert {"kot_access_token"} <= set(auditlog.get_model_fields(Tenant)["mask_fields"])
    assert {"app_secret", "push_token", "app_key"} <= set(
        auditlog.get_model_fields(ConnectSetting)["mask_fields"]
    )


def test_the_history_page_is_one_click_away_in_english(changed):
    Tenant.objects.filter(pk=changed.acme.pk).update(subscription_status="active")
    client = logged_in(changed.alice)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("portal:history")).content.decode()
    assert "Change history" in page and "&quot;changed&quot;" in page
