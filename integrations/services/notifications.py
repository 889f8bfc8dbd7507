"""E-mail when a run ends failure or partial: one mail to the tenant's contact, one to support.

The two read differently. The customer's says what happened and what the customer can do,
and links to the run's own page on the tenant side (エラー詳細, ``PORTAL_BASE_URL``); support's
carries the admin link and the hints only the desk can act on (the rerun action, the creation
guard's override). Each leaves as a task of its own on the workers' cluster, queued by
``runs.end_run`` — the one way a run ends — only when its fenced UPDATE matched, after the end
commits (``notify_run_problem`` does the same by hand), so a slow or dead mail server
(``EMAIL_TIMEOUT``) never holds a sync or the dispatcher; a mail that cannot be sent is logged
and its task shows as failed in the admin.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone, translation

from ..kinds import kind_of
from ..models import ConnectSetting, SyncError, SyncRun

log = logging.getLogger(__name__)

MAX_ERROR_LINES = 50
PROBLEM_STATUSES = (SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL)

# Who a run's failure mail is for: one mail (and one task) each.
CUSTOMER = "customer"
SUPPORT = "support"
AUDIENCES = (CUSTOMER, SUPPORT)

# What the customer can do, by the run's error type (SyncRun.ErrorType).
_RETRY_LATER = (
    "一時的な問題で連携を完了できませんでした。時間をおいて、コネクト一覧の[手動実行]から"
    "もう一度実行してください。"
)
CUSTOMER_ADVICE = {
    SyncRun.ErrorType.CONFIGURATION: (
        "連携設定(KING OF TIMEのアクセストークン、SenseLinkのURL・Appキー・Appシークレット、"
        "このポータルの接続元IPアドレスの登録)をご確認のうえ、連携設定の[接続テスト]で"
        "接続できることを確かめてから、[手動実行]でもう一度実行してください。"
    ),
    SyncRun.ErrorType.TRANSIENT: _RETRY_LATER,
    SyncRun.ErrorType.WORKER_LOST: _RETRY_LATER,
    SyncRun.ErrorType.INTERNAL: _RETRY_LATER,
    SyncRun.ErrorType.MISSED: (
        "スケジュールの実行時刻に実行できなかったため、この回は実行していません。"
        "必要であれば、コネクト一覧の[手動実行]から実行してください。"
    ),
}
EMPLOYEE_ERRORS_ADVICE = (
    "エラー詳細の従業員について、KING OF TIMEとSenseLinkの登録内容をご確認ください。"
)
RUN_AGAIN_ADVICE = {
    SyncRun.Kind.ATTENDANCE: (
        "修正後、コネクト一覧の[手動実行]で同じ日付の勤怠連携をもう一度実行できます"
        "(登録済みの打刻が二重に登録されることはありません)。"
    ),
    SyncRun.Kind.EMPLOYEE: "修正後、コネクト一覧の[手動実行]で社員情報連携をもう一度実行できます。",
}


def _customer_recipients(run: SyncRun) -> list[str]:
    tenant = run.tenant
    return [tenant.contact_email] if tenant.notify_contact and tenant.contact_email else []


def _support_recipients(run: SyncRun) -> list[str]:
    return [settings.SUPPORT_EMAIL] if run.tenant.notify_support and settings.SUPPORT_EMAIL else []


def recipients_for(run: SyncRun, audience: str) -> list[str]:
    """The addresses of one audience's mail (empty: that mail is not sent)."""
    return _customer_recipients(run) if audience == CUSTOMER else _support_recipients(run)


def subject_for(run: SyncRun, audience: str = CUSTOMER) -> str:
    """e.g. "[連携エラー] acme 株式会社 勤怠連携 #12 FAILURE"; always one header-safe line.

    Support's starts "[連携エラー・サポート]". A tenant name may hold a newline (typed in the
    admin): Django refuses such a subject (``BadHeaderError``) and the mail would be lost, so
    every run of whitespace becomes a space.
    """
    tag = "[連携エラー・サポート]" if audience == SUPPORT else "[連携エラー]"
    subject = (
        f"{tag} {run.tenant.name} {run.get_kind_display()} #{run.pk} {run.get_status_display()}"
    )
    return " ".join(subject.split())


