"""/healthz: is the database, the broker and a live cluster reachable? For a load balancer.

200 with every check true, 503 otherwise. The answer names no host, error or secret; the cause
of a failed check goes to the log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

# The dispatcher beats every minute; three missed beats mean no cluster is dispatching.
CLUSTER_MAX_SILENCE = timedelta(minutes=3)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        log.exception("healthz: database unreachable")
        return False
    return True


def check_broker() -> bool:
    """Redis: PING it. The ORM broker: a query on django-q2's queue table."""
    try:
        if settings.Q_CLUSTER.get("redis"):
            import redis

            client = redis.Redis.from_url(
                settings.Q_CLUSTER["redis"], socket_connect_timeout=2, socket_timeout=2
            )
            try:
                return bool(client.ping())
            finally:
                client.close()
        from django_q.models import OrmQ

        OrmQ.objects.using(settings.Q_CLUSTER.get("orm", "default")).exists()
    except Exception:
        log.exception("healthz: broker unreachable")
        return False
    return True


def last_cluster_heartbeat():
    from integrations.models import ClusterHeartbeat

    try:
        return ClusterHeartbeat.objects.aggregate(last=Max("beat_at"))["last"]
    except Exception:
        log.exception("healthz: cannot read the cluster heartbeat")
        return None


@never_cache
@require_safe
def healthz(request):
    database = check_database()
    broker = check_broker()
    last = last_cluster_heartbeat() if database else None
    cluster = last is not None and timezone.now() - last <= CLUSTER_MAX_SILENCE
    body = {
        "database": database,
        "broker": broker,
        "cluster": cluster,
        "last_heartbeat": last.isoformat() if last else None,
    }
    return JsonResponse(body, status=200 if database and broker and cluster else 503)
