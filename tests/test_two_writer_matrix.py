"""The two-writer matrix (issue 18): the real-time poll on a running cluster and the same day's
attendance run in a process of its own, at once, under each fault — on PostgreSQL, with real
processes (``manage.py qcluster``, ``manage.py run_sync``) against the sandbox over loopback.

Every cell: each punch in KOT exactly once and none lost, after the next run settles (a final
attendance run and poll, as the next day's schedule and the next interval would).

The processes read the real clock. When it is near one of KOT's windows (or near midnight) the
processes' clock is moved past it with libfaketime (an offset, inherited by every child), and the
sandbox's KOT clock by the same offset: the cells run at any hour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import connection

from connectors.clock import JST
from connectors.kot import forbidden_window_end
from integrations.models import PunchLedger, SyncRun
from scripts.at_jst import faketime_env
from tests.fault_matrix_report import write_section
from tests.live_world import process_env, start_manage, stop, wait_for
from tests.sync_world import only_records, small_kot
from tests.world import make_acme

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

EMPLOYEES = [f"{n:04d}" for n in range(1, 13)]
LEASE = 10  # seconds: short, so that "outlives its lease" and "a killed writer" fit in a test
POST = "POST /v1.0/daily-workings/timerecord/{key}"

RESULTS: dict[str, str] = {}
CELLS = {
    "lost-answers": "KOT stores the punch, then the answer is lost (read timeout): POSTs 1–3 and 11–13",
    "502-after-store": "KOT stores the punch, then a gateway answers 502: POSTs 1–3 and 11–13",
    "throttled-past-lease": f"KOT allows 2 calls/s (429 + Retry-After): the run posts for longer than its {LEASE} s lease",
    "kill-run": "SIGKILL of the attendance run's process while it posts",
    "kill-poll": "SIGKILL of the worker cluster while its poll posts",
}


def offset_for(now: datetime) -> timedelta:
    """How far the processes' clock must move so that the cell neither meets a KOT window nor
    crosses midnight or the small hours (the day's records start at 01:00): 0 when it need not."""
    moment = now
    for _ in range(48):
        ahead = [moment + timedelta(minutes=m) for m in range(0, 16)]
        local = moment.astimezone(JST)
        if not any(forbidden_window_end(t) for t in ahead) and 3 <= local.hour < 23:
            return moment - now
        moment += timedelta(minutes=30)
    raise AssertionError("no quiet half hour found in a day")


@dataclass
class Cell:
    sandbox: object
    tenant: object
    today: object
    env: dict[str, str]
    tmp_path: object
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, *args: str, name: str, **extra: str) -> subprocess.Popen:
        log = self.tmp_path / f"{name}.log"
        process = start_manage(*args, env={**self.env, **extra}, log=log)
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def posts(self) -> int:
        return self.sandbox.request_counts()[POST]