def _facts(run: SyncRun) -> list[str]:
    """What both mails say of the run: when, what it did, its message and its errors."""
    lines = [f"起動: {run.get_trigger_display()}({run.triggered_by_label or '-'})"]
    if run.target_date:
        lines.append(f"対象日: {run.target_date:%Y年%m月%d日}")
    if run.started_at:
        lines.append(f"開始: {timezone.localtime(run.started_at):%Y年%m月%d日 %H:%M:%S}")
    if run.finished_at:
        lines.append(f"終了: {timezone.localtime(run.finished_at):%Y年%m月%d日 %H:%M:%S}")
    lines.append(
        f"登録 {run.created_count} / 更新 {run.updated_count} / 削除 {run.deleted_count} / "
        f"スキップ {run.skipped_count} / 失敗 {run.failed_count}"
    )
    if run.message:
        lines += ["", run.message]
    errors = list(run.errors.order_by("id")[: MAX_ERROR_LINES + 1])
    if errors:
        lines += ["", "エラー詳細:"]
        for error in errors[:MAX_ERROR_LINES]:
            code = error.employee_code or "-"
            warning = "(警告) " if error.severity == SyncError.Severity.WARNING else ""
            lines.append(f"- {warning}従業員コード:{code} {error.message}")
        if len(errors) > MAX_ERROR_LINES:
            more = run.errors.count() - MAX_ERROR_LINES
            lines.append(f"ほか{more}件。すべてのエラーは連携ログでご確認ください。")
    return lines


def _outcome(run: SyncRun) -> str:
    if run.status == SyncRun.Status.PARTIAL:
        return "一部の連携ができませんでした"
    return "連携できませんでした"


def customer_body(run: SyncRun) -> str:
    """The contact's mail: what happened, what they can do, and their own page of this run."""
    base = settings.PORTAL_BASE_URL.rstrip("/")
    lines = [
        f"{run.tenant.name} ご担当者様",
        "",
        f"SenseThunder連携の{run.get_kind_display()} #{run.pk} が {run.get_status_display()} "
        f"で終了しました({_outcome(run)})。",
        "",
        *_facts(run),
        "",
        "ご対応のお願い:",
    ]
    advice = CUSTOMER_ADVICE.get(run.error_type)
    if advice:
        lines.append(advice)
    else:
        lines.append(EMPLOYEE_ERRORS_ADVICE)
        lines.append(RUN_AGAIN_ADVICE.get(run.kind, ""))
    if run.tenant.notify_support and settings.SUPPORT_EMAIL:
        lines.append(
            "この結果はサポートにも通知しています。解決しない場合はサポートへご連絡ください。"
        )
    else:
        lines.append("解決しない場合はサポートへご連絡ください。")
    lines += [
        "",
        f"この実行の連携ログ(エラー詳細): {base}{reverse('portal:run_errors', args=[run.pk])}",
        f"コネクト一覧: {base}{reverse('portal:connect_list')}",
    ]
    return "\n".join(lines) + "\n"


def support_body(run: SyncRun) -> str:
    """Support's mail: the facts, the admin link, and what the desk can do about it."""
    base = settings.PORTAL_BASE_URL.rstrip("/")
    customer = _customer_recipients(run)
    lines = [
        f"{run.tenant.name} 様の{run.get_kind_display()}が {run.get_status_display()} で終了しました。",
        "",
        f"連携ログ: #{run.pk}",
        *_facts(run),
        "",
        f"お客様への通知: {'別のメールで ' + customer[0] + ' に送信' if customer else 'なし'}",
        "",
        f"連携ログ(サポート用管理画面): {base}{reverse('admin:integrations_syncrun_change', args=[run.pk])}",
    ]
    if kind_of(run.kind).rerunnable:
        lines.append(
            "失敗した打刻は、原因を解消したうえで管理画面の連携ログの操作"
            "「失敗した勤怠連携を再実行」で再実行できます。"
        )
    if run.errors.filter(code="creation_guard").exists():
        lines.append(
            "一括登録の上限で停止しています。お客様の確認が取れたら、この連携ログの"
            "[この実行のみ上限を超えて登録]で一度だけ上限を超えて登録できます。"
        )
    return "\n".join(lines) + "\n"


def body_for(run: SyncRun, audience: str = CUSTOMER) -> str:
    return support_body(run) if audience == SUPPORT else customer_body(run)


