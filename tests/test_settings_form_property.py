"""Whatever is typed into 連携設定, the answer is a page (never a 500) and nothing is saved half."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from integrations.models import ConnectSetting, Tenant, TermsConsent
from tests.conftest import examples, make_tenant, make_tenant_user

pytestmark = pytest.mark.django_db

FIELDS = [
    "senselink_url",
    "app_key",
    "attendance_mode",
    "attendance_trigger",
    "attendance_hour",
    "attendance_target_day",
    "employee_trigger",
    "employee_interval",
    "employee_day",
    "employee_hour",
    "resigned_policy",
    "deletion_guard_count",
    "deletion_guard_percent",
    "kot_access_token",
    "app_secret",
]
GOOD = {
    "senselink_url": "https://link.example.jp/",
    "app_key": "key-1",
    "attendance_mode": "clock_in",
    "attendance_trigger": "scheduled",
    "attendance_hour": "3",
    "attendance_target_day": "previous",
    "employee_trigger": "scheduled",
    "employee_interval": "monthly",
    "employee_day": "31",
    "employee_hour": "2",
    "resigned_policy": "keep",
    "deletion_guard_count": "10",
    "deletion_guard_percent": "20",
}
# Plausible junk: numbers out of range, choices that don't exist, long and odd text.
junk = st.one_of(
    st.text(max_size=300),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["", "9", "18", "24", "0", "32", "manual", "daily", "same", "delete", "\x00"]),
    st.sampled_from(["http://127.0.0.1/", "https://user:pw@link.example.jp/", "ftp://x/"]),
)


def snapshot(tenant: Tenant) -> tuple:
    setting = ConnectSetting.objects.get(tenant=tenant)
    values = tuple(getattr(setting, f) for f in FIELDS if hasattr(setting, f))
    return values, Tenant.objects.get(pk=tenant.pk).kot_access_token


@given(changes=st.dictionaries(st.sampled_from(FIELDS), junk, max_size=6))
@hsettings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_input_gives_a_page_and_saves_all_or_nothing(db, changes):
    tenant = Tenant.objects.filter(slug="prop").first() or make_tenant("prop")
    user = tenant.memberships.first().user if tenant.memberships.exists() else None
    if user is None:
        user = make_tenant_user(tenant, "prop-hr")
        TermsConsent.objects.create(user=user, tenant=tenant, version=django_settings.TERMS_VERSION)
    setting = ConnectSetting.objects.get(tenant=tenant)
    client = Client()
    client.force_login(user)
    before = snapshot(tenant)
    data = {**GOOD, **changes}
    response = client.post(reverse("portal:connect_settings", args=[setting.pk]), data)
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert snapshot(tenant) == before  # refused: nothing saved, not even half
        assert "入力内容に誤りがあります" in response.content.decode()
    else:
        ConnectSetting.objects.get(tenant=tenant).full_clean()  # what was saved is valid
