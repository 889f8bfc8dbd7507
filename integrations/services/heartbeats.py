"""Which clusters are alive: one ClusterHeartbeat row per role and host, read by /healthz.

The dispatcher beats on every dispatch (every minute). The workers beat from their own
every-minute schedule and when they start a task, so an idle cluster and a busy one both show;
a worker deep in a long sync keeps its run's ``heartbeat_at`` fresh instead (``Heartbeat`` in
runs.py), which /healthz counts too.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from ..models import ClusterHeartbeat, SyncRun

DISPATCHER = "dispatcher"
WORKERS = "workers"
# Three missed minutes: nobody of that role is alive (or all of it is stuck).
MAX_SILENCE = timedelta(minutes=3)


def _name(role: str) -> tuple[str, str]:
    host = socket.gethostname()[:255]
    return f"{role}@{host}"[:64], host


def beat(*, role: str, now: datetime | None = None, unless_newer_than: timedelta | None = None):
    """Record that a process of ``role`` on this host is alive.

    With ``unless_newer_than`` a row beaten that recently is left alone (one cheap UPDATE that
    changes nothing), so a worker starting thousands of short tasks does not write each time.
    """
    now = now or timezone.now()
    name, host = _name(role)
    rows = ClusterHeartbeat.objects.filter(name=name)
    if unless_newer_than is not None:
        if rows.filter(beat_at__lt=now - unless_newer_than).update(beat_at=now, host=host):
            return
        if rows.exists():
            return
    elif rows.update(beat_at=now, host=host):
        return
    try:
        with transaction.atomic():
            ClusterHeartbeat.objects.create(name=name, beat_at=now, host=host)
    except IntegrityError:  # another process on this host created it meanwhile
        rows.update(beat_at=now, host=host)


def last_beat(*, role: str) -> datetime | None:
    """The newest heartbeat of any process of ``role`` (any host)."""
    return ClusterHeartbeat.objects.filter(name__startswith=f"{role}@").aggregate(
        last=Max("beat_at")
    )["last"]


def last_worker_sign() -> datetime | None:
    """The newest sign of a live worker: its beat, or the lease of a run it is executing."""
    beaten = last_beat(role=WORKERS)
    running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).aggregate(
        last=Max("heartbeat_at")
    )["last"]
    signs = [sign for sign in (beaten, running) if sign is not None]
    return max(signs) if signs else None


def alive(last: datetime | None, *, now: datetime | None = None) -> bool:
    return last is not None and (now or timezone.now()) - last <= MAX_SILENCE
