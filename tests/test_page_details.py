"""Small things a browser notices: /favicon.ico exists, no two elements of a tenant page share
an id (手動実行 had two id_kind), and number inputs offer their valid range."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.tenant_pages import TENANT_PAGES, show_world

pytestmark = pytest.mark.django_db


def test_the_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO


@pytest.fixture
def shown(world):
    return show_world(world)


@pytest.mark.parametrize("page", TENANT_PAGES, ids=[page.name for page in TENANT_PAGES])
def test_no_two_elements_share_an_id(shown, page):
    client = Client()
    if page.user:
        assert client.login(username=page.user, password=PASSWORD)
    html = client.get(page.url(shown)).content.decode()
    ids = Counter(re.findall(r'\sid="([^"]+)"', html))
    assert [name for name, n in ids.items() if n > 1] == []


def test_the_manual_run_forms_keep_their_ids_after_an_error(shown):
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    url = reverse("portal:manual_run", args=[shown.setting.pk])
    html = client.post(url, {"kind": "attendance", "target_date": ""}).content.decode()
    assert "日付を入力してください。" in html
    assert html.count('id="id_kind"') == 1 and html.count('id="employee_kind"') == 1
    assert '<label for="id_target_date">' in html


def test_the_interval_and_shares_offer_their_valid_range(shown):
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    html = client.get(reverse("portal:connect_settings", args=[shown.setting.pk])).content.decode()
    interval = re.search(r'<input[^>]*name="realtime_interval_minutes"[^>]*>', html).group(0)
    assert 'min="1"' in interval and 'max="60"' in interval
    for name in ("creation_guard_percent", "deletion_guard_percent"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'min="0"' in field and 'max="100"' in field
