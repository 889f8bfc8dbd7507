"""The scheduler: 10,000 tenants whose attendance sync is due in the same minute.

``integrations.services.dispatch.dispatch(now=...)`` must create one run per tenant for that
slot and hand each to the broker (the ORM broker here: one django_q OrmQ row per task), and a
second dispatch a minute later must add nothing.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from . import env

SLOT_HOUR = 3


def bench_dispatch(*, tenants: int) -> dict[str, Any]:
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone
    from django_q.models import OrmQ

    from integrations.models import ConnectSetting, SyncRun, Tenant
    from integrations.services.dispatch import dispatch

    from .measure import QueryCounter

    started = time.perf_counter()
    created = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"定時{n:05d} 株式会社",
                slug=f"due-{n:05d}",
                subscription_status=Tenant.Subscription.ACTIVE,
                kot_access_token=f"kot-token-due-{n:05d}",
            )
            for n in range(tenants)
        ],
        batch_size=1000,
    )
    ids = (
        [t.pk for t in created]
        if created[0].pk
        else list(Tenant.objects.filter(slug__startswith="due-").values_list("pk", flat=True))
    )
    ConnectSetting.objects.bulk_create(
        [
            ConnectSetting(
                tenant_id=pk,
                senselink_url="https://link.japancv.co.jp/",
                app_key=f"app-key-{pk}",
                app_secret=f"app-secret-{pk}",
                attendance_trigger=ConnectSetting.Trigger.SCHEDULED,
                attendance_hour=SLOT_HOUR,
                attendance_target_day=ConnectSetting.TargetDay.PREVIOUS,
            )
            for pk in ids
        ],
        batch_size=1000,
    )
    setup_seconds = time.perf_counter() - started

    # The first 03:00 JST slot after the settings were saved (a setting's earlier slots are
    # not its own), 20 seconds into the minute.
    local_now = timezone.now().astimezone(env.JST)
    slot = datetime(local_now.year, local_now.month, local_now.day, SLOT_HOUR, tzinfo=env.JST)
    while slot <= local_now:
        slot += timedelta(days=1)
    now = slot + timedelta(seconds=20)

    tasks_before = OrmQ.objects.count()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        t0 = time.perf_counter()
        first = dispatch(now=now)
        seconds = time.perf_counter() - t0
    tasks_after_first = OrmQ.objects.count()
    counter_again = QueryCounter()
    with connection.execute_wrapper(counter_again):
        t0 = time.perf_counter()
        second = dispatch(now=now + timedelta(minutes=1))
        seconds_again = time.perf_counter() - t0
    tasks_after_second = OrmQ.objects.count()

    runs = (
        SyncRun.objects.filter(tenant_id__in=ids)
        if len(ids) < 1000
        else SyncRun.objects.filter(tenant__slug__startswith="due-")
    )
    per_tenant = runs.values("tenant_id", "kind", "slot").annotate(n=Count("id"))
    counts = [row["n"] for row in per_tenant]
    tenants_with_run = len({row["tenant_id"] for row in per_tenant})
    right_slot = runs.filter(slot=slot, kind=SyncRun.Kind.ATTENDANCE).count()
    enqueued_runs = runs.filter(enqueued_at__isnull=False).count()
    exactly_once = (
        tenants_with_run == tenants
        and all(n == 1 for n in counts)
        and len(counts) == tenants
        and right_slot == tenants
        and tasks_after_first - tasks_before == tenants
        and tasks_after_second == tasks_after_first
        and enqueued_runs == tenants
    )
    return {
        "tenants": tenants,
        "setup_seconds": setup_seconds,
        "slot": slot.isoformat(),
        "now": now.isoformat(),
        "seconds": seconds,
        "queries": counter.count,
        "report": str(first),
        "second_seconds": seconds_again,
        "second_queries": counter_again.count,
        "second_report": str(second),
        "runs": sum(counts),
        "tenants_with_run": tenants_with_run,
        "max_runs_per_tenant_kind_slot": max(counts) if counts else 0,
        "runs_for_the_slot": right_slot,
        "runs_marked_enqueued": enqueued_runs,
        "tasks_enqueued_first": tasks_after_first - tasks_before,
        "tasks_enqueued_second": tasks_after_second - tasks_after_first,
        "exactly_once": exactly_once,
    }
