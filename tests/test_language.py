"""Japanese by default, whatever the browser asks; English when the person chooses it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_japanese_even_for_an_english_browser():
    response = Client().get(reverse("portal:login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response["Content-Language"] == "ja"
    assert "ログイン" in response.content.decode()


def test_english_when_chosen():
    client = Client()
    response = client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert response.status_code == 302
    page = client.get(reverse("portal:login")).content.decode()
    assert 'lang="en"' in page
    assert "Log in" in page or "Login" in page


def test_the_log_pager_in_both_languages(world):
    """The 連携ログ pager is Japanese by default; English from the catalogue when chosen."""
    from tests.conftest import PASSWORD
    from tests.tenant_pages import show_world

    show_world(world)
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    japanese = client.get(reverse("portal:connect_list")).content.decode()
    assert "表示件数" in japanese and "5件中 1〜5件" in japanese
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(reverse("portal:connect_list")).content.decode()
    assert "Rows per page" in english and "1–5 of 5" in english
