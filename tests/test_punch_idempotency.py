"""Never a duplicate punch: reruns, repeated dates, a worker dying between a POST and its
bookkeeping, a POST whose answer was lost — each punch ends in KOT exactly once."""

from __future__ import annotations

from collections import Counter

import pytest

from connectors.kot import KotClient
from integrations.models import SyncError, SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.sync_world import DAY, at, configure, only_records, punches, run_now, small_kot

pytestmark = pytest.mark.django_db

STAFF = [{"code": f"{i:04}", "last_name": "社員", "first_name": f"{i}号"} for i in range(1, 9)]


@pytest.fixture
def staff(world):
    small_kot(world.sandbox, *STAFF)
    configure(world.acme, attendance_mode="clock_in_out")
    records = []
    for i in range(1, 9):
        records += [(f"{i:04}", at(8, i)), (f"{i:04}", at(18, i))]
    only_records(world.sandbox, DAY, *records)
    return world


def each_punch_once(sandbox) -> bool:
    counts = Counter(
        (p["employeeKey"], p["date"], p["code"], p["time"]) for p in sandbox.kot.punches
    )
    return len(counts) == 16 and set(counts.values()) == {1}


class WorkerDied(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the run catches it."""


def test_run_killed_after_some_posts_then_rerun_leaves_each_punch_once(staff, monkeypatch):
    real_post = KotClient.register_punch
    posted = Counter()

    def dying_post(self, **kwargs):
        if posted["n"] >= 5:
            raise WorkerDied()
        posted["n"] += 1
        return real_post(self, **kwargs)

    monkeypatch.setattr(KotClient, "register_punch", dying_post)
    request = request_run(tenant=staff.acme, kind="attendance", target_date=DAY, enqueue=False)
    with pytest.raises(WorkerDied):
        execute_run(run_id=request.run.pk)
    monkeypatch.setattr(KotClient, "register_punch", real_post)
    killed = SyncRun.objects.get(pk=request.run.pk)
    assert killed.status == SyncRun.Status.RUNNING  # nothing recorded: the process "died"
    assert 5 <= len(staff.sandbox.kot.punches) < 16

    # What the reaper does once the lease runs out (tested with the dispatcher elsewhere).
    SyncRun.objects.filter(pk=killed.pk).update(status="failure", error_type="worker_lost")
    SyncError.objects.create(
        run=killed, code="worker_lost", message="処理中のワーカーが停止しました。"
    )

    rerun = run_now(staff.acme, "attendance", DAY, trigger="rerun", rerun_of=killed)
    assert rerun.status == SyncRun.Status.SUCCESS
    assert rerun.created_count + rerun.skipped_count == 16
    assert each_punch_once(staff.sandbox)


def test_killed_after_every_post_but_before_bookkeeping_then_rerun_posts_nothing(
    staff, monkeypatch
):
    import integrations.services.execution as execution

    def die(**kwargs):
        raise WorkerDied()

    monkeypatch.setattr(execution, "finish_run", die)
    request = request_run(tenant=staff.acme, kind="attendance", target_date=DAY, enqueue=False)
    with pytest.raises(WorkerDied):
        execute_run(run_id=request.run.pk)
    monkeypatch.undo()
    assert len(staff.sandbox.kot.punches) == 16
    SyncRun.objects.filter(pk=request.run.pk).update(status="failure", error_type="worker_lost")

    staff.sandbox.reset_counts()
    again = run_now(staff.acme, "attendance", DAY)
    assert (again.created_count, again.skipped_count) == (0, 16)
    assert not [k for k in staff.sandbox.request_counts() if k.startswith("POST")]
    assert each_punch_once(staff.sandbox)


def test_a_post_whose_answer_was_lost_is_checked_not_resent(staff, settings):
    settings.READ_TIMEOUT_SECONDS = 0.5
    key = staff.sandbox.kot.employee_by_code("0003")["key"]
    staff.sandbox.faults.add("kot", "timeout_after_store", path=key, method="POST", delay=2.0)
    run = run_now(staff.acme, "attendance", DAY)
    assert run.status == SyncRun.Status.SUCCESS
    assert run.created_count == 16
    counts = staff.sandbox.request_counts()
    assert counts["POST /v1.0/daily-workings/timerecord/{key}"] == 16  # sent once each
    assert each_punch_once(staff.sandbox)


def test_a_rerun_retries_only_the_failed_punches(staff):
    failing = staff.sandbox.kot.employee_by_code("0005")["key"]
    staff.sandbox.faults.add("kot", "http500_html", path=failing, method="POST", times=None)
    first = run_now(staff.acme, "attendance", DAY)
    assert first.status == SyncRun.Status.PARTIAL
    assert {(e.employee_code, e.punch) for e in first.errors.all()} == {
        ("0005", "clock_in"),
        ("0005", "clock_out"),
    }
    assert punches(staff.sandbox, "0005") == []
    staff.sandbox.faults.clear()
    # Someone removes 0001's clock-in by hand in KOT: a rerun must not bring it back,
    # because it retries only what failed.
    gone = staff.sandbox.kot.employee_by_code("0001")["key"]
    staff.sandbox.kot.punches[:] = [
        p for p in staff.sandbox.kot.punches if p["employeeKey"] != gone
    ]
    staff.sandbox.kot._punch_index.pop((gone, DAY.isoformat()), None)

    rerun = run_now(staff.acme, "attendance", DAY, trigger="rerun", rerun_of=first)
    assert (rerun.trigger, rerun.rerun_of_id, rerun.target_date) == ("rerun", first.pk, DAY)
    assert rerun.status == SyncRun.Status.SUCCESS
    assert rerun.created_count == 2
    assert punches(staff.sandbox, "0005") == [
        ("1", "2026-11-24T08:05:00+09:00"),
        ("2", "2026-11-24T18:05:00+09:00"),
    ]
    assert punches(staff.sandbox, "0001") == []
