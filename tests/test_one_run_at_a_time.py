"""At most one running run per tenant and kind; a second request joins or waits, and says which."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from integrations.models import SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import claim_run, request_run
from tests.sync_world import DAY, configure

pytestmark = pytest.mark.django_db


def test_a_second_request_for_the_same_work_joins_the_first(world):
    first = request_run(tenant=world.acme, kind="employee", enqueue=False)
    second = request_run(tenant=world.acme, kind="employee", enqueue=False)
    assert first.created and not second.created
    assert second.run.pk == first.run.pk
    assert f"#{first.run.pk}" in second.message and "既に" in second.message
    assert SyncRun.objects.filter(tenant=world.acme, kind="employee").count() == 1


def test_another_date_waits_instead_of_running_alongside(world):
    first = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    other = request_run(
        tenant=world.acme, kind="attendance", target_date=DAY.replace(day=23), enqueue=False
    )
    assert other.created
    assert claim_run(run_id=first.run.pk) is not None
    # The database refuses a second running attendance run for the tenant.
    assert claim_run(run_id=other.run.pk) is None
    assert SyncRun.objects.get(pk=other.run.pk).status == SyncRun.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_run_only_one_gets_it(world):
    request = request_run(tenant=world.acme, kind="employee", enqueue=False)
    results = []
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            results.append(claim_run(run_id=request.run.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r is not None) == 1
    assert SyncRun.objects.get(pk=request.run.pk).attempt == 1


def test_a_run_not_claimed_is_not_executed(world):
    configure(world.acme, creation_guard_count=100)  # the sandbox's whole company: onboarding
    request = request_run(tenant=world.acme, kind="employee", enqueue=False)
    assert execute_run(run_id=request.run.pk).status == SyncRun.Status.SUCCESS
    # Delivered again (a redelivered task): nothing happens, nothing changes.
    assert execute_run(run_id=request.run.pk) is None
    assert SyncRun.objects.get(pk=request.run.pk).attempt == 1