@pytest.fixture
def cell(transactional_db, make_sandbox, settings, tmp_path, monkeypatch):
    url = os.environ.get("REDIS_TEST_URL")
    if connection.vendor != "postgresql" or not url:
        pytest.skip("needs DATABASE_URL=postgres://... and REDIS_TEST_URL=redis://...")
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    real_now = datetime.now(JST)  # this process's clock (libfaketime's, under make test-at)
    offset = int(offset_for(real_now).total_seconds())
    extra: dict[str, str] = {}
    if offset:
        moved = faketime_env(offset, os.environ)
        if moved is None:
            pytest.skip(
                "near a KOT window, and libfaketime (scripts/ensure_faketime.sh) is missing"
            )
        extra = {k: moved[k] for k in moved if os.environ.get(k) != moved[k]}
    now = real_now + timedelta(seconds=offset)
    # Every answer takes 0.15 s and each writer sends one KOT call at a time: the poll's
    # clock-ins are still going out when the run reads KOT and starts posting beside it.
    sandbox = make_sandbox(employees=3, latency=0.15)
    sandbox.clock.offset = timedelta(seconds=offset)  # KOT's clock, for its windows
    sandbox.senselink.clock = lambda: time.time() + offset  # its signatures' timestamp window
    settings.KOT_API_BASE_URL = sandbox.kot_url
    small_kot(
        sandbox, *({"code": code, "last_name": "社員", "first_name": code} for code in EMPLOYEES)
    )
    today = now.date()
    # Each employee came in this morning and was seen again later; both before "now".
    first = now.replace(hour=1, minute=0, second=0, microsecond=0)
    records = []
    for i, code in enumerate(EMPLOYEES):
        records += [(code, first + timedelta(minutes=i)), (code, now - timedelta(minutes=30 - i))]
    only_records(sandbox, today, *records)
    tenant = make_acme(
        sandbox=sandbox,
        realtime_clock_in=True,
        attendance_mode="clock_in_out",
        attendance_trigger="scheduled",
        attendance_hour=3,
    )
    env = process_env(
        sandbox,
        REDIS_URL=url,
        Q_WORKERS="2",
        SYNC_RUN_LEASE_SECONDS=str(LEASE),
        UPSTREAM_CALL_DEADLINE_SECONDS="2",
        READ_TIMEOUT_SECONDS="1",
        CONNECT_TIMEOUT_SECONDS="1",
        KOT_MAX_CONCURRENCY="1",
        KOT_THROTTLE_MAX_WAIT_SECONDS="60",
        REALTIME_MIN_POLL_SPACING_SECONDS="0.5",
        **extra,
    )
    running = Cell(sandbox=sandbox, tenant=tenant, today=today, env=env, tmp_path=tmp_path)
    try:
        yield running
    finally:
        for process in running.processes:
            stop(process, timeout=20)


def keep_polling(cell: Cell, until) -> None:
    """Queue the tenant's poll on the running cluster again and again (a push would do the
    same) until ``until()`` is true."""
    from integrations import queue

    setting_id = cell.tenant.connect_settings.get().pk

    def queued_again():
        queue.enqueue([queue.poll_job(setting_id=setting_id)])
        return until()

    wait_for(queued_again, timeout=120, every=0.5, what="the writers to finish")


def settle(cell: Cell) -> None:
    """The next run and the next poll, after every lease of the cell ran out: the reaper's
    move for a dead run, a final attendance run (or the resumed one), then a poll."""
    setting_id = cell.tenant.connect_settings.get().pk
    script = (
        "import time\n"
        "from django.utils import timezone\n"
        "from integrations.models import SyncRun, Tenant\n"
        "from integrations.services import realtime\n"
        "from integrations.services.dispatch import reap_dead_runs\n"
        "from integrations.services.execution import execute_run\n"
        "from integrations.services.runs import request_run\n"
        f"time.sleep({LEASE + 1})\n"
        "reap_dead_runs(now=timezone.now())\n"
        "tenant = Tenant.objects.get(slug='acme')\n"
        "active = SyncRun.objects.filter(tenant=tenant, kind='attendance', status__in=['queued', 'waiting'])\n"
        "active.update(not_before=None)\n"
        "run = active.first() or request_run(tenant=tenant, kind='attendance',"
        f" target_date=timezone.localdate(), enqueue=False).run\n"
        "result = execute_run(run_id=run.pk)\n"
        "print('settled', result and result.status)\n"
        f"print(realtime.poll(setting_id={setting_id}))\n"
    )
    process = cell.start("shell", "-c", script, name="settle")
    assert process.wait(timeout=120) == 0, process.log.read_text()


