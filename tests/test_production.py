"""The production proof (issue 14, item 9): the Procfile's own lines, on PostgreSQL and Redis.

`release` runs, then `web` (gunicorn, DEBUG off), two `worker` clusters and the `dispatcher`
start exactly as the Procfile says. 200 tenants share one attendance slot against a sandbox with
latency (one company per tenant: its own KOT token, employees and punches). Mid-slot one worker
cluster is SIGKILLed (its whole process group, as a machine dies) and restarted, the private
Redis is restarted once (its queue is lost: no persistence), and the other worker cluster gets
SIGTERM and is restarted. Then: every run of the slot ends SUCCESS, every punch is in KOT
exactly once, no run needed a person (no failure, no rerun), /healthz answers 200 again within
two minutes of each event, and the admin's CSS comes through gunicorn with DEBUG off.

Needs DATABASE_URL=postgres://... and the `redis-server` binary (the test starts its own on a
free port; the machine's shared Redis is never touched). Run alone with `pytest -m production`.
The figures go to docs/RELIABILITY.md, section "production" (through `make reports`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone

from connectors.clock import JST
from integrations.models import ConnectSetting, SyncError, SyncRun, Tenant
from portal import procfile
from tests.fault_matrix_report import write_section
from tests.live_world import skip_near_a_kot_window, subprocess_database_url
from tests.multi_tenant_sandbox import MultiTenantSandbox

pytestmark = [
    pytest.mark.production,
    pytest.mark.cluster,
    pytest.mark.slow,
]

TENANTS = 200
EMPLOYEES = 6  # per tenant; 4 of them with recognitions → 8 punches a tenant
LATENCY = 0.15  # seconds the sandbox adds to every request
LEASE_SECONDS = 30  # SYNC_RUN_LEASE_SECONDS for every process: a dead worker shows in ~30 s
HEALTHY_WITHIN = 120.0
FINISH_WITHIN = 600.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own (free port, own directory), never the machine's."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        import redis

        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            time.sleep(0.1)
        pytest.fail("the private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@dataclass
class Event:
    what: str
    at: float  # seconds since the processes started
    healthy_after: float | None = None  # seconds until /healthz answered 200 again
    note: str = ""


@dataclass
class Deployment:
    """The Procfile's processes, started from its lines, and what happened to them."""

    env: dict[str, str]
    logs: Path
    web_url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def start(self, name: str, as_name: str | None = None) -> subprocess.Popen:
        as_name = as_name or name
        process = procfile.start(name, env=self.env, log=self.logs / f"{as_name}.log")
        self.processes[as_name] = process
        return process

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def kill_group(self, name: str) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        _wait_group_gone(process.pid)

    def terminate(self, name: str, timeout: float = 120) -> float:
        """SIGTERM to the cluster's main process only (django-q2 #346); seconds it took."""
        process = self.processes[name]
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not stop within {timeout:.0f} s of SIGTERM")
        _wait_group_gone(process.pid)
        return time.monotonic() - began

    def stop_all(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def healthz(self) -> tuple[int, dict]:
        try:
            response = requests.get(f"{self.web_url}/healthz", timeout=10)
            return response.status_code, response.json()
        except (requests.RequestException, ValueError):
            return 0, {}

    def wait_healthy(self, event: Event, *, timeout: float = 300) -> None:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            status, _body = self.healthz()
            if status == 200:
                event.healthy_after = time.monotonic() - began
                return
            time.sleep(1)


def _wait_group_gone(pgid: int, timeout: float = 60) -> None:
    """Every process of the group has exited (a cluster's workers die with their sentinel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


def wait_until(predicate, *, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def deployment(transactional_db, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://... (two worker clusters never share SQLite)")
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary (the test runs a private one)")
    skip_near_a_kot_window(minutes=25)
    # The processes run with DEBUG off, so the secrets are encrypted with a production key.
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [key]
    now = timezone.now()
    slot = now.astimezone(JST).replace(minute=0, second=0, microsecond=0)
    sandbox = MultiTenantSandbox(
        tenants=TENANTS, employees=EMPLOYEES, day=(slot - timedelta(days=1)).date(), latency=LATENCY
    )
    for company in sandbox.companies:
        tenant = Tenant.objects.create(
            name=f"{company.slug} 株式会社",
            slug=company.slug,
            subscription_status=Tenant.Subscription.ACTIVE,
            kot_access_token=company.kot_token,
            contact_email=f"hr@{company.slug}.example.jp",
        )
        ConnectSetting.objects.create(
            tenant=tenant,
            senselink_url=sandbox.senselink_url,
            app_key=company.app_key,
            app_secret=company.app_secret,
            attendance_mode=ConnectSetting.AttendanceMode.CLOCK_IN_OUT,
            attendance_trigger=ConnectSetting.Trigger.SCHEDULED,
            attendance_hour=slot.hour,
            attendance_target_day=ConnectSetting.TargetDay.PREVIOUS,
        )
    # Configured yesterday: this hour's slot is theirs (a setting's earlier slots are not).
    ConnectSetting.objects.update(updated_at=now - timedelta(days=1))
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    try:
        yield sandbox, redis_server, slot, key
    finally:
        redis_server.stop()
        sandbox.stop()


def production_env(sandbox, redis_url: str, key: str, static_root: Path, port: int):
    env = {k: v for k, v in os.environ.items() if k not in {"Q_SYNC", "Q_CLUSTER_NAME"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": "production-proof-" + Fernet.generate_key().decode(),
            "FIELD_ENCRYPTION_KEY": key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BEHIND_TLS_PROXY": "true",
            "SECURE_SSL_REDIRECT": "true",
            "SECURE_COOKIES": "true",
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": redis_url,
            "KOT_API_BASE_URL": sandbox.kot_url,
            "SENSELINK_ALLOW_PRIVATE_HOSTS": "true",
            "EMAIL_URL": "dummymail://",
            "STATIC_ROOT": str(static_root),
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "Q_WORKERS": "2",
            "SYNC_CONCURRENCY": "4",
            "SYNC_RUN_LEASE_SECONDS": str(LEASE_SECONDS),
            # Start-up refuses a per-call deadline above a fifth of the lease.
            "UPSTREAM_CALL_DEADLINE_SECONDS": str(LEASE_SECONDS // 5),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def slot_runs(slot: datetime):
    return SyncRun.objects.filter(slot=slot, kind=SyncRun.Kind.ATTENDANCE)


def finished(slot: datetime) -> int:
    return slot_runs(slot).filter(status__in=SyncRun.FINISHED_STATUSES).count()


def test_the_procfile_processes_survive_kills_restarts_and_a_redis_restart(deployment, tmp_path):
    sandbox, redis_server, slot, key = deployment
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = production_env(sandbox, redis_server.url, key, tmp_path / "static", port)
    deploy = Deployment(env=env, logs=logs, web_url=f"http://127.0.0.1:{port}")
    figures: dict = {"events": deploy.events}
    failure = ""
    try:
        # release: migrations (post_migrate declares the schedules) and collectstatic.
        release = deploy.start("release")
        assert release.wait(timeout=300) == 0, deploy.log("release")
        figures["release_seconds"] = deploy.elapsed()
        for name, as_name in (
            ("web", "web"),
            ("dispatcher", "dispatcher"),
            ("worker", "worker-a"),
            ("worker", "worker-b"),
        ):
            deploy.start(name, as_name)
        start = Event("web, dispatcher and two worker clusters started", deploy.elapsed())
        deploy.events.append(start)
        deploy.wait_healthy(start)
        assert start.healthy_after is not None, deploy.log("dispatcher") + deploy.log("web")

        # The admin, styled, through gunicorn with DEBUG off (behind a TLS proxy).
        behind_tls = {"X-Forwarded-Proto": "https"}
        page = requests.get(f"{deploy.web_url}/admin/login/", headers=behind_tls, timeout=30)
        assert page.status_code == 200, page.text[:500]
        (css,) = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
        sheet = requests.get(f"{deploy.web_url}{css}", headers=behind_tls, timeout=30)
        assert sheet.status_code == 200
        assert sheet.headers["Content-Type"].startswith("text/css")
        assert "immutable" in sheet.headers["Cache-Control"]
        figures["admin_css"] = (
            f"{css} ({len(sheet.content):,} bytes, {sheet.headers['Content-Type']})"
        )

        # The dispatcher created the slot's runs; wait until the workers are well into them.
        wait_until(lambda: slot_runs(slot).count() == TENANTS, timeout=180, what="200 slot runs")
        wait_until(lambda: finished(slot) >= 30, timeout=300, what="30 finished runs")

        # 1. One worker cluster dies as a machine dies (SIGKILL, every process), then restarts.
        running = slot_runs(slot).filter(status=SyncRun.Status.RUNNING).count()
        deploy.kill_group("worker-a")
        killed = Event("SIGKILL worker cluster A (whole process group)", deploy.elapsed())
        killed.note = f"{running} runs were running; {finished(slot)} of {TENANTS} finished"
        deploy.events.append(killed)
        deploy.start("worker", "worker-a")
        deploy.wait_healthy(killed)
        wait_until(lambda: finished(slot) >= 80, timeout=300, what="80 finished runs")

        # 2. Redis restarts (no persistence: every queued task is lost).
        waiting = redis_tasks(redis_server.url)
        redis_server.stop()
        time.sleep(3)  # a real restart takes a moment; the clusters see the broker gone
        redis_server.start()
        restarted = Event("Redis restarted (queue lost)", deploy.elapsed())
        restarted.note = f"{waiting} queued tasks lost; {finished(slot)} of {TENANTS} finished"
        deploy.events.append(restarted)
        deploy.wait_healthy(restarted)

        # 3. The other worker cluster is stopped as a deploy stops it (SIGTERM), then restarts.
        running = slot_runs(slot).filter(status=SyncRun.Status.RUNNING).count()
        took = deploy.terminate("worker-b")
        stopped = Event("SIGTERM worker cluster B, then restarted", deploy.elapsed())
        stopped.note = f"stopped in {took:.1f} s with {running} runs running"
        deploy.events.append(stopped)
        deploy.start("worker", "worker-b")
        deploy.wait_healthy(stopped)

        # Everything ends by itself.
        active = SyncRun.ACTIVE_STATUSES
        wait_until(
            lambda: (
                slot_runs(slot).count() == TENANTS
                and not slot_runs(slot).filter(status__in=active).exists()
            ),
            timeout=FINISH_WITHIN,
            what="every run of the slot to end",
            every=2,
        )
        done = Event("every run of the slot ended", deploy.elapsed())
        deploy.events.append(done)
        figures["all_done_seconds"] = done.at - start.at
        final_status, final_body = deploy.healthz()
        figures["final_healthz"] = (final_status, final_body)
        for name in ("web", "dispatcher", "worker-a", "worker-b"):
            assert deploy.alive(name), f"{name} exited:\n{deploy.log(name)}"

        runs = list(slot_runs(slot).order_by("id"))
        figures["runs"] = runs
        figures["statuses"] = dict(
            sorted((s, sum(1 for r in runs if r.status == s)) for s in {r.status for r in runs})
        )
        figures["resumed"] = sum(1 for r in runs if r.attempt > 1)
        counts = {c.slug: sandbox.punch_counts(c) for c in sandbox.companies}
        expected = sum(len(c.expected) for c in sandbox.companies)
        posted = sum(sum(n.values()) for n in counts.values())
        duplicates = sum(n - 1 for c in counts.values() for n in c.values() if n > 1)
        missing = sum(len(c.expected - set(counts[c.slug])) for c in sandbox.companies)
        extra = sum(len(set(counts[c.slug]) - c.expected) for c in sandbox.companies)
        figures.update(expected=expected, posted=posted, duplicates=duplicates, missing=missing)

        not_success = [r for r in runs if r.status != SyncRun.Status.SUCCESS]
        causes = SyncError.objects.filter(run__in=not_success).values_list("code", flat=True)
        assert not not_success, (
            f"{len(not_success)} of {TENANTS} runs did not end SUCCESS: "
            f"{figures['statuses']}, error codes {sorted(set(causes))} "
            "(worker_lost: a killed worker's run was failed for a person to rerun, instead of "
            "being resumed automatically)"
        )
        assert len(runs) == TENANTS
        assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.RERUN).exists()
        assert (duplicates, missing, extra) == (0, 0, 0), figures
        assert figures["resumed"] >= 1, "the SIGKILL interrupted no run: the proof proved nothing"
        for event in deploy.events[:-1]:  # each disruption (the last event is the end)
            assert event.healthy_after is not None, f"/healthz never 200 after: {event.what}"
            assert event.healthy_after <= HEALTHY_WITHIN, event
        assert final_status == 200, final_body
    except BaseException as exc:
        failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
        raise
    finally:
        deploy.stop_all()
        figures["seconds"] = deploy.elapsed()
        write_section("production", render(figures, failure=failure))


def redis_tasks(url: str) -> int:
    import redis

    with contextlib.suppress(redis.RedisError):
        return int(redis.Redis.from_url(url, socket_timeout=2).llen("django_q:portal:q"))
    return -1


def render(figures: dict, *, failure: str) -> str:
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[2:3]
    now = datetime.now(JST)
    lines = [
        "## Production proof: the Procfile's processes under kills and restarts",
        "",
        "Generated by `tests/test_production.py` (`pytest -m production`, PostgreSQL and a "
        "private redis-server).",
        "",
        f"- Generated: {now:%Y-%m-%d %H:%M} JST; PostgreSQL {pg}; "
        f"Redis {(redis_version or ['?'])[0].removeprefix('v=')}",
        f"- Result: **{'PASS' if not failure else 'FAIL'}**" + (f" — {failure}" if failure else ""),
        f"- World: {TENANTS} tenants on one attendance slot, {EMPLOYEES} KOT employees each "
        f"(4 with recognitions: 8 punches a tenant), sandbox latency {LATENCY * 1000:.0f} ms "
        f"per request, `SYNC_RUN_LEASE_SECONDS={LEASE_SECONDS}`, two worker clusters of "
        "`Q_WORKERS=2`, `WEB_CONCURRENCY=2`.",
        "- Processes: started from the Procfile's lines as written (`portal/procfile.py`): "
        "`release`, then `web`, `dispatcher`, `worker` ×2.",
    ]
    if "release_seconds" in figures:
        lines.append(f"- `release` (migrate + collectstatic): {figures['release_seconds']:.1f} s")
    if "admin_css" in figures:
        lines.append(f"- Admin CSS through gunicorn, DEBUG off: {figures['admin_css']}")
    lines += ["", "| t (s) | event | /healthz 200 again after | note |", "|---|---|---|---|"]
    for event in figures["events"]:
        after = "-" if event.healthy_after is None else f"{event.healthy_after:.1f} s"
        lines.append(f"| {event.at:.0f} | {event.what} | {after} | {event.note or '-'} |")
    lines.append("")
    if "statuses" in figures:
        lines += [
            f"- Runs of the slot: {len(figures['runs'])}; by status: "
            + ", ".join(f"{k} {v}" for k, v in figures["statuses"].items())
            + f"; resumed automatically (attempt > 1): {figures['resumed']}; reruns by a "
            "person: 0",
            f"- Punches: {figures['expected']:,} expected, {figures['posted']:,} in KOT, "
            f"{figures['duplicates']} duplicates, {figures['missing']} missing",
            f"- From start to every run ended: {figures.get('all_done_seconds', 0):.0f} s; "
            f"whole test {figures['seconds']:.0f} s",
        ]
    if "final_healthz" in figures:
        status, body = figures["final_healthz"]
        lines.append(f"- Final /healthz: {status} `{body}`")
    lines.append("")
    return "\n".join(lines)
