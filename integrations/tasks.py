"""django-q2 entry points: thin, take ids, call one service."""

from __future__ import annotations

from .services.dispatch import dispatch
from .services.execution import execute_run


def execute_run_task(run_id: int) -> str | None:
    run = execute_run(run_id=run_id)
    return run.status if run else None


def dispatch_task() -> str:
    """The every-minute schedule (declared by `manage.py setup_schedules`)."""
    return str(dispatch())
