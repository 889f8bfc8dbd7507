"""createtenantuser makes a tenant administrator, and refuses an unknown tenant."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from integrations.models import Tenant

pytestmark = pytest.mark.django_db


def test_creates_a_tenant_administrator():
    tenant = Tenant.objects.create(
        name="顧客株式会社", slug="kokyaku", subscription_status="active"
    )
    call_command("createtenantuser", "kokyaku", "hr-admin", password="a-long-enough-pass-42")
    user = get_user_model().objects.get(username="hr-admin")
    assert user.check_password("a-long-enough-pass-42")
    assert user.membership.tenant == tenant
    assert not user.is_staff


def test_refuses_an_unknown_tenant():
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("createtenantuser", "nope", "someone", password="a-long-enough-pass-42")
    assert not get_user_model().objects.filter(username="someone").exists()


def test_refuses_a_weak_password():
    Tenant.objects.create(name="顧客株式会社", slug="kokyaku")
    with pytest.raises(CommandError, match="Password refused"):
        call_command("createtenantuser", "kokyaku", "weak", password="123")
    assert not get_user_model().objects.filter(username="weak").exists()


@pytest.mark.parametrize("username", ["", "   ", "\t", "hr admin", "x" * 151])
def test_refuses_a_blank_whitespace_or_invalid_username(username):
    Tenant.objects.create(name="顧客株式会社", slug="kokyaku")
    with pytest.raises(CommandError, match="Username refused"):
        call_command("createtenantuser", "kokyaku", username, password="a-long-enough-pass-42")
    assert not get_user_model().objects.exists()
