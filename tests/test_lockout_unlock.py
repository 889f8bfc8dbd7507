"""A locked-out login: the page says how long to wait; the support desk (サポート, not a
superuser) sees the lock in a Japanese admin and unlocks it, and the person logs in at once."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from tests.admin_helpers import staff_user, support_user
from tests.conftest import PASSWORD, make_tenant_user
from tests.world import make_acme

pytestmark = pytest.mark.django_db

LOCKOUTS = reverse("admin:axes_accessattempt_changelist")


@pytest.fixture
def locked(settings):
    """acme-hr, locked out after 3 wrong passwords (axes on, as in production)."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = 0.5
    make_tenant_user(make_acme(), "acme-hr")
    client = Client()
    for _ in range(3):
        response = client.post(reverse("portal:login"), {"username": "acme-hr", "password": "x"})
    assert response.status_code == 429
    return response


def test_the_lockout_page_says_how_long_to_wait_and_who_unlocks(locked):
    page = locked.content.decode()
    assert "最後に間違えてから30分たつと、もう一度ログインできます。" in page
    assert "サポートにロックの解除をご依頼ください" in page


def test_without_a_cool_off_the_page_says_support_must_unlock(locked, settings):
    settings.AXES_COOLOFF_TIME = None
    response = Client().post(reverse("portal:login"), {"username": "acme-hr", "password": "x"})
    assert response.status_code == 429
    assert "サポートがロックを解除するまで、ログインできません。" in response.content.decode()


def test_the_desk_unlocks_a_login_and_the_person_logs_in_at_once(locked):
    desk = Client()
    desk.force_login(support_user())
    listing = desk.get(LOCKOUTS, {"locked": "yes"}).content.decode()
    assert "acme-hr" in listing and "ロック中" in listing
    assert "選択したログインのロックを解除" in listing
    attempt = AccessAttempt.objects.get(username="acme-hr")

    response = desk.post(LOCKOUTS, {"action": "unlock", "_selected_action": [attempt.pk]})

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert LogEntry.objects.get().get_change_message() == "ロックを解除"
    person = Client()
    answer = person.post(reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD})
    assert answer.status_code == 302  # in, not 429


def test_a_viewer_without_the_unlock_permission_cannot_unlock(locked):
    viewer = Client()
    viewer.force_login(staff_user("viewer", "axes.view_accessattempt"))
    listing = viewer.get(LOCKOUTS).content.decode()
    assert "acme-hr" in listing and "ロックを解除" not in listing
    attempt = AccessAttempt.objects.get()
    viewer.post(LOCKOUTS, {"action": "unlock", "_selected_action": [attempt.pk]})
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
