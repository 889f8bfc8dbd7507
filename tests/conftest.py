"""The small named world most tests build on: one tenant with access, one without."""

from __future__ import annotations

import os
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import pytest
import time_machine
from django.test import override_settings

import connectors.http as http_module
from connectors import throttle
from connectors.clock import JST
from connectors.http import HttpClient
from tests import parallel
from tests.world import (  # noqa: F401  (imported from here by many tests)
    PASSWORD,
    make_acme,
    make_globex,
    make_tenant,
    make_tenant_user,
)

pytest_plugins = ["connectors.sandbox.pytest_plugin", "tests.accounts_world"]

# Tests that talk to the sandbox run at a fixed, ordinary moment: outside KOT's forbidden
# windows whenever CI happens to run. Tests about windows travel further themselves.
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)


def examples(full: int) -> int:
    """A property test's example count: ``full`` in `make test`, a tenth (at least 20) in
    `make check`, which sets QUICK_PROPERTIES=1 (the quick loop; the full run keeps them all)."""
    return max(20, full // 10) if os.environ.get("QUICK_PROPERTIES") == "1" else full


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


def pytest_configure(config):
    _redis_db_per_worker()


def _redis_db_per_worker() -> None:
    """Under pytest-xdist, worker gwN uses Redis db (REDIS_TEST_URL's db + N), so the qcluster
    tests two workers run at once never share a queue."""
    worker, url = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("REDIS_TEST_URL")
    if not worker or not url:
        return
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    if db > 15:
        raise pytest.UsageError(
            f"REDIS_TEST_URL={url} with {worker}: Redis db {db} does not exist (0-15); "
            "name a lower db or run fewer workers"
        )
    os.environ["REDIS_TEST_URL"] = urlunsplit(parts._replace(path=f"/{db}"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    items.sort(key=parallel.rank)  # the long serial modules first (tests/parallel.py)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") in ("load", "loadgroup"):
        return parallel.make_scheduler(config, log)
    return None


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher(django_test_environment):
    """Tests hash passwords with MD5 (production keeps Django's PBKDF2: 0.2 s a password, which
    every `world` paid twice). tests/test_settings_startup.py checks production's hasher."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def noon():
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


@pytest.fixture
def fast_retries(monkeypatch):
    """The connectors' real retry policy with the waiting compressed: how many tries, what is
    retried and what is not stay the production ones (docs/RELIABILITY.md, the fault matrix)."""
    real = HttpClient._retry_delay

    def quick(self, attempt, error):
        delay = real(self, attempt, error)
        return None if delay is None else min(delay, 0.02)

    monkeypatch.setattr(HttpClient, "_retry_delay", quick)
    # KOT's throttled resends: the real budget (count and total wait), each wait compressed,
    # and the learned pacing never slower than 50 calls/s.
    real_throttle = HttpClient._throttle_delay

    def quick_throttle(self, resent, waited, error):
        delay = real_throttle(self, resent, waited, error)
        return None if delay is None else min(delay, 0.02)

    monkeypatch.setattr(HttpClient, "_throttle_delay", quick_throttle)
    monkeypatch.setattr(throttle, "MIN_RATE", 50.0)
    monkeypatch.setattr(http_module, "THROTTLED_INTERVAL", 0.01)
    monkeypatch.setattr(http_module, "MAX_INTERVAL", 0.05)


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


@pytest.fixture
def world(db, noon, sandbox, settings):
    """acme, pointing at the sandbox, and globex, not subscribed (tests/world.py), each with its
    administrator (acme-hr, globex-hr)."""
    settings.KOT_API_BASE_URL = sandbox.kot_url

    class World:
        pass

    w = World()
    w.sandbox = sandbox
    w.acme = make_acme(sandbox=sandbox)
    w.globex = make_globex(sandbox=sandbox, status="not_subscribed")
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