def verdict(cell: Cell, name: str) -> None:
    """Each employee's clock-in and clock-out in KOT exactly once, at the right times."""
    held: dict[tuple[str, str], list[str]] = {}
    for punch in cell.sandbox.kot.punches:
        employee = cell.sandbox.kot.employee_by_key(punch["employeeKey"])
        held.setdefault((employee["code"], punch["code"]), []).append(punch["time"])
    records = cell.sandbox.senselink.records_for(cell.today)
    expected = {}
    for code in EMPLOYEES:
        times = sorted(r["sign_time"] for r in records if r["job_number"] == code)
        for kind, when in (("1", times[0]), ("2", times[-1])):
            stamp = datetime.fromtimestamp(when, JST).strftime("%Y-%m-%dT%H:%M:%S+09:00")
            expected[(code, kind)] = [stamp]
    duplicates = {k: v for k, v in held.items() if len(v) > 1}
    missing = sorted(k for k in expected if k not in held)
    assert not duplicates, f"{name}: punches stored twice: {duplicates}"
    assert not missing, f"{name}: punches lost: {missing}"
    assert held == expected
    states = set(PunchLedger.objects.values_list("state", flat=True))
    assert states == {"posted"}, f"{name}: ledger rows left {states}"
    writers = Counter(
        owner.split(":")[0] for owner in PunchLedger.objects.values_list("owner", flat=True)
    )
    first = SyncRun.objects.filter(triggered_by_label="run_sync").order_by("pk").first()
    took = (
        f"{(first.finished_at - first.started_at).total_seconds():.0f} s"
        if first and first.finished_at and first.started_at
        else "killed"
    )
    RESULTS[name] = (
        f"{len(expected)} punches, each once; {cell.posts()} POSTs in all; last sent by the "
        f"poll {writers['poll']}, by a run {writers['run']}; the run beside the poll took "
        f"{took}; runs: " + ", ".join(sorted(SyncRun.objects.values_list("status", flat=True)))
    )


def run_both(cell: Cell, *, kill: str = "") -> None:
    """The cluster polls first; once its poll is posting, the attendance run of the same day
    starts beside it (so the run reads KOT while clock-ins are in flight). ``kill``: SIGKILL the
    run's process, or the cluster (then started again), in the middle of its POSTs."""
    state: dict[str, object] = {"worker": cell.start("qcluster", name="worker")}

    def done() -> bool:
        worker = state["worker"]
        run = state.get("run")
        posts = cell.posts()
        if kill == "poll" and not state.get("killed") and posts >= 2:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            cell.processes.remove(worker)
            state["killed"] = posts
            state["worker"] = cell.start("qcluster", name="worker-restarted")
        if run is None and posts >= 2:
            state["run"] = cell.start(
                "run_sync",
                "attendance",
                "--tenant",
                "acme",
                "--date",
                cell.today.isoformat(),
                name="run",
            )
            state["run_from"] = posts
        if (
            kill == "run"
            and run is not None
            and not state.get("killed")
            and run.poll() is None
            and posts >= state["run_from"] + 4
        ):
            os.killpg(run.pid, signal.SIGKILL)
            state["killed"] = posts
        return run is not None and run.poll() is not None

    keep_polling(cell, done)


@pytest.mark.parametrize("name", list(CELLS))
def test_two_writers_post_each_punch_once(cell, name):
    faults = cell.sandbox.faults
    post = {"path": "timerecord/", "method": "POST"}
    if name == "lost-answers":  # the poll's first POSTs, and later ones (the run's, mostly)
        faults.add("kot", "timeout_after_store", **post, times=3, delay=2)
        faults.add("kot", "timeout_after_store", **post, times=3, after=10, delay=2)
    elif name == "502-after-store":
        faults.add("kot", "gateway_after_store", **post, times=3)
        faults.add("kot", "gateway_after_store", **post, times=3, after=10)
    elif name == "throttled-past-lease":
        cell.sandbox.kot.configure(throttle_rate=2.0, throttle_style="429")
    run_both(cell, kill=name.removeprefix("kill-") if name.startswith("kill-") else "")
    faults.clear()
    cell.sandbox.kot.configure(throttle_rate=0)
    settle(cell)
    verdict(cell, name)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if set(RESULTS) != set(CELLS):
        return
    lines = [
        "## Two writers: the real-time poll and the attendance run at once",
        "",
        "Generated by `tests/test_two_writer_matrix.py` on PostgreSQL: a `manage.py qcluster` "
        "polling the tenant again and again and a `manage.py run_sync attendance` of the same day, "
        f"started together against the sandbox ({len(EMPLOYEES)} employees, a clock-in and a "
        f"clock-out each; run lease {LEASE} s). After each cell the next run and poll settle "
        "what is left; then every punch must be in KOT exactly once and every ledger row posted.",
        "",
        "| cell | what the test observed |",
        "|---|---|",
    ]
    lines += [f"| {CELLS[k]} | {RESULTS[k]} |" for k in CELLS]
    write_section("two-writers", "\n".join(lines))
