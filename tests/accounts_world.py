"""The small world of the accounts tests: acme (active) with its administrator alice and its
viewer victor, globex (another customer) with its administrator gina, and the support desk's
staff member sam. No sandbox: nothing here talks to KOT or SenseLink."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from integrations.models import TenantMembership, TermsConsent
from tests.conftest import PASSWORD
from tests.world import make_acme, make_globex

LINK = re.compile(r"https?://\S+")


def member(tenant, username: str, *, role: str = "admin", email: str = ""):
    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, email=email or f"{username}@example.jp"
    )
    TenantMembership.objects.create(user=user, tenant=tenant, role=role)
    TermsConsent.objects.create(user=user, tenant=tenant, version=settings.TERMS_VERSION)
    return user


def link_in(message) -> str:
    """The one link of a mail."""
    (url,) = LINK.findall(message.body)
    return url


@pytest.fixture
def team(db, noon):
    class Team:
        pass

    t = Team()
    t.acme = make_acme()
    t.globex = make_globex()
    t.alice = member(t.acme, "alice")  # acme's 管理者
    t.victor = member(t.acme, "victor", role="viewer")  # acme's 閲覧者
    t.gina = member(t.globex, "gina")  # globex's 管理者
    t.sam = get_user_model().objects.create_user(  # the support desk (superuser)
        username="sam",
        password=PASSWORD,
        email="sam@support.example.jp",
        is_staff=True,
        is_superuser=True,
    )
    t.setting = t.acme.connect_settings.get()
    return t
