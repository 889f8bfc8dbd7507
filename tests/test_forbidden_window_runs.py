"""KOT's forbidden windows never fail a run: it waits, visibly, and goes on at the window's end."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine

from integrations.models import SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.conftest import JST
from tests.sync_world import DAY, at, only_records, punches, small_kot

pytestmark = pytest.mark.django_db


def test_a_run_requested_inside_a_window_waits_for_its_end(world):
    small_kot(world.sandbox, {"code": "0042", "last_name": "山田", "first_name": "太郎"})
    only_records(world.sandbox, DAY, ("0042", at(8, 50)))
    world.sandbox.clock.clear()  # the fake KOT follows the travelled clock too
    with time_machine.travel(datetime(2026, 11, 25, 8, 45, tzinfo=JST), tick=False):
        request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
        assert request.run.status == SyncRun.Status.WAITING
        assert request.run.not_before == datetime(2026, 11, 25, 10, 0, tzinfo=JST)
        assert "10:00以降に自動で実行します" in request.message
        assert execute_run(run_id=request.run.pk) is None  # not due yet
    with time_machine.travel(datetime(2026, 11, 25, 10, 0, 5, tzinfo=JST), tick=False):
        run = execute_run(run_id=request.run.pk)
    assert run.status == SyncRun.Status.SUCCESS
    assert punches(world.sandbox, "0042") == [("1", "2026-11-24T08:50:00+09:00")]


def test_a_run_that_reaches_a_window_mid_way_waits_and_resumes(world):
    """The records are read before 17:30; the KOT reads would fall inside the window."""
    small_kot(world.sandbox, {"code": "0042", "last_name": "山田", "first_name": "太郎"})
    only_records(world.sandbox, DAY, ("0042", at(9)))
    world.sandbox.clock.clear()
    with time_machine.travel(datetime(2026, 11, 25, 17, 29, 59, tzinfo=JST), tick=True):
        request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)
    with time_machine.travel(datetime(2026, 11, 25, 17, 30, 0, tzinfo=JST), tick=False):
        run = execute_run(run_id=request.run.pk)
    assert run.status == SyncRun.Status.WAITING
    assert run.not_before == datetime(2026, 11, 25, 18, 30, tzinfo=JST)
    assert "18:30に自動で再開します" in run.message
    assert world.sandbox.kot.punches == []
    with time_machine.travel(datetime(2026, 11, 25, 18, 30, 1, tzinfo=JST), tick=False):
        run = execute_run(run_id=request.run.pk)
    assert run.status == SyncRun.Status.SUCCESS
    assert run.attempt == 2
    assert punches(world.sandbox, "0042") == [("1", "2026-11-24T09:00:00+09:00")]
