"""The e-mails after a failed or partial run: one for the tenant's contact (what happened, what
they can do, their own page of the run), one for support (the admin link, the rerun hint);
subject, what failed, no secret, per-tenant switches; each leaves as a task of its own on the
workers' cluster once the run's end is committed, and a mail server that fails never breaks a
run."""

from __future__ import annotations

from datetime import date

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from integrations.models import SyncError, SyncRun
from integrations.queue import SEND_RUN_MAIL, WORKERS
from integrations.services.execution import execute_run
from integrations.services.notifications import notify_run_problem
from integrations.services.runs import request_run
from tests.queue_helpers import orm_broker_only, queued, work
from tests.world import make_acme

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 24)


@pytest.fixture
def notify(django_capture_on_commit_callbacks):
    """Notify as a sync's end does, then let a worker run the queued mail task."""
    orm_broker_only()

    def notify(run):
        with django_capture_on_commit_callbacks(execute=True):
            notify_run_problem(run=run)
        return work(WORKERS, SEND_RUN_MAIL)

    return notify


@pytest.fixture
def acme(settings):
    settings.SUPPORT_EMAIL = "support@vendor.example.jp"
    settings.DEFAULT_FROM_EMAIL = "portal@vendor.example.jp"
    settings.PORTAL_BASE_URL = "https://portal.example.jp"
    return make_acme()


def failed_run(tenant, *, status=SyncRun.Status.PARTIAL, errors=2, message="") -> SyncRun:
    run = SyncRun.objects.create(
        tenant=tenant,
        kind=SyncRun.Kind.ATTENDANCE,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=status,
        target_date=DAY,
        triggered_by_label="スケジュール",
        created_count=3,
        failed_count=errors,
        message=message or "2026年11月24日: 打刻登録3 失敗2",
    )
    SyncError.objects.bulk_create(
        SyncError(
            run=run,
            employee_code=f"{2000 + i}",
            target_date=DAY,
            punch=SyncError.Punch.CLOCK_IN,
            code="already_punched",
            message=f"従業員コード:{2000 + i} の出勤は既に打刻済みです。"
            "KING OF TIME管理画面をご確認ください。",
        )
        for i in range(errors)
    )
    return run


def mails_to(address: str) -> list:
    return [message for message in mail.outbox if message.to == [address]]


def test_the_customer_and_support_each_get_a_mail_of_their_own(notify, acme):
    run = failed_run(acme)
    notify(run)

    customer, support = mail.outbox
    assert customer.to == ["hr@acme.example.jp"]
    assert customer.subject == f"[連携エラー] acme 株式会社 勤怠連携 #{run.pk} PARTIAL"
    assert support.to == ["support@vendor.example.jp"]
    assert support.subject == f"[連携エラー・サポート] acme 株式会社 勤怠連携 #{run.pk} PARTIAL"
    assert customer.from_email == support.from_email == "portal@vendor.example.jp"


def test_the_customer_mail_says_what_happened_and_what_to_do_with_a_link_to_its_own_page(
    notify, acme
):
    run = failed_run(acme)
    notify(run)

    (customer,) = mails_to("hr@acme.example.jp")
    body = customer.body
    assert "一部の連携ができませんでした" in body
    assert "2026年11月24日: 打刻登録3 失敗2" in body
    assert "従業員コード:2000 従業員コード:2000 の出勤は既に打刻済みです。" in body
    assert "対象日: 2026年11月24日" in body
    # What the customer can do, on its own pages.
    assert "同じ日付の勤怠連携をもう一度実行できます" in body
    assert "この結果はサポートにも通知しています" in body
    assert f"https://portal.example.jp/runs/{run.pk}/errors/\n" in body
    # Nothing the customer cannot use: no admin link, no rerun action of the desk.
    assert "/admin/" not in body
    assert "再実行できます" not in body and "失敗した勤怠連携を再実行" not in body


def test_the_support_mail_carries_the_admin_link_and_the_rerun_hint(notify, acme):
    run = failed_run(acme)
    notify(run)

    (support,) = mails_to("support@vendor.example.jp")
    body = support.body
    assert "従業員コード:2001" in body
    assert f"https://portal.example.jp/admin/integrations/syncrun/{run.pk}/change/" in body
    assert "「失敗した勤怠連携を再実行」で再実行できます" in body
    assert "別のメールで hr@acme.example.jp に送信" in body


def test_a_configuration_failure_tells_the_customer_to_check_the_settings(notify, acme):
    run = failed_run(acme, status=SyncRun.Status.FAILURE, errors=0, message="認証に失敗しました。")
    SyncRun.objects.filter(pk=run.pk).update(error_type=SyncRun.ErrorType.CONFIGURATION)
    notify(run)

    (customer,) = mails_to("hr@acme.example.jp")
    assert "連携できませんでした" in customer.body
    assert "[接続テスト]" in customer.body
    assert "同じ日付の勤怠連携をもう一度実行できます" not in customer.body


def test_a_run_stopped_by_the_creation_guard_tells_support_about_the_override(notify, acme):
    run = SyncRun.objects.create(
        tenant=acme,
        kind=SyncRun.Kind.EMPLOYEE,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=SyncRun.Status.FAILURE,
        message="一括登録の上限を超えるため、何も変更せずに停止しました。",
    )
    SyncError.objects.create(run=run, code="creation_guard", message=run.message)
    notify(run)

    (customer,) = mails_to("hr@acme.example.jp")
    (support,) = mails_to("support@vendor.example.jp")
    assert "[この実行のみ上限を超えて登録]" in support.body
    assert "この実行のみ上限を超えて登録]" not in customer.body
    assert "社員情報連携をもう一度実行できます" in customer.body
    assert "失敗した勤怠連携を再実行" not in support.body  # not a rerunnable kind


