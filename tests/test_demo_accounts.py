"""`manage.py demo`: the customer, the support desk's account (サポート group, not a superuser)
and a separate superuser, as the README lists them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_demo_makes_a_support_account_and_a_separate_superuser(settings):
    settings.DEBUG = True
    User = get_user_model()
    User.objects.create_user("support", is_staff=True, is_superuser=True)  # an older demo's
    out = StringIO()
    call_command("demo", stdout=out)

    support = User.objects.get(username="support")
    assert support.is_staff and not support.is_superuser
    assert list(support.groups.values_list("name", flat=True)) == ["サポート"]
    assert support.has_perm("integrations.add_syncrun")  # runs syncs
    assert support.has_perm("axes.delete_accessattempt")  # unlocks logins
    root = User.objects.get(username="admin")
    assert root.is_superuser and root.check_password("admin-portal-2026")
    demo = User.objects.get(username="demo")
    assert not demo.is_staff and demo.membership.tenant.slug == "demo"
    text = out.getvalue()
    assert "support / password support-portal-2026" in text and "サポート" in text
    assert "admin / password admin-portal-2026" in text and "superuser" in text
