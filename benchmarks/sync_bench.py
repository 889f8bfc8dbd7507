"""One tenant size: employee sync and attendance sync, each twice, against a sandbox process.

Run by ``python -m benchmarks`` as ``python -m benchmarks.sync_bench --size N --out FILE`` (a
process per size, so its peak memory is this size's alone). Writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from . import env

KOT_EMPLOYEES = "GET /v1.0/employees"
KOT_PUNCH_READ = "GET /v1.0/daily-workings/timerecord"
KOT_PUNCH_POST = "POST /v1.0/daily-workings/timerecord/{key}"
SL_PERSONS = "GET /api/v1/user/list"
SL_CREATE = "POST /api/v1/user"
SL_UPDATE = "POST /api/v1/user/update/{id}"
SL_DELETE = "GET /api/v1/user/delete/{id}"
SL_RECORDS = "GET /api/v5/record/list"

PAGE = 100  # SenseLink's largest page (persons and records)
KEYS_PER_READ = 100  # connectors.kot.MAX_KEYS_PER_CALL: employee keys per punch read


def employee_floors(floor: dict[str, int]) -> tuple[dict[str, int], set[str]]:
    """Fewest calls per endpoint for an employee sync, and which endpoints are the write phase.

    The person list carries ``total`` (the sandbox sends it; the client stops when it has
    ``total`` persons), so a full last page needs no extra call: max(1, ceil(P/100)). Without
    ``total`` it would be ceil((P+1)/100): only a short page proves the end.
    """
    floors = {
        KOT_EMPLOYEES: 1,
        SL_PERSONS: max(1, math.ceil(floor["persons"] / PAGE)),
        SL_CREATE: floor["creates"],
        SL_UPDATE: floor["updates"],
        SL_DELETE: floor["deletes"],
    }
    return floors, {SL_CREATE, SL_UPDATE, SL_DELETE}


def attendance_floors(floor: dict[str, int]) -> tuple[dict[str, int], set[str]]:
    """Fewest calls per endpoint for an attendance sync, and which endpoints are the write phase.

    Records have no ``total``: pages are fetched until one is shorter than 100, so R records
    need floor(R/100) + 1 pages (type=1 filters to employees server-side). The KOT employee list
    and the punch reads are only needed when someone was recognised.
    """
    anyone = floor["numbers"] > 0
    floors = {
        SL_RECORDS: floor["employee_records"] // PAGE + 1,
        KOT_EMPLOYEES: 1 if anyone else 0,
        KOT_PUNCH_READ: math.ceil(floor["keys"] / KEYS_PER_READ),
        KOT_PUNCH_POST: floor["missing"],
    }
    return floors, {KOT_PUNCH_POST}


def latency_bound(
    floors: dict[str, int], writes: set[str], latency: float, concurrency: int
) -> dict[str, float]:
    """Sequential reads at one call per latency, then the write phase ``concurrency`` wide."""
    reads = sum(n for endpoint, n in floors.items() if endpoint not in writes)
    written = sum(n for endpoint, n in floors.items() if endpoint in writes)
    read_bound = reads * latency
    write_bound = written * latency / max(1, concurrency)
    return {"reads": read_bound, "writes": write_bound, "total": read_bound + write_bound}


def run_once(*, sandbox, tenant, kind: str, label: str, latency: float) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection

    from integrations.models import SyncRun
    from integrations.services.execution import execute_run
    from integrations.services.runs import request_run

    from .measure import QueryCounter, RssSampler

    setting = tenant.connect_settings.get()
    if kind == SyncRun.Kind.EMPLOYEE:
        floor = sandbox.employee_floor(today=env.TODAY)
        floors, writes = employee_floors(floor)
        target_date = None
    else:
        floor = sandbox.attendance_floor(day=env.TARGET_DAY, mode=setting.attendance_mode)
        floors, writes = attendance_floors(floor)
        target_date = env.TARGET_DAY
    # Person writes go SYNC_CONCURRENCY wide; punch POSTs up to KOT_MAX_CONCURRENCY (the KOT
    # limiter's ceiling: an unthrottled sandbox never makes it narrower).
    concurrency = (
        settings.SYNC_CONCURRENCY if kind == SyncRun.Kind.EMPLOYEE else settings.KOT_MAX_CONCURRENCY
    )
    bound = latency_bound(floors, writes, latency, concurrency)

    sandbox.reset_counts()
    gc.collect()
    sandbox_cpu_before = sandbox.cpu_seconds()
    sampler = RssSampler().start()
    queries = QueryCounter()
    cpu_before = time.process_time()
    started = time.perf_counter()
    with connection.execute_wrapper(queries):
        request = request_run(
            tenant=tenant, kind=kind, target_date=target_date, label="benchmark", enqueue=False
        )
        run = execute_run(run_id=request.run.pk)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak = sampler.stop()
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu_before
    counts = sandbox.request_counts()
    stats = sandbox.punch_stats(day=env.TARGET_DAY) if kind == SyncRun.Kind.ATTENDANCE else None
    if run is None:
        raise RuntimeError(f"{label}: the run was not executed")

    endpoints = sorted(set(floors) | set(counts))
    calls = {e: counts.get(e, 0) for e in endpoints}
    total = sum(calls.values())
    floor_total = sum(floors.values())
    written = sum(n for e, n in calls.items() if e in writes)
    return {
        "label": label,
        "kind": kind,
        "run_id": run.pk,
        "status": run.status,
        "message": run.message,
        "created": run.created_count,
        "updated": run.updated_count,
        "deleted": run.deleted_count,
        "skipped": run.skipped_count,
        "failed": run.failed_count,
        "error_codes": sorted(set(run.errors.values_list("code", flat=True))),
        "floor_inputs": floor,
        "calls": calls,
        "floors": {e: floors.get(e, 0) for e in endpoints},
        "calls_total": total,
        "floor_total": floor_total,
        "ratio": (total / floor_total) if floor_total else (1.0 if total == 0 else float("inf")),
        "writes": written,
        "write_endpoints": sorted(writes),
        "wall": wall,
        "bound": bound,
        "wall_ratio": wall / bound["total"] if bound["total"] else float("nan"),
        "concurrency": concurrency,
        "queries": queries.count,
        "heartbeat_queries": queries.heartbeats(),
        "statements": queries.statements,
        "cpu": cpu,
        "sandbox_cpu": sandbox_cpu,
        "rss_baseline": sampler.baseline,
        "rss_peak": peak,
        "punches_after": stats,
    }


def bench_size(*, size: int, latency: float) -> dict[str, Any]:
    import time_machine

    # This process runs at the pinned noon (JST); the sandbox's SenseLink signature clock
    # follows by an offset, KOT's clock is pinned.
    offset = env.NOON.timestamp() - time.time()
    traveller = time_machine.travel(env.NOON, tick=True)
    traveller.start()
    from .sandbox_process import SandboxProcess

    sandbox = SandboxProcess(employees=size, latency=latency, clock_offset=offset)
    try:
        os.environ["KOT_API_BASE_URL"] = sandbox.kot_url
        env.setup_django()
        from django.conf import settings

        from integrations.models import ConnectSetting, SyncRun, Tenant

        from .measure import process_peak_rss

        tenant = Tenant.objects.create(
            name=f"ベンチマーク{size}人 株式会社",
            slug=f"bench-{size}-{os.getpid()}",
            subscription_status=Tenant.Subscription.ACTIVE,
            kot_access_token=sandbox.kot_token,
        )
        ConnectSetting.objects.create(
            tenant=tenant,
            senselink_url=sandbox.senselink_url,
            app_key=sandbox.app_key,
            app_secret=sandbox.app_secret,
            attendance_mode=ConnectSetting.AttendanceMode.CLOCK_IN_OUT,
            person_group_ids="1",
            # The first run registers the whole company next to 3 hand-registered persons: an
            # onboarding support lets through (the creation guard would stop it otherwise).
            creation_guard_count=size + 10,
            update_persons=True,
        )
        tenant = Tenant.objects.get(pk=tenant.pk)
        runs = []
        for kind, passes in ((SyncRun.Kind.EMPLOYEE, 2), (SyncRun.Kind.ATTENDANCE, 2)):
            for n in range(1, passes + 1):
                label = f"{kind} {'first' if n == 1 else 'steady'}"
                runs.append(
                    run_once(
                        sandbox=sandbox, tenant=tenant, kind=kind, label=label, latency=latency
                    )
                )
        return {
            "size": size,
            "latency": latency,
            "concurrency": settings.SYNC_CONCURRENCY,
            "kot_rate_limit": settings.KOT_RATE_LIMIT,
            "senselink_rate_limit": settings.SENSELINK_RATE_LIMIT,
            "runs": runs,
            "process_peak_rss": process_peak_rss(),
        }
    finally:
        sandbox.stop()
        traveller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    env.configure()
    result = bench_size(size=args.size, latency=args.latency_ms / 1000)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