def test_at_most_fifty_error_lines_then_a_count_of_the_rest(notify, acme):
    run = failed_run(acme, errors=60)
    notify(run)

    for message in mail.outbox:
        assert message.body.count("の出勤は既に打刻済みです。") == 50
        assert "ほか10件" in message.body


def test_no_secret_is_ever_in_the_mail(notify, acme):
    # Even if a message carried a secret by mistake, the mail does not.
    setting = acme.connect_settings.get()
    run = failed_run(
        acme,
        status=SyncRun.Status.FAILURE,
        message=f"token {acme.kot_access_token} secret {setting.app_secret}",
    )
    notify(run)

    assert len(mail.outbox) == 2
    for message in mail.outbox:
        text = message.subject + message.body
        assert acme.kot_access_token not in text
        assert setting.app_secret not in text
        assert "FAILURE" in message.subject


@pytest.mark.parametrize(
    ("notify_contact", "notify_support", "expected"),
    [
        (True, False, ["hr@acme.example.jp"]),
        (False, True, ["support@vendor.example.jp"]),
        (False, False, None),
    ],
)
def test_each_tenant_chooses_who_is_told(notify, acme, notify_contact, notify_support, expected):
    acme.notify_contact = notify_contact
    acme.notify_support = notify_support
    acme.save()
    run = failed_run(acme)
    notify(run)

    if expected is None:
        assert mail.outbox == []
        return
    (message,) = mail.outbox
    assert message.to == expected
    # The admin link is for support only.
    assert ("/admin/integrations/syncrun/" in message.body) is notify_support
    # The customer hears whether support was told too.
    assert ("サポートにも通知しています" in message.body) is False


def test_a_successful_run_sends_nothing(notify, acme):
    run = failed_run(acme, status=SyncRun.Status.SUCCESS, errors=0)
    notify(run)
    assert mail.outbox == []


def test_a_mail_server_failure_is_logged_and_fails_only_the_mail_task(
    notify, acme, monkeypatch, caplog
):
    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    run = failed_run(acme)
    with pytest.raises(RuntimeError, match=f"customer failure notice of run {run.pk} could not"):
        notify(run)  # the task fails (shown among django-q2's failed tasks), nothing else
    assert "could not be sent" in caplog.text
    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL


def test_the_mail_is_a_task_on_the_workers_queue_once_the_run_end_commits(
    acme, django_capture_on_commit_callbacks
):
    orm_broker_only()
    run = failed_run(acme)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify_run_problem(run=run)
    assert queued() == []  # nothing leaves before the run's end is committed
    assert len(callbacks) == 1
    callbacks[0]()

    customer, support = queued()
    for task, audience in ((customer, "customer"), (support, "support")):
        assert task["_key"] == WORKERS  # never the dispatcher's queue, whoever ended the run
        assert task["func"] == SEND_RUN_MAIL
        assert task["args"] == (run.pk, audience)
        assert task["name"] == f"run-mail-{run.pk}-{audience}"
        assert task["group"] == "mail"
    assert mail.outbox == []  # sent by a worker, not by whoever ended the run


def test_a_mail_task_queued_before_the_split_still_sends_both(acme, settings):
    from integrations.tasks import send_run_mail_task

    run = failed_run(acme)
    assert send_run_mail_task(run.pk) == "sent"
    assert sorted(m.to[0] for m in mail.outbox) == [
        "hr@acme.example.jp",
        "support@vendor.example.jp",
    ]


def test_smtp_connections_time_out(settings):
    from django.core.mail import get_connection

    assert settings.EMAIL_TIMEOUT == 10
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend")
    assert connection.timeout == 10


def test_a_run_that_fails_for_real_sends_one_mail(
    world, settings, django_capture_on_commit_callbacks
):
    orm_broker_only()
    settings.SUPPORT_EMAIL = "support@vendor.example.jp"
    world.acme.kot_access_token = "a-wrong-token-for-kot"
    world.acme.save()
    request = request_run(tenant=world.acme, kind="attendance", target_date=DAY, enqueue=False)

    with django_capture_on_commit_callbacks(execute=True):
        result = execute_run(run_id=request.run.pk)
    work(WORKERS, SEND_RUN_MAIL)

    assert result.status == SyncRun.Status.FAILURE
    customer, support = mail.outbox  # one each, once
    assert customer.subject == f"[連携エラー] acme 株式会社 勤怠連携 #{result.pk} FAILURE"
    assert support.to == ["support@vendor.example.jp"]
    for message in (customer, support):
        assert result.message in message.body
        assert "a-wrong-token-for-kot" not in message.body


def test_a_newline_in_the_tenant_name_still_sends_one_header_safe_subject(notify, acme):
    acme.name = "acme\r\n株式会社\nBcc: attacker@example.com"
    acme.save()
    run = failed_run(acme)
    notify(run)

    customer, _support = mail.outbox
    assert customer.subject == (
        f"[連携エラー] acme 株式会社 Bcc: attacker@example.com 勤怠連携 #{run.pk} PARTIAL"
    )
    for message in mail.outbox:
        assert "attacker@example.com" not in message.bcc
        assert message.message()["Bcc"] is None
