"""Rerunning a failed or partial attendance run (admin action, tenant pages)."""

from __future__ import annotations

from ..kinds import kind_of
from ..models import SyncRun
from .runs import RunRefused, RunRequest, describe, request_run

RERUNNABLE = (SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL)


def rerun(*, run: SyncRun, user=None) -> RunRequest:
    """Request a new run of the same target date that retries what ``run`` did not do.

    Only finished attendance runs that ended failure or partial can be rerun; anything else
    raises RunRefused with the reason (Japanese). A rerun already queued or running is joined.
    """
    if not kind_of(run.kind).rerunnable:
        raise RunRefused(
            f"{describe(run)} は再実行できません。再実行できるのは勤怠連携だけです"
            "(社員情報連携は手動実行してください)。"
        )
    if run.status not in RERUNNABLE:
        raise RunRefused(
            f"{describe(run)} は{run.get_status_display()}のため再実行できません。"
            "再実行できるのは結果がFAILUREまたはPARTIALの連携だけです。"
        )
    succeeded = run.reruns.filter(status=SyncRun.Status.SUCCESS).order_by("id").first()
    if succeeded is not None:
        raise RunRefused(
            f"{describe(run)} は既に再実行され、{describe(succeeded)} が成功しています。"
        )
    return request_run(
        tenant=run.tenant,
        kind=run.kind,
        trigger=SyncRun.Trigger.RERUN,
        user=user,
        target_date=run.target_date,
        rerun_of=run,
    )
