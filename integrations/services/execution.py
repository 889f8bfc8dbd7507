"""Executing one run: claim it, call its sync, record the result, classify failures.

A configuration error (bad token, bad secret, IP not registered) fails the run at once: retrying
won't help, the customer must fix something. A transient error (timeout, 5xx, throttling) puts
the run back to ``waiting`` with a backoff, a bounded number of times. KOT's forbidden window
puts it to ``waiting`` until the window ends; that never fails a run.

Every write is fenced by the run's Lease (services/leases.py): a worker whose run was resumed
elsewhere stops before its next write and records nothing (``RunTaken``); a worker whose
cluster is stopping (SIGTERM) hands its run back to the queue (``WorkerStopping``), and the
run resumes on another worker — the engines read KOT and SenseLink first, so nothing is
written twice. Failure mails leave from ``end_run`` only.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from connectors.errors import ConnectorError, ForbiddenWindowError

from ..kinds import kind_of
from ..models import SyncRun
from ..queue import stopping
from .clients import connect_setting, kot_client, senselink_client
from .leases import Lease
from .runs import (
    RunTaken,
    SyncAborted,
    WorkerStopping,
    claim_run,
    fail_run,
    finish_run,
    hand_back_run,
    postpone_run,
    retry_delay,
)
from .workday import DayNotEnded

log = logging.getLogger(__name__)


def execute_run(*, run_id: int, now: datetime | None = None) -> SyncRun | None:
    """Run one queued run in this process. None when it was not ours to run (claimed elsewhere,
    not due, or another run of its tenant and kind is running)."""
    if stopping():
        # The cluster is stopping: take no new run. Its task is spent, so the dispatcher's next
        # tick hands the run out again (not after REENQUEUE_AFTER, as for a lost task).
        SyncRun.objects.filter(
            pk=run_id, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.WAITING]
        ).update(enqueued_at=None)
        return None
    run = claim_run(run_id=run_id, now=now)
    if run is None:
        return None
    log.info(
        "run %s (%s, tenant %s) started, attempt %s", run.pk, run.kind, run.tenant_id, run.attempt
    )
    try:
        try:
            result = _execute(run)
        except Exception:
            log.exception("run %s failed with an unexpected error", run.pk)
            result = fail_run(
                run=run,
                error_type=SyncRun.ErrorType.INTERNAL,
                code="internal_error",
                message="内部エラーで連携を中断しました。サポートにお問い合わせください。",
            )
    except RunTaken:
        log.warning("run %s (attempt %s) is no longer ours: nothing recorded", run.pk, run.attempt)
        return None
    except WorkerStopping:
        hand_back_run(run=run)
        return None
    log.info("run %s ended %s", run.pk, result.status)
    return result


def _execute(run: SyncRun) -> SyncRun:
    setting = connect_setting(run.tenant)
    if setting is None or not setting.has_senselink_credentials or not run.tenant.kot_access_token:
        return fail_run(
            run=run,
            error_type=SyncRun.ErrorType.CONFIGURATION,
            code="missing_settings",
            message="連携設定(KING OF TIMEのアクセストークン、SenseLink URL・Appキー・"
            "Appシークレット)が未登録です。連携設定を確認してください。",
        )
    kot = kot_client(run.tenant)
    senselink = senselink_client(setting)
    beat = Lease(run)
    sync = kind_of(run.kind).sync
    try:
        outcome = sync(
            run=run, kot=kot, senselink=senselink, setting=setting, beat=beat, guard=beat.guard
        )
    except ForbiddenWindowError as exc:
        until = exc.retry_at or timezone.now()
        return postpone_run(
            run=run,
            until=until,
            message="KING OF TIMEのAPI利用禁止時間帯のため、"
            f"{timezone.localtime(until):%H:%M}に自動で再開します。",
        )
    except DayNotEnded as exc:
        return postpone_run(run=run, until=exc.until, message=str(exc))
    except SyncAborted as exc:
        return fail_run(
            run=run, error_type=SyncRun.ErrorType.CONFIGURATION, code=exc.code, message=exc.message
        )
    except ConnectorError as exc:
        if exc.permanent:
            return fail_run(
                run=run,
                error_type=SyncRun.ErrorType.CONFIGURATION,
                code=exc.code,
                message=exc.message,
            )
        delay = retry_delay(run.attempt - run.resumes)
        if delay is None:
            return fail_run(
                run=run,
                error_type=SyncRun.ErrorType.TRANSIENT,
                code=exc.code,
                message=f"{exc.message}({run.attempt - run.resumes}回試行しましたが失敗しました。"
                "時間をおいて再実行してください。)",
            )
        until = timezone.now() + delay
        return postpone_run(
            run=run,
            until=until,
            message=f"一時的なエラーのため{timezone.localtime(until):%H:%M}に再試行します: "
            f"{exc.message}",
        )
    finally:
        kot.close()
        senselink.close()
    return finish_run(run=run, outcome=outcome)
