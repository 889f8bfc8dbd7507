"""/healthz tells the clusters apart: 200 when the database, the broker and the dispatcher (a
heartbeat younger than 3 minutes) are fine, 503 naming the failed check otherwise; whether a
worker cluster is alive and the sync backlog are information. No login, nothing to leak."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from integrations.models import ClusterHeartbeat, SyncRun
from integrations.services import heartbeats
from integrations.services.dispatch import dispatch
from integrations.services.runs import claim_run, request_run
from portal import health
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db


def beat(role: str, age: timedelta, host: str = "test") -> None:
    ClusterHeartbeat.objects.update_or_create(
        name=f"{role}@{host}", defaults={"beat_at": timezone.now() - age, "host": host}
    )


def test_all_checks_pass_with_a_recent_dispatch(client):
    dispatch()  # what the dispatcher cluster does every minute
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True
    assert body["broker"] is True
    assert body["dispatcher"] is True
    (row,) = ClusterHeartbeat.objects.all()
    assert row.name.startswith("dispatcher@")
    assert body["dispatcher_heartbeat"] == row.beat_at.isoformat()
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_dispatcher_ever_seen_is_unhealthy(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "database": True,
        "broker": True,
        "dispatcher": False,
        "dispatcher_heartbeat": None,
        "workers": False,
        "workers_heartbeat": None,
        "backlog": {"queued": 0, "oldest_age_seconds": None, "tasks_waiting": 0},
    }


def test_a_dispatcher_heartbeat_older_than_three_minutes_means_no_dispatcher(client):
    beat(heartbeats.DISPATCHER, timedelta(minutes=2))
    assert client.get("/healthz").status_code == 200
    beat(heartbeats.DISPATCHER, timedelta(minutes=4))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["dispatcher"] is False


def test_the_newest_dispatcher_of_several_hosts_counts(client):
    beat(heartbeats.DISPATCHER, timedelta(hours=2), host="retired")
    beat(heartbeats.DISPATCHER, timedelta(0), host="current")
    assert client.get("/healthz").status_code == 200


def test_live_workers_do_not_stand_in_for_a_dead_dispatcher(client):
    beat(heartbeats.WORKERS, timedelta(0))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["dispatcher"], body["workers"]) == (False, True)


def test_workers_alive_or_not_is_information_only(client):
    beat(heartbeats.DISPATCHER, timedelta(0))
    beat(heartbeats.WORKERS, timedelta(minutes=10))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["workers"] is False

    beat(heartbeats.WORKERS, timedelta(seconds=20))
    body = client.get("/healthz").json()
    assert body["workers"] is True
    assert body["workers_heartbeat"] is not None


def test_a_worker_deep_in_a_long_sync_counts_as_alive_by_its_run_lease(client, noon):
    # At noon: inside a KOT window the claim would make the employee run wait for the window's
    # end instead of starting it (and beating).
    beat(heartbeats.DISPATCHER, timedelta(0))
    beat(heartbeats.WORKERS, timedelta(minutes=20))  # busy for 20 minutes with one sync
    acme = make_acme()
    run = request_run(tenant=acme, kind="employee", enqueue=False).run
    claim_run(run_id=run.pk)  # its Heartbeat keeps heartbeat_at fresh while it works

    assert client.get("/healthz").json()["workers"] is True


def test_a_worker_task_beats_for_the_workers(client):
    from integrations.tasks import execute_run_task, workers_beat_task

    assert workers_beat_task() == "beat"
    (row,) = ClusterHeartbeat.objects.all()
    assert row.name.startswith("workers@")
    ClusterHeartbeat.objects.update(beat_at=timezone.now() - timedelta(minutes=5))
    execute_run_task(0)  # no such run: nothing to do, but the worker showed it is alive
    row.refresh_from_db()
    assert timezone.now() - row.beat_at < timedelta(seconds=30)


def test_the_backlog_counts_due_runs_and_the_age_of_the_oldest(client, noon):
    beat(heartbeats.DISPATCHER, timedelta(0))
    acme, globex = make_acme(), make_globex()
    old = request_run(tenant=acme, kind="employee", enqueue=False).run
    SyncRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    request_run(tenant=globex, kind="employee", enqueue=False)
    later = request_run(
        tenant=acme, kind="attendance", target_date=timezone.localdate(), enqueue=False
    ).run
    SyncRun.objects.filter(pk=later.pk).update(
        status=SyncRun.Status.WAITING, not_before=timezone.now() + timedelta(hours=1)
    )  # not due yet: not backlog

    body = client.get("/healthz").json()

    assert body["backlog"]["queued"] == 2
    assert 595 <= body["backlog"]["oldest_age_seconds"] <= 700


def test_an_unreachable_redis_broker_is_unhealthy(client, settings):
    beat(heartbeats.DISPATCHER, timedelta(0))
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://127.0.0.1:1/0"}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert response.json()["backlog"]["tasks_waiting"] is None  # the broker is not asked again
    assert "127.0.0.1:1" not in response.content.decode()


def test_a_reachable_redis_broker_is_pinged(client, settings):
    url = os.environ.get("REDIS_TEST_URL")
    if not url:
        pytest.skip("REDIS_TEST_URL is not set (CI sets redis://127.0.0.1:6379/5)")
    beat(heartbeats.DISPATCHER, timedelta(0))
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": url}
    assert client.get("/healthz").json()["broker"] is True


def test_an_unreachable_database_is_unhealthy(client, monkeypatch):
    class Down:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", Down())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] is False


def test_only_get_and_head_are_answered(client):
    dispatch()
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_a_load_balancer_probing_over_plain_http_is_not_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    beat(heartbeats.DISPATCHER, timedelta(0))
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/").status_code == 301  # everything else still goes to HTTPS
