"""Read and work django-q2's ORM queue in tests, as a worker of a cluster would."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.utils.module_loading import import_string


def orm_broker_only() -> None:
    if "orm" not in settings.Q_CLUSTER:
        pytest.skip("this test reads the ORM broker's queue")


def queued(cluster: str | None = None, func: str | None = None) -> list[dict[str, Any]]:
    """The task packages waiting in a cluster's queue (all queues when None), oldest first."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    rows = OrmQ.objects.order_by("id")
    if cluster is not None:
        rows = rows.filter(key=cluster)
    tasks = []
    for row in rows:
        task = SignedPackage.loads(row.payload)
        task["_row"], task["_key"] = row.pk, row.key
        if func is None or task["func"] == func:
            tasks.append(task)
    return tasks


def work(cluster: str, func: str | None = None) -> list[Any]:
    """Execute (and remove) the queued tasks of a cluster, optionally only one function's."""
    from django_q.models import OrmQ

    results = []
    for task in queued(cluster, func):
        OrmQ.objects.filter(pk=task["_row"]).delete()
        results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
    return results
