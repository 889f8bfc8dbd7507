"""The pages that read history: the tenant's 連携ログ and the admin run list, with years of runs.

History is generated in SQL (PostgreSQL ``generate_series``, SQLite a recursive CTE) in a few
statements: ``runs`` runs over ``tenants`` tenants, one tenant holding a tenth of them, and
``errors`` error rows spread 50 per run over a tenth of the runs (partial runs).
"""

from __future__ import annotations

import time
from typing import Any

ERRORS_PER_FAILED_RUN = 50
HISTORY_TENANTS = 1000
RUN_SPACING_SECONDS = 300  # 1,000,000 runs span about 9.5 years


def _series(vendor: str, count: int) -> tuple[str, str]:
    """(WITH clause, FROM item) yielding integers 1..count as column n."""
    if vendor == "postgresql":
        return "", f"generate_series(1, {int(count)}) AS s(n)"
    return (
        f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {int(count)}) ",
        "s",
    )


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _insert_select(model, exprs: dict[str, str]) -> tuple[str, str]:
    """Column list and SELECT list for every concrete column: given expressions, else defaults.

    Columns added to the model later get their default, so the seed keeps working. Executed
    without parameters: the SQL holds literal % (modulo, strftime).
    """
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(f'"{field.column}"')
        if field.name in exprs:
            values.append(exprs[field.name])
        elif field.null:
            values.append("NULL")
        else:
            values.append(_literal(field.get_default()))
    return ", ".join(columns), ", ".join(values)


