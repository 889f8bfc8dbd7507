"""The cluster's one schedule is declared by name, idempotently: deploys never duplicate it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from integrations.services.dispatch import DISPATCH_SCHEDULE_NAME, ensure_dispatch_schedule

pytestmark = pytest.mark.django_db


def test_setup_schedules_creates_the_every_minute_dispatcher_once():
    call_command("setup_schedules")
    call_command("setup_schedules")

    (schedule,) = Schedule.objects.all()
    assert schedule.name == DISPATCH_SCHEDULE_NAME
    assert schedule.func == "integrations.tasks.dispatch_task"
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 1
    assert schedule.repeats == -1
    assert schedule.next_run is not None


def test_a_hand_edited_or_duplicated_schedule_is_put_right():
    Schedule.objects.create(
        name=DISPATCH_SCHEDULE_NAME, func="wrong.func", schedule_type=Schedule.HOURLY
    )
    Schedule.objects.create(name=DISPATCH_SCHEDULE_NAME, func="wrong.func")

    schedule = ensure_dispatch_schedule()

    assert Schedule.objects.filter(name=DISPATCH_SCHEDULE_NAME).count() == 1
    schedule.refresh_from_db()
    assert schedule.func == "integrations.tasks.dispatch_task"
    assert schedule.schedule_type == Schedule.MINUTES


def test_the_task_runs_the_dispatcher():
    from integrations.tasks import dispatch_task

    assert dispatch_task() == "scheduled=0 missed=0 reaped=0 enqueued=0"
