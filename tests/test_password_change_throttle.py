"""The password-change form is throttled like the login: wrong old passwords lock out."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW = "a-brand-new-passphrase-42"


@pytest.fixture
def axes_on(settings):
    from axes.handlers.proxy import AxesProxyHandler
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    AxesProxyHandler.implementation = None  # re-read settings
    yield
    AccessAttempt.objects.all().delete()
    AxesProxyHandler.implementation = None


def change(client, old):
    return client.post(
        reverse("portal:password_change"),
        {"old_password": old, "new_password1": NEW, "new_password2": NEW},
    )


def test_wrong_old_passwords_lock_the_account_out_with_a_japanese_page(world, axes_on, settings):
    settings.DEBUG = False
    client = Client()
    client.force_login(world.acme_user)
    first = change(client, "guess-1")
    assert first.status_code == 200  # the form says the old password is wrong
    assert "old_password" in first.context["form"].errors
    change(client, "guess-2")
    response = change(client, "guess-3")
    assert response.status_code == 429
    assert "一時停止" in response.content.decode()
    # Locked out: even the right old password no longer changes it.
    assert change(client, PASSWORD).status_code == 429
    world.acme_user.refresh_from_db()
    assert world.acme_user.check_password(PASSWORD)
    # And the login is locked for this account from this address too.
    login = Client().post(reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD})
    assert login.status_code == 429


def test_the_right_old_password_changes_it(world, axes_on):
    client = Client()
    client.force_login(world.acme_user)
    response = change(client, PASSWORD)
    assert response.status_code == 302
    world.acme_user.refresh_from_db()
    assert world.acme_user.check_password(NEW)
