"""run_sync employee|attendance --tenant SLUG [--date D] [--enqueue] (SPEC 6)."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.models import SyncRun, Tenant
from integrations.services.execution import execute_run
from integrations.services.runs import RunRefused, request_run
from integrations.validators import target_date_problem


class Command(BaseCommand):
    help = "Run one sync for a tenant in this process (or hand it to the cluster with --enqueue)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=[SyncRun.Kind.EMPLOYEE, SyncRun.Kind.ATTENDANCE])
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--date", help="Attendance target date, YYYY-MM-DD.")
        parser.add_argument("--enqueue", action="store_true", help="Hand the run to the cluster.")

    def handle(self, *args, kind: str, tenant: str, date: str | None, enqueue: bool, **options):
        # The arguments first, before the database: a bad --date is a message and exit 1.
        target = None
        if kind == SyncRun.Kind.ATTENDANCE:
            if not date:
                raise CommandError("attendance needs --date YYYY-MM-DD.")
            target = _parse_date(date)
        try:
            tenant_row = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}.") from None
        try:
            with transaction.atomic():
                request = request_run(
                    tenant=tenant_row,
                    kind=kind,
                    trigger=SyncRun.Trigger.MANUAL,
                    label="run_sync",
                    target_date=target,
                    enqueue=enqueue,
                )
        except RunRefused as exc:
            raise CommandError(str(exc)) from None
        run = request.run
        for notice in request.notices:
            self.stderr.write(notice)
        if enqueue or not request.created:
            self.stdout.write(f"run {run.pk}: {run.status} — {request.message}")
            if not request.created:
                raise SystemExit(1)
            return
        result = execute_run(run_id=run.pk)
        if result is None:
            run.refresh_from_db()
            self.stdout.write(f"run {run.pk}: {run.status} — {run.message}")
            raise SystemExit(1)
        self.stdout.write(f"run {result.pk}: {result.status} — {result.message}")
        for error in result.errors.all()[:50]:
            self.stdout.write(f"  {error.message}")
        if result.status != SyncRun.Status.SUCCESS:
            raise SystemExit(1)


def _parse_date(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, not {value!r}.") from None
    problem = target_date_problem(day)
    if problem:
        # CommandError: a message and exit status 1, no traceback.
        raise CommandError(f"--date {value}: {problem}")
    return day
