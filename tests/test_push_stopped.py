"""Stopped push subscriptions: when polls find employee records that no push announced within the
grace delay, while the setting is known to receive pushes, the subscription is marked stopped
once, the tenant sees a banner (with how to restore it), support sees it in the admin and gets
a mail task; the next push marks it restored."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.test import Client

from integrations.models import ConnectSetting, PushReceiver, TermsConsent
from integrations.queue import SEND_PUSH_STOPPED_MAIL, WORKERS
from integrations.services import push
from tests.admin_helpers import support_user
from tests.conftest import JST, PASSWORD, make_tenant_user
from tests.queue_helpers import orm_broker_only, queued, work
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 25, 8, 40, tzinfo=JST)
GRACE = timedelta(seconds=120)


@pytest.fixture
def acme(settings, monkeypatch):
    """acme has received one push at T0 (known to receive pushes); its HR user has consented."""
    settings.PUSH_STOPPED_GRACE_SECONDS = 120
    settings.SUPPORT_EMAIL = "support@vendor.example.jp"
    monkeypatch.setattr(push, "wake", lambda setting_id: True)
    tenant = make_acme(realtime_clock_in=True)
    setting = ConnectSetting.objects.get(tenant=tenant)
    receive(setting, at=T0)
    user = make_tenant_user(tenant, "acme-hr")
    TermsConsent.objects.create(user=user, tenant=tenant, version=settings.TERMS_VERSION)
    return setting


def receive(setting, *, at: datetime, message_id: str | None = None) -> push.Outcome:
    body = {"eventType": "30000", "messageId": message_id or f"m-{at.timestamp()}", "data": {}}
    return push.receive_push(token=setting.push_token, body=json.dumps(body).encode(), now=at)


def record(at: datetime, job_number: str | None = "1001"):
    return SimpleNamespace(id=1, sign_time=at, job_number=job_number, user_type=1)


def poll(setting, records, *, at: datetime, capture):
    with capture(execute=True):
        receiver = push.note_poll(setting=setting, records=records, now=at)
    return receiver


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def test_a_setting_that_never_received_a_push_is_never_stopped(capture):
    setting = ConnectSetting.objects.get(tenant=make_globex())
    later = T0 + timedelta(hours=1)
    assert poll(setting, [record(T0)], at=later, capture=capture) is None
    assert not PushReceiver.objects.exists()


def test_records_announced_by_a_push_change_nothing(acme, capture):
    # A record a few seconds before the push that announced it, and one a little after it
    # (device clock ahead): both within the clock skew.
    records = [record(T0 - timedelta(seconds=2)), record(T0 + timedelta(seconds=30))]
    receiver = poll(acme, records, at=T0 + timedelta(minutes=10), capture=capture)
    assert receiver.stopped_at is None and receiver.unannounced_since is None


def test_an_unannounced_record_waits_for_the_grace_delay_then_marks_the_subscription_stopped(
    acme, capture
):
    orm_broker_only()
    unannounced = T0 + timedelta(minutes=5)
    receiver = poll(
        acme, [record(unannounced)], at=unannounced + timedelta(seconds=20), capture=capture
    )
    assert receiver.stopped_at is None and receiver.unannounced_since == unannounced
    assert not queued(WORKERS, SEND_PUSH_STOPPED_MAIL)
    # The next poll finds nothing new; the record is still unannounced past the grace delay.
    stopped_at = unannounced + GRACE + timedelta(seconds=1)
    receiver = poll(acme, [], at=stopped_at, capture=capture)
    assert receiver.stopped_at == stopped_at
    # Later polls do not mark or mail it again.
    poll(acme, [record(stopped_at)], at=stopped_at + timedelta(minutes=5), capture=capture)
    assert len(queued(WORKERS, SEND_PUSH_STOPPED_MAIL)) == 1
    assert PushReceiver.objects.get().stopped_at == stopped_at


def test_a_late_push_for_the_record_keeps_the_subscription_alive(acme, capture):
    unannounced = T0 + timedelta(minutes=5)
    poll(acme, [record(unannounced)], at=unannounced + timedelta(seconds=5), capture=capture)
    receive(acme, at=unannounced + timedelta(seconds=8))
    receiver = poll(acme, [], at=unannounced + GRACE * 3, capture=capture)
    assert receiver.stopped_at is None and receiver.unannounced_since is None


def test_visitor_and_stranger_records_are_not_counted(acme, capture):
    receiver = poll(
        acme,
        [record(T0 + timedelta(minutes=5), job_number=None)],
        at=T0 + GRACE * 10,
        capture=capture,
    )
    assert receiver.stopped_at is None


def test_the_tenant_and_support_are_told_how_to_restore_it_and_a_push_restores_it(
    acme, capture, settings
):
    orm_broker_only()
    unannounced = T0 + timedelta(minutes=5)
    poll(acme, [record(unannounced)], at=unannounced + GRACE * 2, capture=capture)
    # The mail task, worked as a worker would: to the tenant's contact and support.
    assert work(WORKERS, SEND_PUSH_STOPPED_MAIL) == ["sent"]
    customer, support = mail.outbox  # one mail each: only support's links the admin
    assert (customer.to, support.to) == (["hr@acme.example.jp"], ["support@vendor.example.jp"])
    assert "/admin/" not in customer.body and "/admin/integrations/tenant/" in support.body
    for message in (customer, support):
        assert "停止" in message.subject
        assert "JCVサポート" in message.body and "/api/v3/event/updateSub" in message.body
        assert acme.push_token not in message.body
    # The tenant pages show the banner.
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    page = client.get("/").content.decode()
    assert "イベントサブスクリプション(プッシュ)が停止しています" in page
    assert "JCVサポート" in page
    settings_page = client.get(f"/connects/{acme.pk}/settings/").content.decode()
    assert "停止(異常)" in settings_page and push.push_url(acme) in settings_page
    # Support sees it in the admin (the tenant list filter and the setting's state).
    desk = Client()
    desk.force_login(support_user())
    listing = desk.get("/admin/integrations/tenant/?push=stopped").content.decode()
    assert "acme 株式会社" in listing
    change = desk.get(f"/admin/integrations/tenant/{acme.tenant_id}/change/").content.decode()
    assert "停止中" in change
    # Restored (JCV fixed it): the next push clears the mark and the banner.
    receive(acme, at=unannounced + GRACE * 5)
    assert PushReceiver.objects.get().stopped_at is None
    assert "停止しています" not in client.get("/").content.decode()


def test_the_mail_task_of_a_subscription_restored_meanwhile_sends_nothing(acme, capture):
    orm_broker_only()
    unannounced = T0 + timedelta(minutes=5)
    poll(acme, [record(unannounced)], at=unannounced + GRACE * 2, capture=capture)
    receive(acme, at=unannounced + GRACE * 3)
    assert work(WORKERS, SEND_PUSH_STOPPED_MAIL) == ["sent"]
    assert mail.outbox == []


def test_the_settings_page_shows_what_to_submit_to_jcv(acme, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.jp"
    settings.PORTAL_INBOUND_IP = "198.51.100.7"
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    page = client.get(f"/connects/{acme.pk}/settings/").content.decode()
    assert f"https://portal.example.jp/hooks/senselink/{acme.push_token}/" in page
    assert "198.51.100.7" in page and ">443<" in page
    assert "JCVサポート" in page and "受信中" in page


def test_support_regenerates_the_receiving_url(acme):
    desk = Client()
    desk.force_login(support_user())
    old = acme.senselink_push_path
    response = desk.post(f"/admin/integrations/tenant/{acme.tenant_id}/push-token/")
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.senselink_push_path != old
    assert desk.get(f"/admin/integrations/tenant/{acme.tenant_id}/push-token/").status_code == 405
