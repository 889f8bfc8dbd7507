"""setup_schedules: declare the cluster's one schedule (the every-minute dispatcher), idempotently.

Run on every deploy after `migrate` (`devserver` runs it too); running it twice changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.services.dispatch import ensure_dispatch_schedule


class Command(BaseCommand):
    help = "Create or update the django-q2 schedule that runs the dispatcher every minute."

    def handle(self, *args, **options):
        schedule = ensure_dispatch_schedule()
        self.stdout.write(
            f"schedule {schedule.name!r}: {schedule.func} every {schedule.minutes} minute(s)"
        )
