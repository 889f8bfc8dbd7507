"""The connection test and the preview under a hostile upstream (issue 13, item 2): a SenseLink
or KOT answering JSON nested 200,000 deep or a gzip bomb gets a clear Japanese message on a
normal page, never a 500 and never the whole body shown back."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse

from connectors.sandbox.server import gzip_bomb
from integrations.models import SyncRun, TermsConsent
from tests.hostile_helpers import measure
from tests.sync_world import DAY

pytestmark = pytest.mark.django_db

MODES = {
    "deep_nesting": "の応答を読み取れませんでした(入れ子が深すぎます)。",
    "gzip_bomb": "の応答が大きすぎるため、読み込みを中止しました(上限 32 MB)。",
}


@pytest.fixture
def tenant_page(world, client):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)
    world.client = client
    world.setting = world.acme.connect_settings.get()
    return world


def arm(sandbox, mode: str, service: str) -> None:
    gzip_bomb()  # built once, outside the measurement
    sandbox.faults.add(service, mode, times=None)


def settings_form(world, **changes) -> dict:
    data = {
        "kot_access_token": "",
        "senselink_url": world.sandbox.senselink_url,
        "app_key": world.sandbox.app_key,
        "app_secret": "",
        "attendance_mode": "clock_in_out",
        "attendance_trigger": "scheduled",
        "attendance_hour": "3",
        "attendance_target_day": "previous",
        "employee_trigger": "scheduled",
        "employee_interval": "monthly",
        "employee_day": "31",
        "employee_hour": "2",
        "resigned_policy": "keep",
        "deletion_guard_count": "10",
        "deletion_guard_percent": "20",
        "creation_guard_count": "10",
        "creation_guard_percent": "20",
        "person_group_ids": "",
        "action": "test",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["senselink", "kot"])
def test_tenant_connection_test_answers_a_page_with_the_reason(tenant_page, mode, service):
    arm(tenant_page.sandbox, mode, service)
    url = reverse("portal:connect_settings", args=[tenant_page.setting.pk])
    with measure() as cost:
        response = tenant_page.client.post(url, settings_form(tenant_page))
    assert response.status_code == 200
    page = response.content.decode()
    name = "SenseLink" if service == "senselink" else "KING OF TIME"
    assert f"{name}:</strong> NG" in page
    assert name + MODES[mode] in page
    assert "[[[[" not in page and len(page) < 200_000
    assert cost.seconds < 10 and cost.rss_growth_mib < 160, cost


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["senselink", "kot"])
def test_admin_connection_test_reports_the_reason(client, admin_user, world, mode, service):
    arm(world.sandbox, mode, service)
    client.force_login(admin_user)
    url = reverse("admin:integrations_tenant_connection_test", args=[world.acme.pk])
    response = client.post(url)
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    name = "SenseLink" if service == "senselink" else "KING OF TIME"
    assert any(name + MODES[mode] in m for m in messages), messages
    page = client.get(response["Location"])
    assert page.status_code == 200


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kind", "service"),
    [("employee", "kot"), ("employee", "senselink"), ("attendance", "senselink")],
)
def test_preview_page_shows_the_reason(tenant_page, mode, kind, service):
    arm(tenant_page.sandbox, mode, service)
    url = reverse("portal:connect_preview", args=[tenant_page.setting.pk])
    query = {"kind": kind}
    if kind == "attendance":
        query["target_date"] = DAY.isoformat()
    response = tenant_page.client.get(url, query)
    assert response.status_code == 200
    page = response.content.decode()
    name = "SenseLink" if service == "senselink" else "KING OF TIME"
    assert name + MODES[mode] in page
    assert "内部エラー" not in page
    assert not SyncRun.objects.exists()
