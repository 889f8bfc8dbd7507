"""run_sync runs one sync in this process, prints the run id and result, exits 0 only on success."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from integrations.models import SyncRun
from tests.sync_world import DAY, at, configure, only_records, small_kot

pytestmark = pytest.mark.django_db


def test_employee_sync_succeeds_with_exit_zero(world, capsys):
    configure(world.acme, creation_guard_count=100)  # the sandbox's whole company: onboarding
    call_command("run_sync", "employee", "--tenant", "acme")
    run = SyncRun.objects.get()
    out = capsys.readouterr().out
    assert f"run {run.pk}: success" in out
    assert run.trigger == "manual" and run.triggered_by_label == "run_sync"


def test_a_partial_attendance_run_exits_one_and_lists_the_errors(world, capsys):
    small_kot(world.sandbox, {"code": "0042", "last_name": "山田", "first_name": "太郎"})
    only_records(world.sandbox, DAY, ("0042", at(9)), ("7777", at(9)))
    with pytest.raises(SystemExit) as exited:
        call_command("run_sync", "attendance", "--tenant", "acme", "--date", "2026-11-24")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "partial" in out and "従業員番号:7777" in out


def test_enqueue_returns_at_once_with_a_queued_run(world, capsys):
    call_command("run_sync", "employee", "--tenant", "acme", "--enqueue")
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.QUEUED
    assert f"run {run.pk}: queued" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["employee", "--tenant", "nope"], "No tenant with slug 'nope'"),
        (["attendance", "--tenant", "acme"], "attendance needs --date"),
        (["attendance", "--tenant", "acme", "--date", "24/11/2026"], "--date must be YYYY-MM-DD"),
        (["employee", "--tenant", "globex"], "ご利用申込が有効でない"),
    ],
)
def test_bad_arguments_are_refused_clearly(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_sync", *args)
    assert SyncRun.objects.count() == 0
