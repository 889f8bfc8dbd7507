"""python -m benchmarks.realtime_bench [--tenants 1000] [--employees 10] [--latency-ms 20]

Real-time clock-in at scale (issue 15 item 8): TENANTS tenants with real-time on at a 5-minute
interval, each with EMPLOYEES employees who arrive between 08:00 and 09:00 JST (every one
recognised twice), against the sandbox in a process of its own with LATENCY added to every
request. The morning is simulated minute by minute (07:55–09:10, through KOT's 08:30 window):
each simulated minute the dispatcher's real-time tick queues the due polls, and a pool of
WORKERS threads (a worker cluster) runs them. Measured: whether every tenant was polled within
its interval, whether each simulated minute's polls finished within a real minute, the delay from
recognition to the KOT POST (p50/p95/max, simulated time: what a person sees), SenseLink calls
per poll (overall, and on a round where nothing changed), KOT reads inside the window, database
rows per tenant, and the CPU time per poll of this process (the sandbox runs elsewhere).

It **recreates** the database DATABASE_URL names (its name must contain "bench"); use
PostgreSQL (SQLite serialises the workers' writes):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_rt_bench \\
        .venv/bin/python -m benchmarks.realtime_bench
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

from . import env

DAY = date(2026, 11, 24)
START = datetime(2026, 11, 24, 7, 55, tzinfo=env.JST)
END = datetime(2026, 11, 24, 9, 10, tzinfo=env.JST)
INTERVAL = 5


def arrivals(codes: list[str]) -> list[tuple[str, datetime]]:
    """Each employee's recognitions: the first between 08:00 and 09:00 (spread evenly, with a
    per-employee second offset), a second one 3 minutes later; sorted by time (ids follow)."""
    records = []
    employees = len(codes)
    for index, code in enumerate(codes):
        first = datetime(2026, 11, 24, 8, 0, tzinfo=env.JST) + timedelta(
            seconds=int(3600 * (index + 0.5) / employees)
        )
        records += [(code, first), (code, first + timedelta(minutes=3))]
    return sorted(records, key=lambda r: r[1])


def build(tenants: int, sandbox) -> list[int]:
    from integrations.models import ConnectSetting, Tenant

    Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"rt {n}",
                slug=f"rt-{n:05d}",
                subscription_status="active",
                kot_access_token=sandbox.kot_token,
            )
            for n in range(tenants)
        ],
        batch_size=500,
    )
    ids = dict(Tenant.objects.values_list("slug", "pk"))
    ConnectSetting.objects.bulk_create(
        [
            ConnectSetting(
                tenant_id=ids[f"rt-{n:05d}"],
                senselink_url=sandbox.senselink_url,
                app_key=sandbox.app_key,
                app_secret=sandbox.app_secret,
                attendance_mode="clock_in_out",
                attendance_trigger="scheduled",
                attendance_hour=3,
                realtime_clock_in=True,
                realtime_interval_minutes=INTERVAL,
            )
            for n in range(tenants)
        ],
        batch_size=500,
    )
    return list(ConnectSetting.objects.values_list("pk", flat=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realtime_bench")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--employees", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8, help="poll threads (a worker cluster)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)

    env.configure()
    from . import database

    print(f"database: {database.recreate()} (recreated)", flush=True)
    env.setup_django()
    database.migrate()
    from django.db import connection, connections

    from integrations import queue
    from integrations.models import PunchLedger, RealtimeState, SyncError, SyncRun
    from integrations.services import realtime

    from . import machine
    from .sandbox_process import SandboxProcess

    # A terminal's clock never runs ahead in a simulation: no tolerance for future stamps.
    realtime.FUTURE_SKEW = timedelta(0)
    queued: list = []
    queue.enqueue = lambda jobs, **kwargs: queued.extend(jobs) or len(jobs)  # type: ignore[assignment]

    results: dict = {
        "tenants": args.tenants,
        "employees": args.employees,
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "interval_minutes": INTERVAL,
        "machine": machine.describe(database.server_version()),
    }
    with SandboxProcess(employees=args.employees, latency=args.latency_ms / 1000) as sandbox:
        sandbox.set_records(day=DAY, records=arrivals(sandbox.employee_codes()))
        from django.conf import settings

        settings.KOT_API_BASE_URL = sandbox.kot_url
        setting_ids = build(args.tenants, sandbox)
        print(f"{len(setting_ids):,} tenants, {args.employees} employees each", flush=True)

        polls_at: dict[int, list[datetime]] = defaultdict(list)
        minute_seconds: list[float] = []
        tick_seconds: list[float] = []
        reports = []
        cpu_before = time.process_time()
        sandbox.reset_counts()
        kot_reads_in_window = 0

        def run_poll(setting_id: int, now: datetime):
            try:
                return realtime.poll(setting_id=setting_id, now=now)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            now = START
            while now <= END:
                if True:  # the services take the simulated time as ``now``
                    began = time.perf_counter()
                    queued.clear()
                    realtime.tick(now=now)
                    tick_seconds.append(time.perf_counter() - began)
                    jobs = list(queued)
                    before = sandbox.request_counts() if _in_window(now) else None
                    got = list(pool.map(run_poll, [job.args[0] for job in jobs], [now] * len(jobs)))
                    if before is not None:
                        after = sandbox.request_counts()
                        kot_reads_in_window += sum(
                            after.get(k, 0) - before.get(k, 0)
                            for k in after
                            if k.startswith("GET /v1.0/")
                            or k.startswith("GET /employees")
                            or k.startswith("GET /daily-workings")
                        )
                    minute_seconds.append(time.perf_counter() - began)
                for job, report in zip(jobs, got, strict=True):
                    if report.status == "done":
                        polls_at[job.args[0]].append(now)
                    reports.append(report)
                print(
                    f"  {now:%H:%M} polls={len(jobs):5d} real={minute_seconds[-1]:6.2f}s",
                    flush=True,
                )
                now += timedelta(minutes=1)
            cpu = time.process_time() - cpu_before
            counts = sandbox.request_counts()

            # A round where nothing changed: one poll per tenant, counting SenseLink calls.
            quiet = END + timedelta(minutes=INTERVAL)
            RealtimeState.objects.update(next_poll_at=quiet, queued_at=None)
            sandbox.reset_counts()
            quiet_reports = list(pool.map(run_poll, setting_ids, [quiet] * len(setting_ids)))
            quiet_counts = sandbox.request_counts()

    polls = sum(1 for r in reports if r.status == "done")
    statuses: dict[str, int] = defaultdict(int)
    for r in reports:
        statuses[r.status] += 1
    results["poll_statuses"] = dict(statuses)
    results["failed_details"] = sorted({r.detail for r in reports if r.status == "failed"})[:5]
    gaps = [
        (b - a).total_seconds() / 60
        for times in polls_at.values()
        for a, b in zip(times, times[1:], strict=False)
    ]
    rows = PunchLedger.objects.filter(state="posted")
    delays = sorted(
        (sent - punched).total_seconds()
        for sent, punched in rows.values_list("sent_at", "punch_time")
    )
    record_calls = sum(v for k, v in counts.items() if "record/list" in k)
    posts = sum(v for k, v in counts.items() if k.startswith("POST") and "timerecord" in k)
    tenants_polled = sum(1 for pk in setting_ids if polls_at.get(pk))
    results.update(
        {
            "simulated": f"{START:%H:%M}-{END:%H:%M} JST, tick every simulated minute",
            "polls": polls,
            "tenants_polled": tenants_polled,
            "max_gap_minutes": max(gaps) if gaps else None,
            "every_tenant_within_interval": tenants_polled == len(setting_ids)
            and (max(gaps) if gaps else 0) <= INTERVAL,
            "max_real_seconds_per_simulated_minute": max(minute_seconds),
            "mean_real_seconds_per_simulated_minute": statistics.mean(minute_seconds),
            "max_tick_seconds": max(tick_seconds),
            "posted": rows.count(),
            "expected_clock_ins": len(setting_ids) * args.employees,
            "kot_posts": posts,
            "delay_p50_s": _pct(delays, 50),
            "delay_p95_s": _pct(delays, 95),
            "delay_max_s": delays[-1] if delays else None,
            "senselink_calls_per_poll": record_calls / polls if polls else None,
            "senselink_calls_per_quiet_poll": sum(
                v for k, v in quiet_counts.items() if "record/list" in k
            )
            / max(1, sum(1 for r in quiet_reports if r.status == "done")),
            "quiet_round_requests": dict(quiet_counts),
            "kot_reads_in_window": kot_reads_in_window,
            "cpu_ms_per_poll": 1000 * cpu / polls if polls else None,
            "rows_per_tenant": {
                "punch ledger": PunchLedger.objects.count() / len(setting_ids),
                "runs (realtime)": SyncRun.objects.filter(trigger="realtime").count()
                / len(setting_ids),
                "errors": SyncError.objects.count() / len(setting_ids),
                "realtime state": RealtimeState.objects.count() / len(setting_ids),
            },
        }
    )
    cpu_per_poll = results["cpu_ms_per_poll"] / 1000 if polls else 0
    cores = os.cpu_count() or 1
    # Polls a 2-core machine can run per 5 minutes with both cores busy, one poll per tenant.
    results["cpu_bound_tenants_per_2_cores"] = (
        math.floor(2 * INTERVAL * 60 / cpu_per_poll) if cpu_per_poll else None
    )
    results["cores_here"] = cores
    for connection_ in connections.all():
        connection_.close()
    text = json.dumps(results, indent=2, ensure_ascii=False, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if results["every_tenant_within_interval"] else 1


def _in_window(now: datetime) -> bool:
    from integrations.services.windows import window_end

    return window_end(now) is not None


def _pct(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, math.ceil(pct / 100 * len(values)) - 1)
    return values[index]


if __name__ == "__main__":
    sys.exit(main())
