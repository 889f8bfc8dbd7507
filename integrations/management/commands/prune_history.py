"""prune_history [--days N] [--dry-run]: delete old runs and their errors by hand (SPEC 6).

The same pruning runs every night on the workers' cluster (integrations.queue, PRUNE_SCHEDULE).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.services.history import MAX_DAYS, MIN_DAYS, prune_history


class Command(BaseCommand):
    help = (
        "Delete finished runs (and their errors) older than N days, django-q2 failures beyond "
        "save_limit, expired sessions and stale heartbeats. Prints what it removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            metavar="N",
            help=f"Keep this many days of runs, {MIN_DAYS} to {MAX_DAYS} "
            f"(default SYNC_HISTORY_DAYS={settings.SYNC_HISTORY_DAYS}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; change nothing."
        )

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between {MIN_DAYS} and {MAX_DAYS} (got {days}).")
        report = prune_history(days=days, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        cutoff = timezone.localtime(report.cutoff)
        self.stdout.write(
            f"prune_history: {verb} {report.runs} run(s) created before "
            f"{cutoff:%Y-%m-%d %H:%M %Z} and their {report.errors} error(s); "
            f"{report.task_failures} django-q2 failed task(s) beyond the newest "
            f"{settings.Q_CLUSTER.get('save_limit', 2000)}; {report.sessions} expired "
            f"session(s); {report.heartbeats} stale heartbeat(s)."
        )
