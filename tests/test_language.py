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