def _scrub(text: str, run: SyncRun) -> str:
    """Defence in depth: no secret ever leaves in a mail, whatever a message contains."""
    secrets = [run.tenant.kot_access_token]
    setting = run.tenant.connect_settings.first()
    if setting is not None:
        secrets.append(setting.app_secret)
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "********")
    return text


def notify_run_problem(*, run: SyncRun) -> None:
    """Tell the tenant's contact and support that a run failed or partly failed (mail tasks)."""
    if run.status not in PROBLEM_STATUSES:
        return
    from ..queue import enqueue_run_mail

    enqueue_run_mail(run_id=run.pk)


def send_run_problem_mail(*, run_id: int, audience: str) -> bool:
    """Send one audience's failure mail of a run now (a workers' mail task).

    False when it could not be sent; True when sent or when there is nothing to send.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    run = SyncRun.objects.select_related("tenant").filter(pk=run_id).first()
    if run is None or run.status not in PROBLEM_STATUSES:
        return True  # pruned meanwhile, or not a problem: nothing to tell
    try:
        recipients = recipients_for(run, audience)
        if not recipients:
            return True
        # The mails are for the customer's HR and the support desk: Japanese, whatever
        # language the request or worker that ended the run had active.
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = subject_for(run, audience), body_for(run, audience)
        message = EmailMessage(
            subject=_scrub(subject, run),
            body=_scrub(body, run),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        message.send(fail_silently=False)
    except Exception:
        log.exception("run %s: the %s failure notification could not be sent", run.pk, audience)
        return False
    log.info("run %s: %s failure notification sent", run.pk, audience)
    return True


def push_stopped_body(setting: ConnectSetting, audience: str = CUSTOMER) -> str:
    """How to restore the subscription; only support's mail links the admin."""
    from .push import RESTORE_HOWTO

    receiver = setting.push_receiver
    base = settings.PORTAL_BASE_URL.rstrip("/")
    lines = [
        f"{setting.tenant.name} 様のSenseLinkイベントサブスクリプション(プッシュ)が停止しています"
        "(SenseLink上の状態は「異常」と思われます)。",
        "",
        f"最後のプッシュ受信: {timezone.localtime(receiver.last_push_at):%Y年%m月%d日 %H:%M:%S}",
    ]
    if receiver.unannounced_since:
        since = timezone.localtime(receiver.unannounced_since)
        lines.append(f"プッシュされなかった最初の認証: {since:%Y年%m月%d日 %H:%M:%S}")
    lines += [
        "",
        RESTORE_HOWTO,
        "受信URLは連携設定の画面に表示されています(このメールには記載しません)。",
        "",
        f"連携設定(お客様用ページ): {base}{reverse('portal:connect_settings', args=[setting.pk])}",
    ]
    if audience == SUPPORT:
        admin_url = reverse("admin:integrations_tenant_change", args=[setting.tenant_id])
        lines.append(f"テナント(サポート用管理画面): {base}{admin_url}")
    return "\n".join(lines) + "\n"


def send_push_stopped_mail(*, setting_id: int) -> bool:
    """Mail the tenant's contact and support (one mail each) that the push subscription
    stopped (a task)."""
    setting = (
        ConnectSetting.objects.select_related("tenant", "push_receiver")
        .filter(pk=setting_id, push_receiver__stopped_at__isnull=False)
        .first()
    )
    if setting is None:
        return True  # restored meanwhile: nothing to tell
    tenant = setting.tenant
    audiences = {
        CUSTOMER: [tenant.contact_email] if tenant.notify_contact and tenant.contact_email else [],
        SUPPORT: [settings.SUPPORT_EMAIL]
        if tenant.notify_support and settings.SUPPORT_EMAIL
        else [],
    }
    sent = 0
    for audience, recipients in audiences.items():
        if not recipients:
            continue
        try:
            with translation.override(settings.LANGUAGE_CODE):
                subject = f"[プッシュ停止] {tenant.name} SenseLinkイベントサブスクリプション"
                body = push_stopped_body(setting, audience)
            EmailMessage(
                subject=" ".join(subject.split()),  # one header-safe line, as subject_for
                body=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=recipients,
            ).send(fail_silently=False)
        except Exception:
            log.exception(
                "setting %s: the %s push-stopped notice could not be sent", setting_id, audience
            )
            return False
        sent += 1
    log.info("setting %s: push-stopped notice sent as %d mail(s)", setting_id, sent)
    return True
