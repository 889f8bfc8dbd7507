"""No human after a restart (issue 14, item 5): SIGTERM to a real `manage.py qcluster` mid-run
makes its worker stop before its next write and hand the run back (queued again, lease
cleared, no mail) within SHUTDOWN_GRACE_SECONDS; the dispatcher's next tick hands it out again
and a restarted cluster finishes the same run, each punch in KOT once.

Needs DATABASE_URL=postgres://... and REDIS_TEST_URL (two processes share the database).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations.models import SyncRun
from integrations.services.dispatch import dispatch
from integrations.services.runs import HANDBACK_MESSAGE, request_run
from tests.live_world import process_env, skip_near_a_kot_window, start_manage, stop, wait_for
from tests.sync_world import at, configure, only_records, small_kot
from tests.world import make_acme

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

STAFF = [{"code": f"{i:04}", "last_name": "社員", "first_name": f"{i}号"} for i in range(1, 9)]
GRACE = 10


@pytest.fixture
def redis_url(monkeypatch):
    url = os.environ.get("REDIS_TEST_URL")
    if connection.vendor != "postgresql" or not url:
        pytest.skip("needs DATABASE_URL=postgres://... and REDIS_TEST_URL=redis://...")
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    import redis

    redis.Redis.from_url(url).delete(f"django_q:{Conf.PREFIX}:q")  # nothing left from before
    return url


@pytest.fixture
def live(transactional_db, sandbox, settings):
    skip_near_a_kot_window()
    settings.KOT_API_BASE_URL = sandbox.kot_url
    sandbox.acme = make_acme(sandbox=sandbox)
    return sandbox


def test_sigterm_hands_the_run_back_and_a_restarted_cluster_finishes_it(live, redis_url, tmp_path):
    day = timezone.localdate() - timedelta(days=1)
    small_kot(live, *STAFF)
    configure(live.acme, attendance_mode="clock_in_out")
    records = []
    for i in range(1, 9):
        records += [(f"{i:04}", at(8, i, day=day)), (f"{i:04}", at(18, i, day=day))]
    only_records(live, day, *records)
    live.latency = 0.3  # 16 POSTs one at a time: about 5 s of writes to interrupt
    env = process_env(
        live,
        REDIS_URL=redis_url,
        Q_WORKERS="1",
        SYNC_CONCURRENCY="1",
        KOT_MAX_CONCURRENCY="1",  # punch POSTs one at a time (the KOT limiter's own bound)
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        EMAIL_URL="consolemail://",
    )
    first = start_manage("qcluster", env=env, log=tmp_path / "first.log")
    second = None
    try:
        request = request_run(tenant=live.acme, kind="attendance", target_date=day)
        wait_for(
            lambda: len(live.kot.punches) >= 3 or first.poll() is not None,
            timeout=90,
            what="the first punches in KOT",
        )
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        began = time.monotonic()
        stop(first, timeout=GRACE + 20)  # SIGTERM to the cluster's main process
        took = time.monotonic() - began
        log = (tmp_path / "first.log").read_text()
        assert first.returncode is not None
        assert took < GRACE, f"stopped in {took:.1f} s\n{log[-3000:]}"

        run = SyncRun.objects.get(pk=request.run.pk)
        handed_at = len(live.kot.punches)
        assert run.status == SyncRun.Status.QUEUED, (run.status, run.message, log[-3000:])
        assert (run.attempt, run.resumes) == (1, 1)
        assert run.message == HANDBACK_MESSAGE
        assert run.heartbeat_at is None and run.finished_at is None
        assert not run.errors.exists()
        assert 3 <= handed_at < 16

        second = start_manage("qcluster", env=env, log=tmp_path / "second.log")
        dispatch()  # the dispatcher's next tick hands the run out again
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status in SyncRun.FINISHED_STATUSES,
            timeout=120,
            every=0.5,
            what="the restarted cluster to finish the run",
        )
    finally:
        stop(first)
        if second is not None:
            stop(second)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert run.attempt == 2
    assert run.skipped_count == handed_at and run.created_count == 16 - handed_at
    counts = Counter((p["employeeKey"], p["date"], p["code"], p["time"]) for p in live.kot.punches)
    assert len(counts) == 16 and set(counts.values()) == {1}
    assert not SyncRun.objects.exclude(pk=run.pk).exists()  # no rerun, no person needed
    for name in ("first.log", "second.log"):
        assert "Subject:" not in (tmp_path / name).read_text()  # no mail
    print(f"SIGTERM: handed back after {handed_at} of 16 punches, cluster stopped in {took:.1f} s")
