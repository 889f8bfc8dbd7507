"""Bounded history: a year of daily runs for 1,000 tenants, pruned every night, changes nothing.

Seeds SYNC_HISTORY_DAYS (400) days of history — every tenant's attendance and employee sync
every day, one run in ten partial with five errors — and measures the pages that read it. Then
it lives one more year day by day: each day adds that day's runs and runs the nightly prune
(``prune_history(now=<that night>)``), timing every prune. The pages are measured again: the
table holds the same number of rows, so their figures stay where they were. Without pruning it
would hold the sum of both.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import env

ERRORS_PER_PARTIAL_RUN = 5
PARTIAL_EVERY = 10
KINDS = ("attendance", "employee")


def _day_expr(vendor: str, base: datetime, day: str, seconds: str) -> str:
    """SQL for ``base + day days + seconds`` (a timestamp), per vendor."""
    stamp = base.strftime("%Y-%m-%d %H:%M:%S")
    if vendor == "postgresql":
        return (
            f"(TIMESTAMPTZ '{stamp}+00:00' + make_interval(days => {day}) "
            f"+ make_interval(secs => {seconds}))"
        )
    return (
        f"strftime('%Y-%m-%d %H:%M:%f', '{stamp}', '+' || ({day}) || ' days', "
        f"'+' || ({seconds}) || ' seconds')"
    )


def _insert_days(*, first_tenant: int, tenants: int, base: datetime, day_from: int, days: int):
    """Every tenant's two daily runs for ``days`` days from ``day_from``, and their errors."""
    from django.db import connection, transaction

    from integrations.models import SyncError, SyncRun

    from .pages_bench import _insert_select, _series

    vendor = connection.vendor
    per_day = tenants * len(KINDS)
    count = per_day * days
    day = f"({day_from} + (n - 1) / {per_day})"
    # attendance at 03:00 UTC-ish offsets, employee an hour earlier; tenants spread by seconds
    seconds = (
        f"(CASE WHEN ((n - 1) / {tenants}) % 2 = 0 THEN 10800 ELSE 7200 END + (n - 1) % {tenants})"
    )
    created = _day_expr(vendor, base, day, seconds)
    finished = _day_expr(vendor, base, day, f"({seconds} + 9)")
    partial = f"(n % {PARTIAL_EVERY} = 0)"
    target = (
        f"CAST({_day_expr(vendor, base, f'({day} - 1)', '0')} AS DATE)"
        if vendor == "postgresql"
        else f"date({_day_expr(vendor, base, f'({day} - 1)', '0')})"
    )
    exprs = {
        "tenant": f"{first_tenant} + (n - 1) % {tenants}",
        "kind": f"CASE WHEN ((n - 1) / {tenants}) % 2 = 0 THEN 'attendance' ELSE 'employee' END",
        "trigger": "'schedule'",
        "status": f"CASE WHEN {partial} THEN 'partial' ELSE 'success' END",
        "target_date": f"CASE WHEN ((n - 1) / {tenants}) % 2 = 0 THEN {target} ELSE NULL END",
        "created_at": created,
        "started_at": created,
        "finished_at": finished,
        "triggered_by_label": "'スケジュール'",
        "created_count": "n % 3",
        "skipped_count": "100",
        "failed_count": f"CASE WHEN {partial} THEN {ERRORS_PER_PARTIAL_RUN} ELSE 0 END",
        "message": "'勤怠連携: 打刻登録2 変更なし98'",
    }
    with_clause, series = _series(vendor, count)
    columns, values = _insert_select(SyncRun, exprs)
    run_table, error_table = SyncRun._meta.db_table, SyncError._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {run_table}")
        above = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {run_table} ({columns}) {with_clause}SELECT {values} FROM {series}"
        )
        error_exprs = {
            "run": "r.id",
            "employee_code": "CAST(2000 + k AS VARCHAR(10))",
            "target_date": "r.target_date",
            "punch": "'clock_in'",
            "code": "'already_punched'",
            "message": "'従業員コード:' || CAST(2000 + k AS VARCHAR(10)) || ' の出勤は既に打刻済みです。'",
            "created_at": "r.finished_at",
        }
        with_k, series_k = _series(vendor, ERRORS_PER_PARTIAL_RUN)
        if vendor == "postgresql":
            series_k = series_k.replace("s(n)", "s(k)")
        else:
            with_k = with_k.replace("s(n)", "s(k)").replace("n + 1", "k + 1").replace("n <", "k <")
        columns, values = _insert_select(SyncError, error_exprs)
        cursor.execute(
            f"INSERT INTO {error_table} ({columns}) {with_k}SELECT {values} "
            f"FROM {run_table} r CROSS JOIN {series_k} WHERE r.id > {above} "
            f"AND r.failed_count = {ERRORS_PER_PARTIAL_RUN}"
        )
    return count


def _analyze() -> None:
    from django.db import connection

    from integrations.models import SyncError, SyncRun

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM (ANALYZE) {SyncRun._meta.db_table}")
            cursor.execute(f"VACUUM (ANALYZE) {SyncError._meta.db_table}")
        else:
            cursor.execute("ANALYZE")


