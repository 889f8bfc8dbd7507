"""The tenant page's buttons: POST-only, permission-checked, recorded, and they create the right run."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from integrations.models import SyncRun
from tests.admin_helpers import staff_user, support_user
from tests.conftest import make_tenant_user
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db


def run_url(tenant, kind):
    return reverse("admin:integrations_tenant_run", args=[tenant.pk, kind])


def connection_test_url(tenant):
    return reverse("admin:integrations_tenant_connection_test", args=[tenant.pk])


def change_url(tenant):
    return reverse("admin:integrations_tenant_change", args=[tenant.pk])


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def acme(noon):
    return make_acme()


def test_employee_button_creates_a_manual_run_by_the_user(client, admin_user, acme):
    client.force_login(admin_user)
    response = client.post(run_url(acme, "employee"))

    assert response.status_code == 302
    assert response["Location"] == change_url(acme)
    run = SyncRun.objects.get()
    assert (run.tenant, run.kind, run.trigger) == (acme, "employee", "manual")
    assert run.target_date is None
    assert run.triggered_by == admin_user
    assert run.triggered_by_label == admin_user.username
    assert any(f"社員情報連携 #{run.pk}" in text for text in texts(response))


def test_attendance_button_creates_a_run_for_the_chosen_date(client, acme):
    desk = support_user()
    client.force_login(desk)
    response = client.post(run_url(acme, "attendance"), {"target_date": "2026-11-20"})

    assert response.status_code == 302
    run = SyncRun.objects.get()
    assert (run.kind, run.trigger, run.target_date) == ("attendance", "manual", date(2026, 11, 20))
    assert run.triggered_by == desk
    assert any(f"勤怠連携 #{run.pk} (2026年11月20日)" in text for text in texts(response))


def test_button_press_is_in_the_admin_history(client, admin_user, acme):
    client.force_login(admin_user)
    client.post(run_url(acme, "attendance"), {"target_date": "2026-11-20"})

    run = SyncRun.objects.get()
    entry = LogEntry.objects.get(object_id=str(acme.pk))
    assert entry.user == admin_user
    assert f"勤怠連携 #{run.pk}" in entry.get_change_message()


def test_attendance_button_without_a_date_creates_nothing(client, admin_user, acme):
    client.force_login(admin_user)
    response = client.post(run_url(acme, "attendance"), {"target_date": ""})

    assert response.status_code == 302
    assert not SyncRun.objects.exists()
    assert "勤怠連携の対象日を正しく入力してください。" in texts(response)


def test_second_press_joins_the_queued_run(client, admin_user, acme):
    client.force_login(admin_user)
    client.post(run_url(acme, "employee"))
    response = client.post(run_url(acme, "employee"))

    run = SyncRun.objects.get()
    assert any(f"社員情報連携 #{run.pk} は既に" in text for text in texts(response))
    assert LogEntry.objects.count() == 1


def test_refused_run_shows_why(client, admin_user, noon):
    not_subscribed = make_globex(status="not_subscribed")
    client.force_login(admin_user)
    response = client.post(run_url(not_subscribed, "employee"))

    assert response.status_code == 302
    assert not SyncRun.objects.exists()
    assert "ご利用申込が有効でないため、連携を実行できません。" in texts(response)


@pytest.mark.parametrize("kind", ["employee", "attendance"])
def test_buttons_refuse_get(client, admin_user, acme, kind):
    client.force_login(admin_user)
    assert client.get(run_url(acme, kind)).status_code == 405
    assert client.get(connection_test_url(acme)).status_code == 405
    assert not SyncRun.objects.exists()


def test_buttons_refuse_staff_without_the_trigger_permission(client, acme):
    client.force_login(staff_user("viewer", "integrations.view_tenant"))
    assert client.post(run_url(acme, "employee")).status_code == 403
    assert client.post(connection_test_url(acme)).status_code == 403
    # Triggering also needs to see the tenant.
    client.force_login(staff_user("blind", "integrations.add_syncrun"))
    assert client.post(run_url(acme, "employee")).status_code == 403
    assert not SyncRun.objects.exists()


def test_buttons_refuse_a_tenant_user_and_send_nobody_to_the_login(client, acme):
    client.force_login(make_tenant_user(acme, "acme-hr"))
    assert client.post(run_url(acme, "employee")).status_code == 403
    client.logout()
    response = client.post(run_url(acme, "employee"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not SyncRun.objects.exists()


def test_unknown_kind_or_tenant_is_404(client, admin_user, acme):
    client.force_login(admin_user)
    assert client.post(run_url(acme, "payroll")).status_code == 404
    assert (
        client.post(reverse("admin:integrations_tenant_run", args=[999, "employee"])).status_code
        == 404
    )


def test_change_page_shows_buttons_only_to_those_who_may_press_them(client, acme):
    client.force_login(support_user())
    page = client.get(change_url(acme)).content.decode()
    assert "接続テスト" in page and "社員情報連携を実行" in page and "勤怠連携を実行" in page
    assert 'name="target_date"' in page

    client.force_login(staff_user("viewer", "integrations.view_tenant"))
    page = client.get(change_url(acme)).content.decode()
    assert "社員情報連携を実行" not in page


def test_connection_test_reports_both_apis(client, admin_user, world):
    client.force_login(admin_user)
    response = client.post(connection_test_url(world.acme))

    assert response.status_code == 302
    messages = texts(response)
    assert "KING OF TIME: アクセストークンは有効です。" in messages
    assert any(m.startswith("SenseLink: 接続できました") for m in messages)
    assert not SyncRun.objects.exists()
    assert "接続テスト" in LogEntry.objects.get().get_change_message()


def test_connection_test_says_what_is_wrong(client, admin_user, world):
    world.acme.kot_access_token = "not-the-right-token"
    world.acme.save()
    client.force_login(admin_user)
    response = client.post(connection_test_url(world.acme))

    messages = texts(response)
    kot = next(m for m in messages if m.startswith("KING OF TIME: "))
    assert kot != "KING OF TIME: アクセストークンは有効です。"
    assert "not-the-right-token" not in " ".join(messages)
