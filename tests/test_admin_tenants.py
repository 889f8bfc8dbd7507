"""The tenant list and page: schedule, last runs at a glance, filters, and the settings inline."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.urls import reverse

from integrations.models import ConnectSetting
from tests.admin_helpers import change_form_data, make_run, support_user
from tests.conftest import JST
from tests.world import make_acme, make_globex, make_initech

pytestmark = pytest.mark.django_db

TENANTS = reverse("admin:integrations_tenant_changelist")


def listed(response) -> list[str]:
    return [t.slug for t in response.context["cl"].result_list]


@pytest.fixture
def tenants(noon):
    acme = make_acme(
        attendance_trigger="scheduled",
        attendance_hour=3,
        employee_trigger="scheduled",
        employee_interval="monthly",
        employee_day=1,
        employee_hour=2,
    )
    globex = make_globex(status="suspended")
    initech = make_initech(status="not_subscribed")
    return acme, globex, initech


def test_list_shows_schedule_and_last_runs(admin_client, tenants):
    acme, globex, _ = tenants
    make_run(
        acme, kind="employee", status="success", started_at=datetime(2026, 11, 1, 2, 0, tzinfo=JST)
    )
    make_run(acme, status="failure", started_at=datetime(2026, 11, 24, 3, 0, tzinfo=JST))
    make_run(acme, status="partial", started_at=datetime(2026, 11, 25, 3, 0, tzinfo=JST))

    html = admin_client.get(TENANTS).content.decode()

    assert "勤怠 毎日3時(前日), 社員 毎月1日2時" in html
    assert "手動" in html  # globex's and initech's
    assert "run-status-success" in html and "2026-11-01 02:00" in html
    assert "run-status-partial" in html and "2026-11-25 03:00" in html  # the latest only
    assert "run-status-failure" not in html
    runs = reverse("admin:integrations_syncrun_changelist")
    assert f"{runs}?tenant={acme.pk}&amp;kind=attendance" in html


def test_filter_by_last_result(admin_client, tenants):
    acme, globex, initech = tenants
    make_run(acme, status="failure", started_at=datetime(2026, 11, 24, 3, tzinfo=JST))
    make_run(acme, status="success", started_at=datetime(2026, 11, 25, 3, tzinfo=JST))
    make_run(globex, kind="employee", status="failure")
    make_run(initech, status="partial")

    assert listed(admin_client.get(TENANTS, {"last_result": "failure"})) == ["globex"]
    assert listed(admin_client.get(TENANTS, {"last_result": "problem"})) == ["globex", "initech"]


def test_filter_by_subscription_and_search(admin_client, tenants):
    assert listed(admin_client.get(TENANTS, {"subscription_status": "suspended"})) == ["globex"]
    assert listed(admin_client.get(TENANTS, {"q": "initech"})) == ["initech"]
    assert listed(admin_client.get(TENANTS, {"q": "acme 株式"})) == ["acme"]


def test_support_sees_the_list_and_failure_link(client, tenants):
    client.force_login(support_user())
    response = client.get(TENANTS)
    assert response.status_code == 200
    assert reverse("admin:integrations_syncrun_failed") in response.content.decode()


def test_change_page_edits_the_connect_setting_inline(admin_client, tenants):
    acme = tenants[0]
    url = reverse("admin:integrations_tenant_change", args=[acme.pk])
    data = change_form_data(admin_client.get(url))
    data["connect_settings-0-attendance_hour"] = "5"
    data["connect_settings-0-attendance_target_day"] = "same"

    response = admin_client.post(url, data)

    assert response.status_code == 302
    setting = ConnectSetting.objects.get(tenant=acme)
    assert (setting.attendance_hour, setting.attendance_target_day) == (5, "same")


def test_change_page_refuses_a_schedule_in_a_kot_window(admin_client, tenants):
    acme = tenants[0]
    url = reverse("admin:integrations_tenant_change", args=[acme.pk])
    data = change_form_data(admin_client.get(url))
    data["connect_settings-0-attendance_hour"] = "9"

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "API利用禁止時間帯" in response.content.decode()
    assert ConnectSetting.objects.get(tenant=acme).attendance_hour == 3
