"""ConnectSetting's field groups are declared once (integrations/forms.py): the tenant settings
page and the support admin both show each group's fields under the group's title."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

from integrations.forms import CONNECT_SETTING_GROUPS, SUPPORT_ONLY_FIELDS
from integrations.models import TermsConsent
from tests.conftest import make_tenant_user
from tests.world import make_acme

pytestmark = pytest.mark.django_db


def sections(page: str) -> dict[str, str]:
    """Each group's part of the page: from its heading to the next group's (or the end)."""
    starts = {}
    for key, group in CONNECT_SETTING_GROUPS.items():
        heading = re.search(rf">\s*{re.escape(str(group.title))}\s*</(?:legend|h\d)>", page)
        assert heading, f"no heading {group.title!r}"
        starts[key] = heading.start()
    order = sorted(starts, key=starts.__getitem__)
    ends = [starts[key] for key in order[1:]] + [len(page)]
    return {key: page[starts[key] : end] for key, end in zip(order, ends, strict=True)}


def test_the_settings_page_shows_each_group_s_inputs_under_its_title(client):
    tenant = make_acme()
    user = make_tenant_user(tenant, "acme-hr")
    TermsConsent.objects.create(user=user, tenant=tenant, version=settings.TERMS_VERSION)
    client.force_login(user)
    setting = tenant.connect_settings.get()

    page = client.get(reverse("portal:connect_settings", args=[setting.pk])).content.decode()

    parts = sections(page)
    assert list(parts) == list(CONNECT_SETTING_GROUPS)  # the groups' order
    for key, group in CONNECT_SETTING_GROUPS.items():
        for name in group.fields:
            if name in SUPPORT_ONLY_FIELDS:
                assert f'name="{name}"' not in page
            else:
                assert f'name="{name}"' in parts[key], (key, name)


def test_the_admin_shows_each_group_s_inputs_under_its_title(admin_client):
    tenant = make_acme()

    page = admin_client.get(
        reverse("admin:integrations_tenant_change", args=[tenant.pk])
    ).content.decode()

    parts = sections(page)
    assert list(parts) == list(CONNECT_SETTING_GROUPS)
    for key, group in CONNECT_SETTING_GROUPS.items():
        for name in group.fields:  # a superuser edits them all, the App Secret included
            assert f'name="connect_settings-0-{name}"' in parts[key], (key, name)
    assert parts["senselink"].index("Appシークレット(登録状況)") < parts["senselink"].index(
        'name="connect_settings-0-app_secret"'
    )
