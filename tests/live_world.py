"""Helpers for tests that run real processes (run_sync, qcluster) against the test database and
an in-process sandbox, on the real clock (no time travel: a subprocess would not follow it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from connectors.kot import forbidden_window_end

BASE_DIR = Path(__file__).resolve().parent.parent


def skip_near_a_kot_window(minutes: int = 10) -> None:
    """The portal checks KOT's windows on the real clock: stay well clear of them."""
    now = timezone.now()
    for step in range(minutes + 1):
        if forbidden_window_end(now + timedelta(minutes=step)):
            pytest.skip(
                f"real JST time is within {minutes} minutes of a KOT forbidden window "
                "(08:30-10:00, 17:30-18:30); this test uses the real clock"
            )


def subprocess_database_url() -> str:
    """A DATABASE_URL naming the test database this test process uses."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    if connection.vendor != "postgresql":
        pytest.skip(f"no DATABASE_URL for a {connection.vendor} test database")
    auth = params.get("USER") or ""
    if params.get("PASSWORD"):
        auth += f":{params['PASSWORD']}"
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{params['NAME']}"


def process_env(sandbox, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": subprocess_database_url(),
        "DEBUG": "true",
        "SENSELINK_ALLOW_PRIVATE_HOSTS": "true",
        "KOT_API_BASE_URL": sandbox.kot_url,
        "EMAIL_URL": "consolemail://",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("Q_SYNC", None)
    env.update(extra)
    return env


def start_manage(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `python manage.py ...` in its own session, output to a log file (no pipe to fill)."""
    out = log.open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()


def stop(process: subprocess.Popen, *, timeout: float = 15.0) -> None:
    """SIGTERM to the main process only (django-q2 #346), SIGKILL its group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_for(predicate, *, timeout: float, every: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` (a real process is working) until truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