def _pages(tenant_client, admin_client) -> list[dict[str, Any]]:
    from .pages_bench import time_page

    measured = []
    for who, name, url in (
        ("tenant", "tenant log page (コネクト一覧 + 連携ログ), page 1", "/"),
        ("tenant", "tenant log table (/runs/log/), page 1", "/runs/log/"),
        ("admin", "admin run list, page 1", "/admin/integrations/syncrun/"),
    ):
        client = tenant_client if who == "tenant" else admin_client
        try:
            figure = time_page(client, url)
        except Exception as exc:  # a page still being written elsewhere: report, don't stop
            figure = {"url": url, "error": f"{type(exc).__name__}: {exc}"}
        figure.pop("statements", None)
        figure["name"] = name
        measured.append(figure)
    return measured


def _drop_pages_history() -> tuple[int, int]:
    """The pages part's synthetic history (9.5 years, already measured) would fall to the first
    nightly prune and blur this part's figures: remove it first, in plain SQL."""
    from django.db import connection, transaction

    from integrations.models import SyncError, SyncRun, Tenant

    ids = list(Tenant.objects.filter(slug__startswith="history-").values_list("pk", flat=True))
    if not ids:
        return 0, 0
    runs, errors = SyncRun._meta.db_table, SyncError._meta.db_table
    low, high = min(ids), max(ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {errors} WHERE run_id IN "
            f"(SELECT id FROM {runs} WHERE tenant_id BETWEEN %s AND %s)",
            [low, high],
        )
        deleted_errors = cursor.rowcount
        cursor.execute(
            f"UPDATE {runs} SET rerun_of_id = NULL WHERE rerun_of_id IN "
            f"(SELECT id FROM {runs} WHERE tenant_id BETWEEN %s AND %s)",
            [low, high],
        )
        cursor.execute(f"DELETE FROM {runs} WHERE tenant_id BETWEEN %s AND %s", [low, high])
        deleted_runs = cursor.rowcount
    return deleted_runs, deleted_errors


def bench_history(*, tenants: int, days: int | None = None, live_days: int = 365) -> dict:
    """Seed ``days`` (default SYNC_HISTORY_DAYS) of history, measure, live ``live_days`` more
    with a nightly prune, measure again."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from integrations.models import SyncError, SyncRun, Tenant, TenantMembership, TermsConsent
    from integrations.services.history import prune_history

    days = days or settings.SYNC_HISTORY_DAYS
    dropped = _drop_pages_history()
    started = time.perf_counter()
    created = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"年間{n:04d} 株式会社",
                slug=f"year-{n:04d}",
                subscription_status=Tenant.Subscription.ACTIVE,
            )
            for n in range(tenants)
        ],
        batch_size=1000,
    )
    ids = sorted(
        [t.pk for t in created]
        if created[0].pk
        else Tenant.objects.filter(slug__startswith="year-").values_list("pk", flat=True)
    )
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise RuntimeError("history tenants did not get consecutive ids")
    # Day 0 is (days + live_days) days ago: the last simulated day is yesterday.
    today = timezone.now().astimezone(env.JST).replace(hour=0, minute=0, second=0, microsecond=0)
    base = (today - timedelta(days=days + live_days)).astimezone(UTC)
    mine = SyncRun.objects.filter(tenant__id__range=(ids[0], ids[-1]))
    errors_mine = SyncError.objects.filter(run__tenant__id__range=(ids[0], ids[-1]))
    _insert_days(first_tenant=ids[0], tenants=tenants, base=base, day_from=0, days=days)
    _analyze()
    seed_seconds = time.perf_counter() - started

    user_model = get_user_model()
    hr = user_model.objects.create_user(username="year-hr", password="bench-password-123")
    TenantMembership.objects.create(user=hr, tenant_id=ids[0])
    TermsConsent.objects.create(user=hr, tenant_id=ids[0], version=settings.TERMS_VERSION)
    staff = user_model.objects.filter(
        is_superuser=True
    ).first() or user_model.objects.create_superuser(
        username="year-admin", password="bench-password-123", email="admin@example.jp"
    )
    tenant_client, admin_client = Client(), Client()
    tenant_client.force_login(hr)
    admin_client.force_login(staff)

    def state() -> dict[str, Any]:
        return {
            "runs": mine.count(),
            "errors": errors_mine.count(),
            "tenant_runs": SyncRun.objects.filter(tenant_id=ids[0]).count(),
            "pages": _pages(tenant_client, admin_client),
        }

    before = state()
    prunes: list[float] = []
    deleted_runs = deleted_errors = 0
    inserted = 0
    live_started = time.perf_counter()
    for day in range(days, days + live_days):
        inserted += _insert_days(
            first_tenant=ids[0], tenants=tenants, base=base, day_from=day, days=1
        )
        night = base + timedelta(days=day, hours=19, minutes=45)  # 04:45 JST the next morning
        t0 = time.perf_counter()
        report = prune_history(days=days, now=night)
        prunes.append(time.perf_counter() - t0)
        deleted_runs += report.runs
        deleted_errors += report.errors
    live_seconds = time.perf_counter() - live_started
    _analyze()
    after = state()
    return {
        "tenants": tenants,
        "days": days,
        "live_days": live_days,
        "seed_seconds": seed_seconds,
        "live_seconds": live_seconds,
        "inserted_during_the_year": inserted,
        "deleted_runs": deleted_runs,
        "deleted_errors": deleted_errors,
        "prune_seconds": {
            "median": statistics.median(prunes),
            "max": max(prunes),
            "total": sum(prunes),
        },
        "runs_without_pruning": before["runs"] + inserted,
        "dropped_pages_history": dropped,
        "before": before,
        "after": after,
    }
