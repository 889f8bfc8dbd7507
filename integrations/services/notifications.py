"""E-mail when a run ends failure or partial: to the tenant's contact and to support.

One message per run, to whoever the tenant's switches allow. It names the tenant, the kind and
the result, lists what failed, and links to the log. The mail leaves as a task of its own on
the workers' cluster, queued by ``runs.end_run`` — the one way a run ends — only when its
fenced UPDATE matched, after the end commits (``notify_run_problem`` does the same by hand), so
a slow or dead mail server (``EMAIL_TIMEOUT``) never holds a sync or the dispatcher; a mail that
cannot be sent is logged and its task shows as failed in the admin.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone, translation

from ..kinds import kind_of
from ..models import ConnectSetting, SyncError, SyncRun

log = logging.getLogger(__name__)

MAX_ERROR_LINES = 50
PROBLEM_STATUSES = (SyncRun.Status.FAILURE, SyncRun.Status.PARTIAL)


def recipients_for(run: SyncRun) -> list[str]:
    tenant = run.tenant
    recipients = []
    if tenant.notify_contact and tenant.contact_email:
        recipients.append(tenant.contact_email)
    if tenant.notify_support and settings.SUPPORT_EMAIL:
        recipients.append(settings.SUPPORT_EMAIL)
    return recipients


def subject_for(run: SyncRun) -> str:
    """e.g. "[連携エラー] acme 株式会社 勤怠連携 #12 FAILURE"; always one header-safe line.

    A tenant name may hold a newline (typed in the admin): Django refuses such a subject
    (``BadHeaderError``) and the mail would be lost, so every run of whitespace becomes a space.
    """
    subject = (
        f"[連携エラー] {run.tenant.name} {run.get_kind_display()} #{run.pk} "
        f"{run.get_status_display()}"
    )
    return " ".join(subject.split())


def body_for(run: SyncRun) -> str:
    base = settings.PORTAL_BASE_URL.rstrip("/")
    lines = [
        f"{run.tenant.name} 様の{run.get_kind_display()}が {run.get_status_display()} で終了しました。",
        "",
        f"連携ログ: #{run.pk}",
        f"起動: {run.get_trigger_display()}({run.triggered_by_label or '-'})",
    ]
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
    lines += ["", f"連携ログ(お客様用ページ): {base}/"]
    if run.tenant.notify_support:
        lines.append(
            f"連携ログ(サポート用管理画面): {base}/admin/integrations/syncrun/{run.pk}/change/"
        )
    if kind_of(run.kind).rerunnable:
        lines.append("失敗した打刻は、原因を解消したうえで再実行できます。")
    return "\n".join(lines) + "\n"


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
    """Tell the tenant's contact and support that a run failed or partly failed (a mail task)."""
    if run.status not in PROBLEM_STATUSES:
        return
    from ..queue import enqueue_run_mail

    enqueue_run_mail(run_id=run.pk)


def send_run_problem_mail(*, run_id: int) -> bool:
    """Send a run's failure mail now (the workers' mail task). False when it could not be sent."""
    run = SyncRun.objects.select_related("tenant").filter(pk=run_id).first()
    if run is None or run.status not in PROBLEM_STATUSES:
        return True  # pruned meanwhile, or not a problem: nothing to tell
    try:
        recipients = recipients_for(run)
        if not recipients:
            return True
        # The mail is for the customer's HR and the support desk: Japanese, whatever language
        # the request or worker that ended the run had active.
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = subject_for(run), body_for(run)
        message = EmailMessage(
            subject=_scrub(subject, run),
            body=_scrub(body, run),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        message.send(fail_silently=False)
    except Exception:
        log.exception("run %s: the failure notification could not be sent", run.pk)
        return False
    log.info("run %s: failure notification sent to %d recipient(s)", run.pk, len(recipients))
    return True


def push_stopped_body(setting: ConnectSetting) -> str:
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
        f"連携設定(お客様用ページ): {base}/connects/{setting.pk}/settings/",
    ]
    if setting.tenant.notify_support:
        lines.append(
            f"テナント(サポート用管理画面): {base}/admin/integrations/tenant/{setting.tenant_id}/change/"
        )
    return "\n".join(lines) + "\n"


def send_push_stopped_mail(*, setting_id: int) -> bool:
    """Mail the tenant's contact and support that the push subscription stopped (a task)."""
    setting = (
        ConnectSetting.objects.select_related("tenant", "push_receiver")
        .filter(pk=setting_id, push_receiver__stopped_at__isnull=False)
        .first()
    )
    if setting is None:
        return True  # restored meanwhile: nothing to tell
    tenant = setting.tenant
    recipients = []
    if tenant.notify_contact and tenant.contact_email:
        recipients.append(tenant.contact_email)
    if tenant.notify_support and settings.SUPPORT_EMAIL:
        recipients.append(settings.SUPPORT_EMAIL)
    if not recipients:
        return True
    try:
        with translation.override(settings.LANGUAGE_CODE):
            subject = f"[プッシュ停止] {tenant.name} SenseLinkイベントサブスクリプション"
            body = push_stopped_body(setting)
        EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        ).send(fail_silently=False)
    except Exception:
        log.exception("setting %s: the push-stopped notice could not be sent", setting_id)
        return False
    log.info("setting %s: push-stopped notice sent to %d recipient(s)", setting_id, len(recipients))
    return True
