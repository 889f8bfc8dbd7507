"""With DEBUG off the error pages (400, 403, 404, 500) and the lock-out page are Japanese."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.views import defaults

from integrations.models import TermsConsent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_pages(settings):
    settings.DEBUG = False


def test_404_is_japanese(production_pages):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "ページが見つかりません" in page
    assert 'lang="ja"' in page
    assert "Not Found" not in page


def test_403_is_japanese_for_a_csrf_failure(production_pages, world):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD})
    assert response.status_code == 403
    page = response.content.decode()
    assert "権限がありません" in page and "再読み込み" in page
    assert "Forbidden" not in page


@pytest.mark.parametrize(
    "view,status,text",
    [
        (defaults.bad_request, 400, "リクエストの内容が正しくありません"),
        (defaults.permission_denied, 403, "権限がありません"),
        (defaults.page_not_found, 404, "ページが見つかりません"),
    ],
)
def test_error_views_use_the_japanese_templates(production_pages, view, status, text):
    request = HttpRequest()
    request.path = "/x/"
    response = view(request, Exception("x"))
    assert response.status_code == status
    assert text in response.content.decode()


def test_500_is_japanese_without_any_context(production_pages):
    response = defaults.server_error(HttpRequest())
    assert response.status_code == 500
    page = response.content.decode()
    assert "サーバーでエラーが発生しました" in page
    assert "Server Error" not in page


def test_a_crash_answers_the_japanese_500_page(production_pages, world, monkeypatch, settings):
    from portal import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "connect_setting", boom)
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client = Client(raise_request_exception=False)
    client.force_login(world.acme_user)
    response = client.get(reverse("portal:connect_list"))
    assert response.status_code == 500
    assert "サーバーでエラーが発生しました" in response.content.decode()
