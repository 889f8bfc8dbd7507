"""Rerunning: only failed or partial attendance runs, same target date, linked to the original;
anything else is refused with the reason."""

from __future__ import annotations

import pytest

from integrations.models import SyncError, SyncRun
from integrations.services.reruns import rerun
from integrations.services.runs import RunRefused
from tests.sync_world import DAY
from tests.world import make_acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    return make_acme()


def finished(tenant, *, kind=SyncRun.Kind.ATTENDANCE, status=SyncRun.Status.PARTIAL, **fields):
    run = SyncRun.objects.create(
        tenant=tenant,
        kind=kind,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=status,
        target_date=DAY if kind == SyncRun.Kind.ATTENDANCE else None,
        **fields,
    )
    SyncError.objects.create(run=run, employee_code="2001", code="x", message="失敗")
    return run


@pytest.mark.parametrize("status", [SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL])
def test_a_failed_or_partial_attendance_run_is_rerun_for_the_same_date(acme, status, admin_user):
    original = finished(acme, status=status)

    request = rerun(run=original, user=admin_user)

    assert request.created
    run = request.run
    assert run.trigger == SyncRun.Trigger.RERUN
    assert run.rerun_of == original
    assert run.target_date == DAY
    assert run.triggered_by == admin_user
    assert run.status in (SyncRun.Status.QUEUED, SyncRun.Status.WAITING)


@pytest.mark.parametrize(
    "status",
    [SyncRun.Status.SUCCESS, SyncRun.Status.QUEUED, SyncRun.Status.WAITING, SyncRun.Status.RUNNING],
)
def test_runs_that_did_not_fail_are_refused(acme, status):
    with pytest.raises(RunRefused, match="FAILUREまたはPARTIAL"):
        rerun(run=finished(acme, status=status))
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.RERUN).exists()


def test_an_employee_sync_is_refused_with_what_to_do_instead(acme):
    with pytest.raises(RunRefused, match="手動実行"):
        rerun(run=finished(acme, kind=SyncRun.Kind.EMPLOYEE, status=SyncRun.Status.FAILURE))


def test_a_rerun_already_waiting_is_joined_not_doubled(acme):
    original = finished(acme)
    first = rerun(run=original)
    second = rerun(run=original)
    assert not second.created
    assert second.run == first.run


def test_a_run_whose_rerun_succeeded_is_refused(acme):
    original = finished(acme)
    finished(acme, status=SyncRun.Status.SUCCESS, rerun_of=original)
    with pytest.raises(RunRefused, match="既に再実行され"):
        rerun(run=original)


def test_a_tenant_no_longer_active_is_refused(acme):
    original = finished(acme)
    acme.subscription_status = "suspended"
    acme.save()
    with pytest.raises(RunRefused):
        rerun(run=original)