def seed_history(*, runs: int, errors: int, tenants: int = HISTORY_TENANTS) -> dict[str, Any]:
    from django.db import connection, transaction

    from integrations.models import SyncError, SyncRun, Tenant

    vendor = connection.vendor
    started = time.perf_counter()
    created = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"履歴{n:04d} 株式会社",
                slug=f"history-{n:04d}",
                subscription_status=Tenant.Subscription.ACTIVE,
            )
            for n in range(tenants)
        ],
        batch_size=1000,
    )
    ids = (
        sorted(t.pk for t in created)
        if created[0].pk
        else sorted(Tenant.objects.filter(slug__startswith="history-").values_list("pk", flat=True))
    )
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise RuntimeError("history tenants did not get consecutive ids")
    big, first = ids[0], ids[0]
    others = len(ids) - 1
    failed_every = max(1, runs * ERRORS_PER_FAILED_RUN // max(errors, 1))  # 10 at 1M/5M

    if vendor == "postgresql":
        created_at = f"now() - make_interval(secs => ({runs} - n) * {RUN_SPACING_SECONDS})"
        plus = "({c} + interval '{s} seconds')"
        target = f"(({created_at})::date - 1)"
    else:
        created_at = (
            f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (({runs} - n) * "
            f"{RUN_SPACING_SECONDS}) || ' seconds')"
        )
        plus = "strftime('%Y-%m-%d %H:%M:%f', {c}, '+{s} seconds')"
        target = f"date({created_at}, '-1 day')"
    failed = f"(n % {failed_every} = 0)"
    run_exprs = {
        # every tenth run is the big tenant's; the others share the rest
        "tenant": f"CASE WHEN n % 10 = 0 THEN {big} ELSE {first + 1} + (n % {others}) END",
        "kind": "CASE WHEN n % 2 = 0 THEN 'attendance' ELSE 'employee' END",
        "trigger": "'schedule'",
        "status": f"CASE WHEN {failed} THEN 'partial' ELSE 'success' END",
        "target_date": f"CASE WHEN n % 2 = 0 THEN {target} ELSE NULL END",
        "created_at": created_at,
        "started_at": plus.format(c=created_at, s=1),
        "finished_at": plus.format(c=created_at, s=9),
        "triggered_by_label": "'スケジュール'",
        "created_count": "n % 7",
        "updated_count": "n % 3",
        "skipped_count": "1000 - n % 7",
        "failed_count": f"CASE WHEN {failed} THEN {ERRORS_PER_FAILED_RUN} ELSE 0 END",
        "message": "'KING OF TIME 1000人 / SenseLink 1003人: 登録0 更新0 削除0 変更なし1000 失敗0'",
    }
    with_clause, series = _series(vendor, runs)
    columns, values = _insert_select(SyncRun, run_exprs)
    run_sql = (
        f"INSERT INTO {SyncRun._meta.db_table} ({columns}) "
        f"{with_clause}SELECT {values} FROM {series}"
    )
    error_exprs = {
        "run": "r.id",
        "employee_code": "CAST(1000 + k AS VARCHAR(10))",
        "target_date": "r.target_date",
        "punch": "CASE WHEN k % 2 = 0 THEN 'clock_out' ELSE 'clock_in' END",
        "code": "'already_punched'",
        "message": "'従業員コード:' || CAST(1000 + k AS VARCHAR(10)) || ' の出勤は既に打刻済みです。"
        "KING OF TIME管理画面をご確認ください。'",
        "created_at": "r.finished_at",
    }
    with_k, series_k = _series(vendor, ERRORS_PER_FAILED_RUN)
    series_k = series_k.replace("s(n)", "s(k)") if vendor == "postgresql" else "s"
    if vendor != "postgresql":
        with_k = with_k.replace("s(n)", "s(k)").replace("n + 1", "k + 1").replace("n <", "k <")
    columns, values = _insert_select(SyncError, error_exprs)
    error_sql = (
        f"INSERT INTO {SyncError._meta.db_table} ({columns}) {with_k}SELECT {values} "
        f"FROM {SyncRun._meta.db_table} r CROSS JOIN {series_k} "
        f"WHERE r.tenant_id BETWEEN {ids[0]} AND {ids[-1]} AND r.failed_count = "
        f"{ERRORS_PER_FAILED_RUN}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(run_sql)
        cursor.execute(error_sql)
    # A table with years of history has been vacuumed by autovacuum: its visibility map lets
    # counts use index-only scans. Fresh bulk inserts have none until VACUUM runs.
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"VACUUM (ANALYZE) {SyncRun._meta.db_table}")
            cursor.execute(f"VACUUM (ANALYZE) {SyncError._meta.db_table}")
        else:
            cursor.execute("ANALYZE")
    return {
        "tenants": len(ids),
        "big_tenant": big,
        "runs": SyncRun.objects.filter(tenant__id__range=(ids[0], ids[-1])).count(),
        "errors": SyncError.objects.filter(run__tenant__id__range=(ids[0], ids[-1])).count(),
        "big_tenant_runs": SyncRun.objects.filter(tenant_id=big).count(),
        "seconds": time.perf_counter() - started,
    }


def time_page(client, url: str, *, warm: int = 3, repeat: int = 15) -> dict[str, Any]:
    """Median server time (in-process, test client) and the queries of one request."""
    from django.db import connection

    from .measure import QueryCounter, median

    for _ in range(warm):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
    times, counts, statements = [], [], []
    for _ in range(repeat):
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        counts.append(counter.count)
        statements = counter.statements
    return {
        "url": url,
        "median": median(times),
        "min": min(times),
        "max": max(times),
        "queries": max(counts),
        "statements": statements,
        "bytes": len(response.content),
    }


def bench_pages(*, runs: int, errors: int) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import ConnectSetting, SyncRun, Tenant, TenantMembership, TermsConsent

    seeded = seed_history(runs=runs, errors=errors)
    big = Tenant.objects.get(pk=seeded["big_tenant"])
    ConnectSetting.objects.create(
        tenant=big,
        senselink_url="https://link.japancv.co.jp/",
        app_key="history-app-key",
        app_secret="history-app-secret",
    )  # manual: the dispatcher benchmark that follows must find only its own tenants due
    User = get_user_model()
    hr = User.objects.create_user(username="history-hr", password="bench-password-123")
    TenantMembership.objects.create(user=hr, tenant=big)
    TermsConsent.objects.create(user=hr, tenant=big, version=settings.TERMS_VERSION)
    staff = User.objects.create_superuser(
        username="bench-admin", password="bench-password-123", email="admin@example.jp"
    )
    tenant_client = Client()
    tenant_client.force_login(hr)
    admin_client = Client()
    admin_client.force_login(staff)

    from django.contrib import admin

    per_admin_page = admin.site._registry[SyncRun].list_per_page
    total = SyncRun.objects.count()
    failed_run = SyncRun.objects.filter(tenant=big, failed_count__gt=0).order_by("-id").first()
    pages = [
        ("tenant", "tenant log page (コネクト一覧 + 連携ログ), page 1", "/", True),
        ("tenant", "tenant log table (/runs/log/), page 1", "/runs/log/", True),
        ("tenant", "tenant log table, last page", "/runs/log/?page=999999999", False),
        (
            "tenant",
            "tenant error details, a run with 50 errors",
            f"/runs/{failed_run.pk}/errors/",
            False,
        ),
        ("admin", "admin run list, page 1", "/admin/integrations/syncrun/", True),
        (
            "admin",
            "admin run list, last page",
            f"/admin/integrations/syncrun/?p={max(1, -(-total // per_admin_page))}",
            False,
        ),
    ]
    results = []
    for who, name, url, targeted in pages:
        client = tenant_client if who == "tenant" else admin_client
        try:
            figure = time_page(client, url)
        except Exception as exc:  # a page still being written answers 500/404: report it
            figure = {"url": url, "error": f"{type(exc).__name__}: {exc}"}
        figure.update({"name": name, "targeted": targeted})
        results.append(figure)
    return {"seed": seeded, "total_runs_in_db": total, "pages": results}
