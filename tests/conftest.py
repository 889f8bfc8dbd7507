"""The small named world most tests build on: one tenant with access, one without."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model

from connectors import throttle
from connectors.clock import JST

pytest_plugins = ["connectors.sandbox.pytest_plugin", "tests.accounts_world"]

PASSWORD = "correct-horse-battery-staple-9"
# Tests that talk to the sandbox run at a fixed, ordinary moment: outside KOT's forbidden
# windows whenever CI happens to run. Tests about windows travel further themselves.
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)


class Recorder:
    """A client's `sleep` that only records, and the monotonic clock it advances: retries and
    pacing are checked without waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def noon():
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _settings_for_tests(settings):
    throttle.reset()  # KOT limits learned by an earlier test's clients
    settings.SENSELINK_ALLOW_PRIVATE_HOSTS = True
    settings.AXES_ENABLED = False
    # Staff fixtures log in with a password alone; the two-factor tests turn this on.
    settings.STAFF_REQUIRE_2FA = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SYNC_CONCURRENCY = 4
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_tenant(slug: str, *, sandbox=None, status: str = "active", **setting_fields):
    from integrations.models import ConnectSetting, Tenant

    tenant = Tenant.objects.create(
        name=f"{slug} 株式会社",
        slug=slug,
        subscription_status=status,
        kot_access_token=sandbox.kot_token if sandbox else "kot-token-" + slug,
        contact_email=f"hr@{slug}.example.jp",
    )
    fields = {
        "senselink_url": sandbox.senselink_url if sandbox else "https://link.example.jp/",
        "app_key": sandbox.app_key if sandbox else "appkey-" + slug,
        "app_secret": sandbox.app_secret if sandbox else "appsecret-" + slug,
    }
    fields.update(setting_fields)
    ConnectSetting.objects.create(tenant=tenant, **fields)
    return tenant


def make_tenant_user(tenant, username: str):
    from integrations.models import TenantMembership

    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    TenantMembership.objects.create(user=user, tenant=tenant)
    return user


@pytest.fixture
def world(db, noon, sandbox, settings):
    """acme: active, pointing at the sandbox; globex: another customer, not subscribed."""
    settings.KOT_API_BASE_URL = sandbox.kot_url

    class World:
        pass

    w = World()
    w.sandbox = sandbox
    w.acme = make_tenant("acme", sandbox=sandbox)
    w.globex = make_tenant("globex", sandbox=sandbox, status="not_subscribed")
    w.acme_user = make_tenant_user(w.acme, "acme-hr")
    w.globex_user = make_tenant_user(w.globex, "globex-hr")
    return w


@pytest.fixture
def rt(world, settings):
    """acme with real-time on (5 minutes, daily run at 03:00 in clock_in_out mode); KOT knows
    0042 and 0043; SenseLink's day starts empty; the fake KOT follows the travelled clock."""
    from integrations.models import ConnectSetting
    from tests import sync_world

    settings.READ_TIMEOUT_SECONDS = 0.5
    sync_world.small_kot(
        world.sandbox,
        {"code": "0042", "last_name": "山田", "first_name": "太郎"},
        {"code": "0043", "last_name": "佐藤", "first_name": "花子"},
    )
    sync_world.only_records(world.sandbox, sync_world.DAY)
    world.sandbox.clock.clear()
    world.setting = sync_world.configure(
        world.acme,
        realtime_clock_in=True,
        attendance_mode="clock_in_out",
        attendance_trigger="scheduled",
        attendance_hour=3,
    )
    # The settings date from before the day (a changed setting takes effect from its next slot).
    ConnectSetting.objects.filter(pk=world.setting.pk).update(updated_at=sync_world.at(0, 0))
    return world
