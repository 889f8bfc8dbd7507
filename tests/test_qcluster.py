"""A real `manage.py qcluster` on PostgreSQL with the Redis broker runs a manual run to success.

Needs DATABASE_URL=postgres://... and REDIS_TEST_URL (CI sets redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from integrations.models import SyncRun
from integrations.services.runs import request_run
from tests.live_world import (
    process_env,
    skip_near_a_kot_window,
    start_manage,
    stop,
    wait_for,
)
from tests.world import make_acme

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def redis_url(monkeypatch):
    url = os.environ.get("REDIS_TEST_URL")
    if connection.vendor != "postgresql" or not url:
        pytest.skip("needs DATABASE_URL=postgres://... and REDIS_TEST_URL=redis://...")
    # This process enqueues onto the same Redis list the cluster reads (django-q2 reads its
    # settings once, at import, so its Conf is switched here rather than Q_CLUSTER).
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    return url


@pytest.fixture
def live(transactional_db, sandbox, settings):
    skip_near_a_kot_window()
    settings.KOT_API_BASE_URL = sandbox.kot_url
    # The first sync registers the sandbox's whole company next to 3 hand-registered persons:
    # an onboarding the creation guard would stop, so the limit is raised as support would.
    sandbox.acme = make_acme(sandbox=sandbox, creation_guard_count=100)
    return sandbox


@pytest.fixture
def cluster(live, redis_url, tmp_path):
    log = tmp_path / "qcluster.log"
    process = start_manage(
        "qcluster", env=process_env(live, REDIS_URL=redis_url, Q_WORKERS="2"), log=log
    )
    process.log = log
    try:
        yield process
    finally:
        stop(process)


def test_a_real_cluster_runs_a_manual_run_to_success(live, cluster):
    request = request_run(tenant=live.acme, kind=SyncRun.Kind.EMPLOYEE)  # enqueued on commit
    run_id = request.run.pk

    def finished():
        if cluster.poll() is not None:
            pytest.fail(f"qcluster exited early:\n{cluster.log.read_text()}")
        return SyncRun.objects.filter(pk=run_id, status__in=SyncRun.FINISHED_STATUSES).first()

    run = wait_for(finished, timeout=60, every=0.25, what=f"run {run_id} to finish")

    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert run.started_at and run.finished_at
    assert run.created_count > 0
    assert live.senselink.persons_by_job_number()  # the persons really reached SenseLink


def test_the_dispatcher_cluster_runs_the_dispatch_schedule(live, redis_url, tmp_path):
    from integrations.services import heartbeats
    from portal import procfile

    log = tmp_path / "dispatcher.log"
    # The Procfile's own line: Q_CLUSTER_NAME=portal-dispatcher python manage.py qcluster
    dispatcher = procfile.start(
        "dispatcher", env=process_env(live, REDIS_URL=redis_url, Q_WORKERS="2"), log=log
    )
    try:
        wait_for(
            lambda: dispatcher.poll() is None and heartbeats.last_beat(role=heartbeats.DISPATCHER),
            timeout=90,
            every=0.5,
            what="the dispatcher's first heartbeat",
        )
    finally:
        stop(dispatcher)
    assert "portal-dispatcher" in log.read_text()  # serving its own queue
