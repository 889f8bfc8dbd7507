"""The push row: SenseLink recognition → KOT clock-in, with the production processes.

    python -m benchmarks.push_bench [--tenants 10] [--recognitions 10] [--latency-ms 20]
                                    [--gap 2.0] [--workers 2] [--json]
    python -m benchmarks.push_bench --receiver 5000 [--clients 16] [--tenants 100]

Recreates the benchmark database (DATABASE_URL must name a "bench" database; REDIS_URL, when
set, is the broker), then starts the Procfile's ``web`` (gunicorn, the push receiver) and
``worker`` (``manage.py qcluster``) as processes of their own, and one sandbox per tenant in this
process. Every tenant has real-time clock-in on at a 60-minute interval (no dispatcher runs:
only a push can make a clock-in fast) and its sandbox SenseLink subscribed to the tenant's push
URL. Each tenant's thread makes ``--recognitions`` recognitions of distinct employees, a random
0–``--gap`` s apart, all tenants at once; a watcher notes when each clock-in reaches the KOT
sandbox. The target: push → KOT clock-in p95 ≤ 10 s, each clock-in once. Prints the figures
(``--json``: also one JSON line); the row in docs/PERFORMANCE.md is copied from it by hand.

``--receiver PUSHES`` measures the receiver alone (pushes per second and answer times).

Run it outside KOT's forbidden windows (the first poll of a tenant reads KOT's employee list).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from . import env

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], extra: dict[str, str], log: Path) -> subprocess.Popen:
    environment = dict(os.environ)
    environment.pop("Q_CLUSTER_NAME", None)
    environment.update(extra)
    environment["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(  # noqa: S603 - our own commands
        args,
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the main process only (django-q2 #346)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _wait_http(url: str, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


class Watcher(threading.Thread):
    """Notes the first time each (employee key, punch code) appears in the KOT sandbox."""

    def __init__(self, kot) -> None:
        super().__init__(daemon=True)
        self.kot = kot
        self.seen: dict[tuple[str, str], float] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.stopping = threading.Event()
        self._read = 0

    def run(self) -> None:
        while not self.stopping.wait(0.005):
            with self.kot.lock:
                new = self.kot.punches[self._read :]
                self._read += len(new)
            now = time.time()
            for punch in new:
                key = (punch["employeeKey"], str(punch["code"]))
                self.counts[key] += 1
                self.seen.setdefault(key, now)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.push_bench")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--recognitions", type=int, default=10, help="per tenant")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every request")
    parser.add_argument("--gap", type=float, default=2.0, help="max seconds between recognitions")
    parser.add_argument("--workers", type=int, default=2, help="Q_WORKERS of the worker process")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--receiver",
        type=int,
        metavar="PUSHES",
        help="measure only the receiver: PUSHES pushes from --clients threads, no worker",
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent pushers (--receiver)")
    args = parser.parse_args()
    if args.receiver:
        receiver_only(args)
        return

    port = _free_port()
    os.environ["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
    env.configure()
    from .database import migrate, recreate, server_version

    recreate()
    import django

    django.setup()
    migrate()
    from django.utils import timezone

    from connectors.sandbox import start_sandbox
    from integrations.models import ConnectSetting, Tenant
    from integrations.services import push
    from integrations.services.windows import window_end

    if window_end(timezone.now()) is not None:
        print("KOT's forbidden window is on: run the push benchmark outside it.", file=sys.stderr)
        raise SystemExit(2)
    per_tenant = args.recognitions + 1  # one warm-up recognition each
    latency = args.latency_ms / 1000
    hub = start_sandbox(employees=args.tenants * per_tenant, seed=env.SEED, latency=latency)
    sandboxes = [hub] + [
        start_sandbox(employees=1, seed=env.SEED + i, latency=latency)
        for i in range(1, args.tenants)
    ]
    codes = [e["code"] for e in hub.kot.employees if not e.get("resigned")]
    key_of = {e["code"]: e["key"] for e in hub.kot.employees}
    today = timezone.localdate()
    for index, sandbox in enumerate(sandboxes):
        sandbox.senselink.set_records(today, [])
        tenant = Tenant.objects.create(
            name=f"push-{index:03d}",
            slug=f"push-{index:03d}",
            subscription_status=Tenant.Subscription.ACTIVE,
            kot_access_token=sandbox.kot_token,
        )
        setting = ConnectSetting.objects.create(
            tenant=tenant,
            senselink_url=sandbox.senselink_url,
            app_key=sandbox.app_key,
            app_secret=sandbox.app_secret,
            realtime_clock_in=True,
            realtime_interval_minutes=60,
        )
        sandbox.senselink.subscription.register(push.push_url(setting))
    if len(codes) < args.tenants * per_tenant:
        raise SystemExit("not enough active employees in the sandbox")

    logs = Path(env.DEFAULT_SQLITE).parent
    processes_env = {
        "KOT_API_BASE_URL": hub.kot_url,
        "PORT": str(port),
        "EMAIL_URL": "dummymail://",
    }
    web = _start(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--config",
            "python:portal.gunicorn_conf",
            "portal.wsgi",
        ],
        {**processes_env, "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"},
        logs / "push-bench-web.log",
    )
    worker = _start(
        [sys.executable, "manage.py", "qcluster"],
        {**processes_env, "Q_WORKERS": str(args.workers)},
        logs / "push-bench-worker.log",
    )
    watcher = Watcher(hub.kot)
    watcher.start()
    made: dict[str, float] = {}
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")

        def recognise(sandbox, code: str) -> None:
            made[code] = time.time()
            sandbox.senselink.add_record(when=timezone.now(), job_number=code)

        def wait_for(wanted: list[str], seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if all((key_of[c], "1") in watcher.seen for c in wanted):
                    return True
                time.sleep(0.05)
            return False

        # Warm-up: each tenant's first poll (KOT's employee list, the feed's first page).
        warm = [codes[i * per_tenant] for i in range(args.tenants)]
        for sandbox, code in zip(sandboxes, warm, strict=True):
            recognise(sandbox, code)
        if not wait_for(warm, 120):
            raise RuntimeError("the warm-up clock-ins did not arrive; see push-bench-*.log")
        for code in warm:
            made.pop(code)

        def tenant_load(index: int) -> None:
            rng = random.Random(index)
            mine = codes[index * per_tenant + 1 : (index + 1) * per_tenant]
            for code in mine:
                time.sleep(rng.uniform(0, args.gap))
                recognise(sandboxes[index], code)

        started = time.monotonic()
        threads = [threading.Thread(target=tenant_load, args=(i,)) for i in range(args.tenants)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        measured = list(made)
        complete = wait_for(measured, 120)
        wall = time.monotonic() - started
        time.sleep(2)  # a late duplicate would show up here
    finally:
        watcher.stopping.set()
        _stop(worker)
        _stop(web)
        for sandbox in sandboxes:
            sandbox.stop()
    latencies = sorted(
        watcher.seen[(key_of[c], "1")] - made[c]
        for c in measured
        if (key_of[c], "1") in watcher.seen
    )
    twice = sum(1 for n in watcher.counts.values() if n > 1)
    subscriptions = [s.senselink.subscription for s in sandboxes]
    figures = {
        "tenants": args.tenants,
        "recognitions": len(measured),
        "clock_ins": len(latencies),
        "twice": twice,
        "p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(statistics.quantiles(latencies, n=20, method="inclusive")[-1], 2)
        if len(latencies) > 1
        else None,
        "max_s": round(latencies[-1], 2) if latencies else None,
        "pushes_failed": sum(1 for s in subscriptions for a in s.attempts if a.status != 200),
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "broker": "redis" if os.environ.get("REDIS_URL") else "orm",
        "database": server_version(),
        "wall_s": round(wall, 1),
        "at": datetime.now(env.JST).isoformat(timespec="minutes"),
    }
    ok = (
        complete
        and figures["clock_ins"] == figures["recognitions"]
        and twice == 0
        and figures["p95_s"] is not None
        and figures["p95_s"] <= 10.0
    )
    print(
        f"push → KOT clock-in, {args.tenants} tenants × {args.recognitions} recognitions "
        f"(latency {args.latency_ms:g} ms, {args.workers} workers, {figures['broker']} broker, "
        f"{figures['database']}): {figures['clock_ins']}/{figures['recognitions']} clock-ins, "
        f"twice {twice}; p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, max "
        f"{figures['max_s']} s (target p95 ≤ 10 s) — {'PASS' if ok else 'FAIL'}"
    )
    if args.json:
        print(json.dumps(figures))
    raise SystemExit(0 if ok else 1)


def receiver_only(args: argparse.Namespace) -> None:
    """The receiver alone (gunicorn, the Procfile's web line): pushes/s and answer times, each
    push a new messageId for one of --tenants tenants (real-time on, so each wakes a poll that
    no worker takes: the wake's conditional UPDATE coalesces them)."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import requests

    port = _free_port()
    os.environ["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
    env.configure()
    from .database import migrate, recreate, server_version

    recreate()
    import django

    django.setup()
    migrate()
    from integrations.models import ConnectSetting, PushMessage, Tenant
    from integrations.services import push

    urls = []
    for index in range(args.tenants):
        tenant = Tenant.objects.create(
            name=f"push-{index:03d}", slug=f"push-{index:03d}", subscription_status="active"
        )
        setting = ConnectSetting.objects.create(
            tenant=tenant, senselink_url="https://link.example.jp/", realtime_clock_in=True
        )
        urls.append(push.push_url(setting))
    logs = Path(env.DEFAULT_SQLITE).parent
    web = _start(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--config",
            "python:portal.gunicorn_conf",
            "portal.wsgi",
        ],
        {"PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"},
        logs / "push-bench-web.log",
    )
    local = threading.local()

    def send(index: int) -> tuple[int, float]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
        body = {
            "eventType": "30000",
            "messageId": uuid.uuid4().hex,
            "sendTime": datetime.now(env.JST).strftime("%Y-%m-%d %H:%M:%S"),
            "data": {"id": index, "job_number": f"{index:05d}", "sign_time": int(time.time())},
        }
        started = time.monotonic()
        answer = session.post(urls[index % len(urls)], json=body, timeout=10)
        return answer.status_code, time.monotonic() - started

    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(send, range(min(200, args.receiver))))  # warm-up
            started = time.monotonic()
            results = list(pool.map(send, range(args.receiver)))
            wall = time.monotonic() - started
    finally:
        _stop(web)
    times = sorted(seconds for _status, seconds in results)
    statuses = Counter(status for status, _seconds in results)
    figures = {
        "pushes": args.receiver,
        "clients": args.clients,
        "tenants": args.tenants,
        "statuses": dict(statuses),
        "per_second": round(args.receiver / wall, 1),
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(statistics.quantiles(times, n=20, method="inclusive")[-1] * 1000, 1),
        "max_ms": round(times[-1] * 1000, 1),
        "stored": PushMessage.objects.count(),
        "database": server_version(),
        "broker": "redis" if os.environ.get("REDIS_URL") else "orm",
        "at": datetime.now(env.JST).isoformat(timespec="minutes"),
    }
    ok = statuses == Counter({200: args.receiver}) and figures["max_ms"] < 5000
    print(
        f"push receiver (gunicorn 2×4, {figures['database']}, {figures['broker']} broker): "
        f"{args.receiver} pushes from {args.clients} clients in {wall:.1f} s = "
        f"{figures['per_second']}/s; answer p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} "
        f"ms, max {figures['max_ms']} ms (SenseLink's limit 5,000 ms); statuses {dict(statuses)} "
        f"— {'PASS' if ok else 'FAIL'}"
    )
    if args.json:
        print(json.dumps(figures))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
