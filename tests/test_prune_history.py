"""Bounded history: finished runs older than SYNC_HISTORY_DAYS go with their errors, in small
transactions, never an active run; django-q2's failed tasks are kept to the newest save_limit
(django-q2 bounds only its successes, per function); `prune_history` does it by hand."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone

from integrations.models import ClusterHeartbeat, SyncError, SyncRun
from integrations.services.history import prune_history
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def run(tenant, age: timedelta, status=SyncRun.Status.SUCCESS, errors: int = 0, **fields):
    created = timezone.now() - age
    fields.setdefault("kind", SyncRun.Kind.ATTENDANCE)
    fields.setdefault("trigger", SyncRun.Trigger.SCHEDULE)
    row = SyncRun.objects.create(
        tenant=tenant,
        status=status,
        created_at=created,
        finished_at=created + timedelta(seconds=9) if status in SyncRun.FINISHED_STATUSES else None,
        failed_count=errors,
        **fields,
    )
    SyncError.objects.bulk_create(
        SyncError(run=row, employee_code=str(1000 + i), code="already_punched", message="x")
        for i in range(errors)
    )
    return row


@pytest.fixture
def history(settings):
    settings.SYNC_HISTORY_DAYS = 400
    acme, globex = make_acme(), make_globex()
    h = type("History", (), {})()
    h.old = [
        run(acme, 401 * DAY, errors=3),
        run(acme, 500 * DAY, SyncRun.Status.PARTIAL, errors=2),
        run(globex, 401 * DAY, SyncRun.Status.FAILURE, errors=1),
    ]
    h.kept = [
        run(acme, 399 * DAY, SyncRun.Status.PARTIAL, errors=4),
        run(globex, 1 * DAY),
        # Old but never finished: never deleted, whatever its age.
        run(acme, 450 * DAY, SyncRun.Status.QUEUED),
        run(globex, 450 * DAY, SyncRun.Status.WAITING, not_before=timezone.now() + DAY),
        run(acme, 450 * DAY, SyncRun.Status.RUNNING, kind=SyncRun.Kind.EMPLOYEE),
    ]
    # A recent rerun of a run that is about to go: it stays, its link is cleared.
    h.rerun = run(acme, 2 * DAY, rerun_of=h.old[1], trigger=SyncRun.Trigger.RERUN)
    h.kept.append(h.rerun)
    return h


def test_prune_deletes_exactly_the_finished_runs_older_than_the_history_and_their_errors(history):
    errors_kept = SyncError.objects.filter(run__in=history.kept).count()

    report = prune_history()

    assert (report.runs, report.errors) == (3, 6)
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {r.pk for r in history.kept}
    assert SyncError.objects.count() == errors_kept == 4
    history.rerun.refresh_from_db()
    assert history.rerun.rerun_of_id is None


def test_a_second_prune_removes_nothing(history):
    prune_history()
    report = prune_history()
    assert (report.runs, report.errors) == (0, 0)


def test_a_dry_run_counts_and_changes_nothing(history):
    before = (SyncRun.objects.count(), SyncError.objects.count())
    report = prune_history(dry_run=True)
    assert (report.runs, report.errors) == (3, 6)
    assert (SyncRun.objects.count(), SyncError.objects.count()) == before


def test_pruning_goes_in_small_batches_and_a_time_budget_stops_it_early(history):
    report = prune_history(batch=1, max_seconds=0)  # one batch, then the budget is spent
    assert report.runs == 1
    assert not report.complete
    assert "time budget spent" in str(report)
    report = prune_history(batch=1)
    assert report.runs == 2
    assert report.complete


def test_days_override_the_setting(history):
    assert prune_history(days=398).runs == 4  # the 399-day-old run goes too
    with pytest.raises(ValueError):
        prune_history(days=0)


def test_the_command_prints_what_it_removed(history, capsys):
    call_command("prune_history", "--dry-run")
    out = capsys.readouterr().out
    assert out.startswith("prune_history: would remove 3 run(s) created before ")
    assert "and their 6 error(s)" in out
    assert SyncRun.objects.count() == 9

    call_command("prune_history", "--days", "398")
    assert "prune_history: removed 4 run(s)" in capsys.readouterr().out
    assert SyncRun.objects.count() == 5


@pytest.mark.parametrize("days", ["0", "-5", "36501", "1000000000", str(10**30)])
def test_the_command_refuses_days_outside_its_range_with_a_clean_error(days):
    """1 to 36500 (a hundred years): huge values used to end in an OverflowError traceback."""
    with pytest.raises(CommandError, match="--days must be between 1 and 36500"):
        call_command("prune_history", "--days", days)
    with pytest.raises(ValueError, match="between 1 and 36500"):
        prune_history(days=int(days))


def test_the_command_takes_a_hundred_years_and_says_its_range_in_help(history, capsys):
    call_command("prune_history", "--days", "36500", "--dry-run")
    assert "would remove 0 run(s)" in capsys.readouterr().out
    command = load_command_class("integrations", "prune_history")
    help_text = command.create_parser("manage.py", "prune_history").format_help()
    assert "1 to 36500" in " ".join(help_text.split())


def test_the_nightly_task_prunes_with_the_setting(history):
    from integrations.tasks import prune_history_task

    assert prune_history_task().startswith("runs=3 errors=6 ")


def test_expired_sessions_and_heartbeats_of_retired_hosts_go_too():
    now = timezone.now()
    Session.objects.create(session_key="a" * 32, session_data="", expire_date=now - DAY)
    Session.objects.create(session_key="b" * 32, session_data="", expire_date=now + DAY)
    ClusterHeartbeat.objects.create(name="workers@retired", beat_at=now - 31 * DAY)
    ClusterHeartbeat.objects.create(name="workers@current", beat_at=now)

    report = prune_history()

    assert (report.sessions, report.heartbeats) == (1, 1)
    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]
    assert list(ClusterHeartbeat.objects.values_list("name", flat=True)) == ["workers@current"]


def save_result(func: str, *, success: bool, minutes_ago: int, n: int):
    from django_q.monitor import save_task

    now = timezone.now()
    save_task(
        {
            "id": uuid.uuid4().hex,
            "name": f"task-{func}-{n}",
            "func": func,
            "args": (),
            "kwargs": {},
            "started": now - timedelta(minutes=minutes_ago, seconds=1),
            "stopped": now - timedelta(minutes=minutes_ago),
            "result": "ok" if success else "Traceback ...",
            "success": success,
            "group": "g",
        },
        broker=None,
    )


def test_django_q2_keeps_the_newest_successes_per_function_and_the_prune_bounds_failures(
    monkeypatch, settings
):
    from django_q import monitor
    from django_q.conf import Conf
    from django_q.models import Failure, Success

    monkeypatch.setattr(Conf, "SAVE_LIMIT", 3)
    monkeypatch.setattr(Conf, "SAVE_LIMIT_PER", "func")
    monkeypatch.setattr(monitor, "close_old_django_connections", lambda: None)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "save_limit": 3}
    for n in range(5):
        save_result("integrations.tasks.execute_run_task", success=True, minutes_ago=10 - n, n=n)
        save_result("integrations.tasks.dispatch_task", success=True, minutes_ago=10 - n, n=n)
        save_result("integrations.tasks.send_run_mail_task", success=False, minutes_ago=10 - n, n=n)
    save_result("integrations.tasks.prune_history_task", success=True, minutes_ago=1, n=0)

    # django-q2 1.11: at most save_limit successes per function, every failure kept.
    per_func = {
        func: Success.objects.filter(func=func).count()
        for func in Success.objects.values_list("func", flat=True).distinct()
    }
    assert per_func == {
        "integrations.tasks.execute_run_task": 3,
        "integrations.tasks.dispatch_task": 3,
        "integrations.tasks.prune_history_task": 1,
    }
    assert Failure.objects.count() == 5

    report = prune_history()

    assert report.task_failures == 2
    newest = Failure.objects.order_by("-stopped").values_list("name", flat=True)
    assert list(newest) == [f"task-integrations.tasks.send_run_mail_task-{n}" for n in (4, 3, 2)]
    assert Success.objects.count() == 7  # successes are django-q2's own business
