"""The throttled row: the attendance sync of N employees against a KOT that allows R calls/s.

    python -m benchmarks.throttle_bench [--employees 1000] [--rate 20] [--style 303|429]
                                        [--latency-ms 20]

KOT publishes no rate limit; the client learns it from KOT's 429/"303" answers
(connectors/throttle.py). The sandbox (in this process, over loopback HTTP) refuses calls beyond
a token bucket of R per second. The target: the sync's wall time ≤ 1.2 × (KOT calls ÷ R), with
every punch posted once and no throttled call ending as a failure. Prints the figures (and, with
``--json``, one JSON line); the row in docs/PERFORMANCE.md is copied from this output by hand.
Needs no database: the engine's plan and post steps run directly on the clients.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import datetime

from . import env


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throttle_bench")
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="KOT calls/s the sandbox allows")
    parser.add_argument("--style", choices=("303", "429"), default="303")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every request")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    env.configure()
    import django

    django.setup()
    from django.conf import settings

    from connectors.kot import KotClient
    from connectors.sandbox import start_sandbox
    from connectors.senselink import SenseLinkClient
    from integrations.models import ConnectSetting
    from integrations.services.attendance_sync import plan_attendance, post_punches

    sandbox = start_sandbox(
        employees=args.employees,
        seed=env.SEED,
        day=env.TODAY,
        now=lambda: env.NOON,
        latency=args.latency_ms / 1000,
        recognitions_per_employee=2,
        kot={"throttle_rate": args.rate, "throttle_style": args.style},
    )
    try:
        day = env.TARGET_DAY
        known = {e["code"] for e in sandbox.kot.employees}
        records = [
            r
            for r in sandbox.senselink.records_for(day)
            if r["user_type"] == 1 and r["job_number"] in known
        ]
        sandbox.senselink.set_records(day, records)
        kot = KotClient(
            base_url=sandbox.kot_url,
            token=sandbox.kot_token,
            clock=lambda: env.NOON,
            max_concurrency=settings.KOT_MAX_CONCURRENCY,
            throttle_retries=settings.KOT_THROTTLE_MAX_RESENDS,
            throttle_max_wait=settings.KOT_THROTTLE_MAX_WAIT_SECONDS,
        )
        senselink = SenseLinkClient(
            base_url=sandbox.senselink_url,
            app_key=sandbox.app_key,
            app_secret=sandbox.app_secret,
            allow_private_hosts=True,
        )
        sandbox.reset_counts()
        started = time.monotonic()
        plan = plan_attendance(
            kot=kot,
            senselink=senselink,
            target_date=day,
            mode=ConnectSetting.AttendanceMode.CLOCK_IN_OUT,
        )
        outcome = post_punches(kot=kot, plan=plan)
        wall = time.monotonic() - started
        counts = sandbox.request_counts()
        kot_calls = sum(n for k, n in counts.items() if " /v1.0/" in k)
        held = Counter((p["employeeKey"], p["code"]) for p in sandbox.kot.punches)
        figures = {
            "employees": args.employees,
            "rate": args.rate,
            "style": args.style,
            "latency_ms": args.latency_ms,
            "punches": len(plan.to_post),
            "posted": outcome.created,
            "twice": sum(1 for n in held.values() if n > 1),
            "errors": len(outcome.errors),
            "throttled": sandbox.kot.throttled,
            "kot_calls": kot_calls,
            "bound_s": round(kot_calls / args.rate, 1),
            "wall_s": round(wall, 1),
            "ratio": round(wall / (kot_calls / args.rate), 3),
            "learned_rate": round(kot.limiter.rate or 0, 1),
            "at": datetime.now(env.JST).isoformat(timespec="minutes"),
        }
    finally:
        sandbox.stop()
    ok = (
        figures["ratio"] <= 1.2
        and figures["errors"] == 0
        and figures["twice"] == 0
        and figures["posted"] == figures["punches"]
    )
    print(
        f"throttled KOT at {args.rate:g} calls/s ({args.style}), {args.employees} employees, "
        f"latency {args.latency_ms:g} ms: {figures['punches']} punches posted "
        f"{figures['posted']}, twice {figures['twice']}, errors {figures['errors']}; "
        f"{kot_calls} KOT calls ({figures['throttled']} refused and sent again); wall "
        f"{figures['wall_s']} s vs calls/R {figures['bound_s']} s = {figures['ratio']:.2f}× "
        f"(target ≤ 1.2×) — {'PASS' if ok else 'FAIL'}; learned rate {figures['learned_rate']}/s"
    )
    if args.json:
        print(json.dumps(figures))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
