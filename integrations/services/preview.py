"""Preview (dry run): what a sync would do, computed from reads only (SPEC 4.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.utils import timezone

from connectors.errors import ConnectorError

from ..kinds import kind_of
from ..models import Tenant
from . import ledger
from .attendance_sync import plan_attendance
from .clients import connect_setting, kot_client, senselink_client
from .employee_sync import FIELD_LABELS, check_guards, plan_employee_sync
from .punches import PUNCH_NAMES
from .runs import SyncAborted
from .workday import current_rules


@dataclass
class Preview:
    """Lines for people, and the counts; ``error`` is set when the preview couldn't be made."""

    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what the run would stop on, or warn of
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
        kind_of(kind).preview(preview, kot, senselink, setting, target_date, limit)
    except (ConnectorError, SyncAborted) as exc:  # incl. a KOT forbidden window
        preview.error = exc.message
    finally:
        kot.close()
        senselink.close()
    return preview


NO_GROUP_NOTICE = (
    "登録先の人員グループが指定されていないため、新しく登録する人員はどの人員グループにも入らず、"
    "どの端末でも認識されません。連携設定で人員グループを指定するか、登録後にSenseLinkで"
    "グループに追加してください。"
)


def _employee(preview, kot, senselink, setting, target_date, limit):
    plan = plan_employee_sync(
        kot=kot, senselink=senselink, setting=setting, today=timezone.localdate(), guards=False
    )
    try:
        check_guards(plan, setting, allow_mass_create=False)
    except SyncAborted as exc:
        preview.notices.append(f"この内容では実行時に停止します: {exc.message}")
    if plan.creates and not plan.groups:
        preview.notices.append(NO_GROUP_NOTICE)
    if plan.outdated:
        preview.notices.append(
            f"KING OF TIMEと内容が異なる人員が{len(plan.outdated)}人いますが、既存の人員を更新しない"
            "設定のため更新しません(設定の変更はサポートにご依頼ください)。"
        )
    preview.counts = {
        "create": len(plan.creates),
        "update": len(plan.updates),
        "outdated": len(plan.outdated),
        "delete": len(plan.deletes),
        "skip": plan.skipped,
        "error": len(plan.problems),
    }

    def fields(update):
        return "、".join(FIELD_LABELS[f] for f in update.changed)

    lines = [
        f"登録: 従業員コード:{d.job_number} {d.name}"
        + (
            "(メールアドレスは長すぎるため登録しません)"
            if d.job_number in plan.mail_dropped
            else ""
        )
        for d in plan.creates
    ]
    lines += [f"更新: 従業員コード:{u.data.job_number} ({fields(u)})" for u in plan.updates]
    lines += [
        f"差分あり(更新しない設定): 従業員コード:{u.data.job_number} ({fields(u)})"
        for u in plan.outdated
    ]
    lines += [f"削除: 従業員コード:{p.job_number} {p.name}" for p in plan.deletes]
    lines += [f"エラー: {p.message}" for p in plan.problems]
    preview.lines = lines[:limit]


def _attendance(preview, kot, senselink, setting, target_date, limit):
    target_date = target_date or timezone.localdate()
    rules, notice = current_rules(setting=setting, kot=kot, store=False)
    if notice:
        preview.notices.append(notice)
    end = rules.span(target_date)[1]
    if not rules.day_ended(target_date, timezone.now()):
        preview.notices.append(
            f"{target_date:%Y年%m月%d日}の勤務日は{timezone.localtime(end):%m月%d日 %H:%M}まで"
            "続くため、この内容はその時点までの認証記録によるものです。"
        )
    # The punch ledger (read only): a clock-in a real-time poll sent is what the run compares.
    plan = plan_attendance(
        kot=kot,
        senselink=senselink,
        target_date=target_date,
        mode=setting.attendance_mode,
        rules=rules,
        seen=ledger.seen_of_day(tenant_id=setting.tenant_id, working_date=target_date),
    )
    preview.counts = {"punch": len(plan.to_post), "skip": plan.already, "error": len(plan.problems)}
    lines = [
        f"打刻: 従業員コード:{p.employee_code} {PUNCH_NAMES[p.punch]} "
        f"{timezone.localtime(p.time):%Y-%m-%d %H:%M:%S}"
        for p in plan.to_post
    ]
    lines += [f"エラー: {p.message}" for p in plan.problems]
    preview.lines = lines[:limit]
