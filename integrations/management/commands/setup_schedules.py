"""setup_schedules: declare the django-q2 schedules again, idempotently (a repair command).

`migrate` already does this after every deploy (integrations.apps, post_migrate); run this to
put a hand-edited or deleted schedule right without migrating. Running it twice changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from integrations.queue import ensure_schedules


class Command(BaseCommand):
    help = "Create or repair the django-q2 schedules (dispatch, workers' beat, nightly prune)."

    def handle(self, *args, **options):
        for schedule in ensure_schedules():
            every = (
                f"every {schedule.minutes} minute(s)"
                if schedule.schedule_type == schedule.MINUTES
                else f"{schedule.get_schedule_type_display().lower()}, next "
                f"{timezone.localtime(schedule.next_run):%Y-%m-%d %H:%M %Z}"
            )
            self.stdout.write(
                f"schedule {schedule.name!r}: {schedule.func} on cluster {schedule.cluster!r}, {every}"
            )
