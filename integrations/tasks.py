"""django-q2 entry points: thin, take ids, call one service. Names and clusters: queue.py."""

from __future__ import annotations

from datetime import timedelta

from .services import heartbeats
from .services.dispatch import dispatch
from .services.execution import execute_run
from .services.history import prune_history
from .services.notifications import AUDIENCES, send_push_stopped_mail, send_run_problem_mail
from .services.realtime import poll

# A worker starting tasks back to back records that it is alive at most this often.
_BEAT_EVERY = timedelta(seconds=30)
# The nightly prune stops after this long (the rest waits for the next night).
PRUNE_SECONDS = 20 * 60


def execute_run_task(run_id: int) -> str | None:
    heartbeats.beat(role=heartbeats.WORKERS, unless_newer_than=_BEAT_EVERY)
    run = execute_run(run_id=run_id)
    return run.status if run else None


def dispatch_task() -> str:
    """The every-minute schedule of the dispatcher cluster (declared after every migrate)."""
    return str(dispatch())


def send_run_mail_task(run_id: int, audience: str | None = None) -> str:
    """One failure mail of a run: the customer's or support's (both for a task queued before
    the mails were split)."""
    for each in [audience] if audience else list(AUDIENCES):
        if not send_run_problem_mail(run_id=run_id, audience=each):
            # Logged by the service; failing the task shows it among django-q2's failed tasks.
            raise RuntimeError(f"the {each} failure notice of run {run_id} could not be sent")
    return "sent"


def send_push_stopped_mail_task(setting_id: int) -> str:
    if not send_push_stopped_mail(setting_id=setting_id):
        raise RuntimeError(f"the push-stopped notice of setting {setting_id} could not be sent")
    return "sent"


def prune_history_task() -> str:
    return str(prune_history(max_seconds=PRUNE_SECONDS))


def workers_beat_task() -> str:
    """Every minute on the workers' cluster: an idle cluster still shows it is alive."""
    heartbeats.beat(role=heartbeats.WORKERS)
    return "beat"


def realtime_poll_task(setting_id: int) -> str:
    """A tenant's real-time poll (queued by the dispatcher every interval, or by a push)."""
    return str(poll(setting_id=setting_id, spaced=True))
