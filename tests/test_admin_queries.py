"""The admin's list pages run the same, small number of queries with 10 rows or 200."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import ConnectSetting, SyncError, SyncRun, Tenant
from tests.admin_helpers import DAY, support_user
from tests.conftest import JST

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 25, 3, 0, tzinfo=JST)
MAX_QUERIES = 12

PAGES = [
    ("admin:integrations_tenant_changelist", {}),
    ("admin:integrations_tenant_changelist", {"last_result": "problem", "q": "株式会社"}),
    ("admin:integrations_syncrun_changelist", {}),
    ("admin:integrations_syncrun_changelist", {"q": "E001", "status": "failure"}),
    ("admin:integrations_syncerror_changelist", {}),
    ("admin:integrations_syncrun_failed", {}),
]


def add_tenants(start: int, stop: int) -> None:
    """Tenants with a setting, two runs each (one failed with two errors)."""
    tenants = Tenant.objects.bulk_create(
        Tenant(
            name=f"顧客{i:03} 株式会社",
            slug=f"t{i:03}",
            subscription_status="active",
            kot_access_token=f"kot-token-{i:03}-secret",
        )
        for i in range(start, stop)
    )
    ConnectSetting.objects.bulk_create(
        ConnectSetting(
            tenant=t,
            senselink_url="https://link.example.jp/",
            app_key=f"key-{t.slug}",
            app_secret=f"secret-{t.slug}",
            attendance_trigger="scheduled",
        )
        for t in tenants
    )
    runs = []
    for t in tenants:
        runs.append(
            SyncRun(
                tenant=t,
                kind="employee",
                trigger="schedule",
                status="success",
                created_at=START,
                started_at=START,
                finished_at=START + timedelta(seconds=5),
            )
        )
        runs.append(
            SyncRun(
                tenant=t,
                kind="attendance",
                trigger="schedule",
                status="failure",
                target_date=DAY,
                created_at=START + timedelta(hours=1),
                started_at=START + timedelta(hours=1),
                finished_at=START + timedelta(hours=1, seconds=9),
                failed_count=2,
            )
        )
    SyncRun.objects.bulk_create(runs)
    failed = SyncRun.objects.filter(tenant__in=tenants, status="failure")
    SyncError.objects.bulk_create(
        SyncError(run=run, employee_code=code, code="kot_rejected", message=f"{code} の出勤エラー")
        for run in failed
        for code in ("E001", "E002")
    )


def query_counts(client) -> dict[str, int]:
    counts = {}
    for name, params in PAGES:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(name), params)
        assert response.status_code == 200, name
        counts[f"{name} {params}"] = len(queries)
    return counts


@pytest.mark.parametrize("who", ["superuser", "support"])
def test_list_pages_query_count_does_not_grow_with_rows(client, admin_user, noon, who):
    client.force_login(admin_user if who == "superuser" else support_user())
    add_tenants(0, 10)
    with_10 = query_counts(client)

    add_tenants(10, 200)
    with_200 = query_counts(client)

    assert with_200 == with_10
    assert max(with_200.values()) <= MAX_QUERIES, with_200
