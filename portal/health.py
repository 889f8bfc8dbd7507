"""/healthz: for a load balancer or a monitor. No login, nothing to leak.

200 when the database, the broker and the dispatcher (its heartbeat younger than 3 minutes)
are fine; 503 otherwise. ``workers`` (a worker cluster showed it is alive) and ``backlog``
(runs due and not started: how many, how long the oldest has waited, tasks in the workers'
queue) are information: a saturated or briefly restarted worker cluster is not a reason to take
the web out of a load balancer, and the backlog drains by itself. The answer names no host,
error or secret; the cause of a failed check goes to the log.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from integrations import queue
from integrations.services import heartbeats

log = logging.getLogger(__name__)


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
    try:
        return queue.ping_broker()
    except Exception:
        log.exception("healthz: broker unreachable")
        return False


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@never_cache
@require_safe
def healthz(request):
    database = check_database()
    broker = check_broker()
    body: dict = {"database": database, "broker": broker}
    dispatcher_beat = workers_sign = None
    backlog = None
    if database:
        try:
            dispatcher_beat = heartbeats.last_beat(role=heartbeats.DISPATCHER)
            workers_sign = heartbeats.last_worker_sign()
            backlog = queue.backlog(ask_broker=broker)
        except Exception:
            log.exception("healthz: cannot read the heartbeats or the backlog")
    dispatcher = heartbeats.alive(dispatcher_beat)
    body.update(
        {
            "dispatcher": dispatcher,
            "dispatcher_heartbeat": _iso(dispatcher_beat),
            "workers": heartbeats.alive(workers_sign),
            "workers_heartbeat": _iso(workers_sign),
            "backlog": {
                "queued": backlog.queued if backlog else None,
                "oldest_age_seconds": round(backlog.oldest_age_seconds)
                if backlog and backlog.oldest_age_seconds is not None
                else None,
                "tasks_waiting": backlog.tasks_waiting if backlog else None,
            },
        }
    )
    return JsonResponse(body, status=200 if database and broker and dispatcher else 503)
