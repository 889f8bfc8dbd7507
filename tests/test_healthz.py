"""/healthz: 200 when the database, the broker and a live cluster (a recent heartbeat) answer,
503 naming which check failed otherwise; no login, nothing to leak."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from integrations.models import ClusterHeartbeat
from integrations.services.dispatch import dispatch
from portal import health

pytestmark = pytest.mark.django_db


def beat(age: timedelta) -> None:
    ClusterHeartbeat.objects.update_or_create(
        name="portal@test", defaults={"beat_at": timezone.now() - age, "host": "test"}
    )


def test_all_checks_pass_with_a_recent_heartbeat(client):
    dispatch()  # what the cluster does every minute
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True
    assert body["broker"] is True
    assert body["cluster"] is True
    assert body["last_heartbeat"] == ClusterHeartbeat.objects.get().beat_at.isoformat()
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_cluster_ever_seen_is_unhealthy(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "database": True,
        "broker": True,
        "cluster": False,
        "last_heartbeat": None,
    }


def test_a_heartbeat_older_than_three_minutes_means_no_live_cluster(client):
    beat(timedelta(minutes=2))
    assert client.get("/healthz").status_code == 200
    beat(timedelta(minutes=4))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["cluster"] is False


def test_the_newest_heartbeat_of_several_clusters_counts(client):
    beat(timedelta(hours=2))  # a machine taken out of service
    ClusterHeartbeat.objects.create(name="portal@other", beat_at=timezone.now(), host="other")
    assert client.get("/healthz").status_code == 200


def test_an_unreachable_redis_broker_is_unhealthy(client, settings):
    beat(timedelta(0))
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://127.0.0.1:1/0"}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert "127.0.0.1:1" not in response.content.decode()


def test_a_reachable_redis_broker_is_pinged(client, settings):
    url = os.environ.get("REDIS_TEST_URL")
    if not url:
        pytest.skip("REDIS_TEST_URL is not set (CI sets redis://127.0.0.1:6379/0)")
    beat(timedelta(0))
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
    beat(timedelta(0))
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/").status_code == 301  # everything else still goes to HTTPS
