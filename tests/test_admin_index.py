"""The support admin's index: the portal's own app (連携) first, its models in the desk's order,
the libraries' apps under Japanese names."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.admin_helpers import support_user
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def index(user) -> tuple[list[str], list[str]]:
    client = Client()
    client.force_login(user)
    response = client.get("/admin/")
    apps = response.context["app_list"]
    return [app["name"] for app in apps], [model["name"] for model in apps[0]["models"]]


def test_the_desk_sees_the_portal_first_then_the_queue_the_lockouts_and_the_audit_in_japanese():
    apps, models = index(support_user())
    assert apps == ["連携", "タスクキュー", "ログイン制限", "監査ログ"]
    assert models == [
        "テナント",
        "連携ログ",
        "エラー詳細",
        "打刻台帳",
        "テナント利用者",
        "利用規約同意",
    ]


def test_a_superuser_sees_the_portal_first_too():
    root = get_user_model().objects.create_superuser("root", "root@vendor.example.jp", PASSWORD)
    apps, _models = index(root)
    assert apps[0] == "連携"
    assert set(apps[1:]) == {
        "タスクキュー",
        "ログイン制限",
        "認証と認可",
        "監査ログ",
        "二要素認証(認証アプリ)",
        "二要素認証(回復コード)",
    }
