"""Preview (dry run): what a sync would do, computed from reads only (SPEC 4.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.utils import timezone

from connectors.errors import ConnectorError

from ..models import SyncRun, Tenant
from .attendance_sync import PUNCH_NAMES, plan_attendance
from .clients import connect_setting, kot_client, senselink_client
from .employee_sync import FIELD_LABELS, SyncAborted, plan_employee_sync


@dataclass
class Preview:
    """Lines for people, and the counts; ``error`` is set when the preview couldn't be made."""

    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    error: str = ""


def preview_sync(
    *, tenant: Tenant, kind: str, target_date: date | None = None, limit: int = 200
) -> Preview:
    """Compute a sync's plan without writing anything anywhere (no run row, no API write)."""
    preview = Preview(kind=kind)
    setting = connect_setting(tenant)
    if setting is None or not setting.has_senselink_credentials or not tenant.kot_access_token:
        preview.error = "連携設定が未登録のため、プレビューできません。"
        return preview
    kot = kot_client(tenant)
    senselink = senselink_client(setting)
    try:
        if kind == SyncRun.Kind.EMPLOYEE:
            _employee(preview, kot, senselink, setting, limit)
        else:
            _attendance(preview, kot, senselink, setting, target_date, limit)
    except (ConnectorError, SyncAborted) as exc:  # incl. a KOT forbidden window
        preview.error = exc.message
    finally:
        kot.close()
        senselink.close()
    return preview


def _employee(preview, kot, senselink, setting, limit):
    plan = plan_employee_sync(
        kot=kot, senselink=senselink, setting=setting, today=timezone.localdate()
    )
    preview.counts = {
        "create": len(plan.creates),
        "update": len(plan.updates),
        "delete": len(plan.deletes),
        "skip": plan.skipped,
    }
    lines = [f"登録: 従業員コード:{d.job_number} {d.name}" for d in plan.creates]
    lines += [
        f"更新: 従業員コード:{u.data.job_number} ({'、'.join(FIELD_LABELS[f] for f in u.changed)})"
        for u in plan.updates
    ]
    lines += [f"削除: 従業員コード:{p.job_number} {p.name}" for p in plan.deletes]
    preview.lines = lines[:limit]


def _attendance(preview, kot, senselink, setting, target_date, limit):
    target_date = target_date or timezone.localdate()
    plan = plan_attendance(
        kot=kot, senselink=senselink, target_date=target_date, mode=setting.attendance_mode
    )
    preview.counts = {"punch": len(plan.to_post), "skip": plan.already, "error": len(plan.problems)}
    lines = [
        f"打刻: 従業員コード:{p.employee_code} {PUNCH_NAMES[p.code]} "
        f"{timezone.localtime(p.time):%Y-%m-%d %H:%M:%S}"
        for p in plan.to_post
    ]
    lines += [f"エラー: {p.message}" for p in plan.problems]
    preview.lines = lines[:limit]
