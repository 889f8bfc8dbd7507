"""Whole syncs at DEBUG logging, then every page, error row and exception: the KOT token and
the App Secret appear nowhere (SPEC 2: never printed in logs, never rendered back)."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from integrations.models import SyncError, SyncRun, TermsConsent
from tests.sync_world import DAY, configure, run_now

pytestmark = pytest.mark.django_db

# Long, distinctive secrets: a hit can't be a coincidence.
TOKEN = "kot-TOKEN-7f3a9c1e5b2d8f4a6c0e"
SECRET = "sl-SECRET-2b8d4f6a0c1e3a5b7d9f"


@pytest.fixture
def secret_world(world):
    """acme's secrets replaced by distinctive ones the sandbox accepts."""
    world.sandbox.kot.tokens.add(TOKEN)
    world.sandbox.senselink.app_secret = SECRET
    world.acme.kot_access_token = TOKEN
    world.acme.save()
    # creation_guard_count: the first sync registers the sandbox's whole company (onboarding).
    configure(
        world.acme, app_secret=SECRET, attendance_mode="clock_in_out", creation_guard_count=100
    )
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    return world


def assert_clean(text: str, where: str) -> None:
    for secret in (TOKEN, SECRET):
        assert secret not in text, f"a secret leaked into {where}"
        assert secret[:-4] not in text, f"most of a secret leaked into {where}"


def run_everything(world) -> list[SyncRun]:
    sandbox = world.sandbox
    runs = [
        run_now(world.acme, "employee"),
        run_now(world.acme, "attendance", DAY),
    ]
    # Failures: 500 pages, throttling, timeouts, then a wrong secret and a wrong token.
    sandbox.faults.add("senselink", "http500_html", times=None)
    runs.append(run_now(world.acme, "employee"))
    sandbox.faults.clear()
    sandbox.faults.add("kot", "throttle", times=None)
    runs.append(run_now(world.acme, "attendance", DAY.replace(day=23)))
    sandbox.faults.clear()
    sandbox.senselink.app_secret = "the-server-expects-another-secret"
    runs.append(run_now(world.acme, "employee"))
    sandbox.senselink.app_secret = SECRET
    sandbox.kot.tokens.discard(TOKEN)
    runs.append(run_now(world.acme, "attendance", DAY.replace(day=22)))
    return runs


def test_no_secret_in_logs_errors_pages_or_exceptions(secret_world, caplog, settings, fast_retries):
    settings.SYNC_RETRY_DELAYS_MINUTES = []  # fail at once instead of waiting to retry
    caplog.set_level(logging.DEBUG)
    runs = run_everything(secret_world)
    statuses = {run.status for run in runs}
    assert SyncRun.Status.FAILURE in statuses and SyncRun.Status.SUCCESS in statuses

    for record in caplog.records:
        assert_clean(record.getMessage(), f"log line from {record.name}")
        if record.exc_info:
            assert_clean(logging.Formatter().formatException(record.exc_info), "a logged traceback")
    for message in SyncError.objects.values_list("message", flat=True):
        assert_clean(message, "a SyncError message")
    for message in SyncRun.objects.values_list("message", flat=True):
        assert_clean(message, "a run message")

    tenant_client = Client()
    tenant_client.force_login(secret_world.acme_user)
    setting = secret_world.acme.connect_settings.get()
    tenant_pages = [
        reverse("portal:connect_list"),
        reverse("portal:run_log"),
        reverse("portal:connect_settings", args=[setting.pk]),
        reverse("portal:manual_run", args=[setting.pk]),
        reverse("portal:connect_preview", args=[setting.pk]) + "?kind=employee",
        *[reverse("portal:run_errors", args=[run.pk]) for run in runs],
    ]
    for url in tenant_pages:
        response = tenant_client.get(url)
        assert response.status_code == 200, url
        assert_clean(response.content.decode(), url)

    support = get_user_model().objects.create_superuser("support-x", password="pw-9f8e7d6c5b")
    admin_client = Client()
    admin_client.force_login(support)
    tenant_id = secret_world.acme.pk
    admin_pages = [
        reverse("admin:integrations_tenant_changelist"),
        reverse("admin:integrations_tenant_change", args=[tenant_id]),
        reverse("admin:integrations_tenant_history", args=[tenant_id]),
        reverse("admin:integrations_syncrun_changelist"),
        reverse("admin:integrations_syncerror_changelist"),
        reverse("admin:integrations_syncrun_failed"),
        *[reverse("admin:integrations_syncrun_change", args=[run.pk]) for run in runs],
    ]
    for url in admin_pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_clean(response.content.decode(), url)
