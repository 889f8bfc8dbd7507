"""Push end to end, over real loopback HTTP: the sandbox's subscription POSTs each recognition to
the portal's receiver (a live server), the receiver wakes the tenant's real-time poll, a worker
runs the queued poll and the clock-in reaches the sandbox's KOT — within seconds, whatever the
poll interval, in both JSON shapes the sandbox can send (the manual's, and the one real senders
use: numbers for eventType and sendTime). And when a push fails, the subscription turns 異常, every later push stops, the
polls still post every clock-in, and the tenant is told."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import ConnectSetting, PushMessage, PushReceiver, TermsConsent
from integrations.queue import REALTIME_POLL, SEND_PUSH_STOPPED_MAIL, WORKERS
from integrations.services import push
from integrations.services.realtime import poll
from tests.conftest import PASSWORD, make_tenant_user
from tests.queue_helpers import orm_broker_only, queued, work
from tests.world import make_acme

pytestmark = pytest.mark.django_db(transaction=True)

RECOGNITIONS = 12


@pytest.fixture(params=["manual", "sender"])
def pushing(request, live_server, make_sandbox, noon, settings):
    """acme polls every 60 minutes (so only a push can make a clock-in fast), and its SenseLink
    pushes to the portal, in the manual's JSON or in the shape real senders use; the day's
    recognitions start empty."""
    orm_broker_only()
    sandbox = make_sandbox(employees=RECOGNITIONS + 4, seed=5, push_shape=request.param)
    settings.KOT_API_BASE_URL = sandbox.kot_url
    settings.PORTAL_BASE_URL = live_server.url
    tenant = make_acme(sandbox=sandbox, realtime_clock_in=True, realtime_interval_minutes=60)
    setting = ConnectSetting.objects.get(tenant=tenant)
    today = timezone.localdate()
    sandbox.senselink.set_records(today, [])
    subscription = sandbox.senselink.subscription
    subscription.timeout, subscription.retry_delay = 2.0, 0.05
    subscription.register(push.push_url(setting))
    assert poll(setting_id=setting.pk).status != "failed"  # the first poll: nothing yet
    return sandbox, setting


def clock_ins(sandbox, code: str) -> list:
    key = next(e["key"] for e in sandbox.kot.employees if e["code"] == code)
    return [p for p in sandbox.kot.punches if p["employeeKey"] == key and p["code"] == "1"]


def recognise(sandbox, code: str):
    return sandbox.senselink.add_record(when=timezone.now(), job_number=code)


def test_a_pushed_recognition_becomes_a_kot_clock_in_within_seconds(pushing):
    sandbox, setting = pushing
    codes = [e["code"] for e in sandbox.kot.employees if not e.get("resigned")][:RECOGNITIONS]
    latencies = []
    for code in codes:
        started = time.monotonic()
        recognise(sandbox, code)
        # The push reaches the receiver, which queues the tenant's poll; a worker runs it.
        assert sandbox.senselink.subscription.wait_idle(10)
        assert [t["func"] for t in queued(WORKERS)] == [REALTIME_POLL]
        work(WORKERS, REALTIME_POLL)
        assert len(clock_ins(sandbox, code)) == 1
        latencies.append(time.monotonic() - started)
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    assert p95 <= 10.0, latencies
    stored = PushMessage.objects.filter(setting=setting)
    assert stored.count() == RECOGNITIONS
    # Each push was read as a recognition, whichever shape the sandbox sent.
    assert set(stored.values_list("event_type", flat=True)) == {"30000"}
    sent = {m["messageId"] for m in sandbox.senselink.subscription.delivered}
    assert set(stored.values_list("message_id", flat=True)) == sent
    assert PushReceiver.objects.get(setting=setting).unusable_count == 0
    # Each clock-in once: a repeated push (SenseLink's retry) does not post again.
    for code in codes:
        assert len(clock_ins(sandbox, code)) == 1


def test_a_failed_push_stops_the_subscription_and_the_polls_still_post_every_clock_in(
    pushing, noon, settings
):
    sandbox, setting = pushing
    subscription = sandbox.senselink.subscription
    codes = [e["code"] for e in sandbox.kot.employees if not e.get("resigned")][:4]
    user = make_tenant_user(setting.tenant, "acme-hr")
    TermsConsent.objects.create(user=user, tenant=setting.tenant, version=settings.TERMS_VERSION)

    recognise(sandbox, codes[0])  # pushed: the setting is known to receive pushes
    assert subscription.wait_idle(10)
    work(WORKERS, REALTIME_POLL)
    assert PushReceiver.objects.get(setting=setting).push_count == 1

    # The portal is unreachable for a moment (a deploy): the next push fails, is retried, and
    # SenseLink turns the subscription 異常; every later push stops although we are back.
    noon.shift(timedelta(minutes=3))
    subscription.url = "http://127.0.0.1:9/hooks/senselink/down/"
    recognise(sandbox, codes[1])
    assert subscription.wait_idle(20)
    assert subscription.status == "異常"
    subscription.url = push.push_url(setting)
    for code in codes[2:]:
        recognise(sandbox, code)
    assert subscription.wait_idle(10)
    assert len(subscription.dropped) == 2 and queued(WORKERS) == []

    # The polls (every interval, as the dispatcher queues them) post every clock-in.
    assert poll(setting_id=setting.pk).status != "failed"
    for code in codes:
        assert len(clock_ins(sandbox, code)) == 1, code
    # Past the grace delay the next poll marks the subscription stopped and tells everyone.
    noon.shift(timedelta(seconds=settings.PUSH_STOPPED_GRACE_SECONDS + 60))
    poll(setting_id=setting.pk)
    receiver = PushReceiver.objects.get(setting=setting)
    assert receiver.stopped_at is not None
    assert [t["args"] for t in queued(WORKERS, SEND_PUSH_STOPPED_MAIL)] == [(setting.pk,)]
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    assert (
        "イベントサブスクリプション(プッシュ)が停止しています" in client.get("/").content.decode()
    )
    for code in codes:
        assert len(clock_ins(sandbox, code)) == 1, code
