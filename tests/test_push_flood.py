"""A flood of pushes with new messageIds (from anyone who knows a tenant's URL) stores at most
PUSH_MESSAGES_PER_MINUTE rows per tenant in any minute; beyond that each push is answered 200,
counted on the tenant's PushReceiver without a row, and logged once a minute."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client

from integrations.models import ConnectSetting, PushMessage, PushReceiver
from integrations.services import push
from tests.admin_helpers import support_user
from tests.conftest import JST
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 25, 8, 45, tzinfo=JST)
LIMIT = 5


@pytest.fixture
def acme(settings):
    """acme and globex receive pushes; the bound is LIMIT message ids a minute."""
    settings.PUSH_MESSAGES_PER_MINUTE = LIMIT
    make_globex(realtime_clock_in=True)
    return ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))


@pytest.fixture
def woken(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(push, "wake", lambda setting_id: calls.append(setting_id) or True)
    return calls


def send(setting, message_id: str | None = None) -> int:
    body = {
        "eventType": "30000",
        "messageId": message_id or uuid.uuid4().hex,
        "sendTime": "2026-11-25 08:45:03",
        "data": {"jobNumber": "1001", "signTime": int(AT.timestamp())},
    }
    response = Client().post(
        setting.senselink_push_path, data=json.dumps(body), content_type="application/json"
    )
    return response.status_code


def test_message_ids_beyond_the_per_minute_bound_are_counted_not_stored(
    acme, woken, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.WARNING, logger="integrations.services.push")
    with time_machine.travel(AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        statuses = [send(acme) for _ in range(LIMIT * 4)]
    assert statuses == [200] * (LIMIT * 4)
    assert PushMessage.objects.filter(setting=acme).count() == LIMIT
    receiver = PushReceiver.objects.get(setting=acme)
    assert (receiver.push_count, receiver.unstored_count) == (LIMIT * 4, LIMIT * 3)
    assert receiver.last_unstored_at == AT
    # Each push still wakes the poll (realtime coalesces the wakes).
    assert woken == [acme.pk] * (LIMIT * 4)
    # One log line for the whole flood.
    assert caplog.text.count(f"more than {LIMIT} message ids in a minute") == 1


def test_the_bound_is_per_tenant_and_per_minute(acme, woken):
    globex = ConnectSetting.objects.exclude(pk=acme.pk).get()
    with time_machine.travel(AT, tick=False) as clock:
        for _ in range(LIMIT + 2):
            send(acme)
        assert send(globex) == 200  # another tenant is not held by acme's flood
        clock.shift(timedelta(seconds=59))
        send(acme)
        assert PushMessage.objects.filter(setting=acme).count() == LIMIT
        clock.shift(timedelta(seconds=2))  # the first ids are more than a minute old
        send(acme)
    assert PushMessage.objects.filter(setting=acme).count() == LIMIT + 1
    assert PushMessage.objects.filter(setting=globex).count() == 1
    assert PushReceiver.objects.get(setting=acme).unstored_count == 3


def test_a_repeat_beyond_the_bound_is_still_a_duplicate(
    acme, woken, django_capture_on_commit_callbacks
):
    """SenseLink's retry of a stored message does nothing, even in a flood."""
    with time_machine.travel(AT, tick=False):
        for index in range(LIMIT):
            send(acme, f"m-{index}")
        with django_capture_on_commit_callbacks(execute=True):
            assert send(acme, "m-0") == 200
    assert woken == []
    assert PushReceiver.objects.get(setting=acme).unstored_count == 0


def test_the_flood_bound_is_logged_again_after_a_quiet_minute(acme, woken, caplog):
    caplog.set_level(logging.WARNING, logger="integrations.services.push")
    with time_machine.travel(AT, tick=False) as clock:
        for _ in range(LIMIT + 3):
            send(acme)
        clock.shift(timedelta(seconds=61))
        for _ in range(LIMIT + 3):
            send(acme)
    assert caplog.text.count(f"more than {LIMIT} message ids in a minute") == 2


def test_support_sees_what_was_counted_and_not_stored(acme, woken):
    with time_machine.travel(AT, tick=False):
        for _ in range(LIMIT + 2):
            send(acme)
        Client().post(acme.senselink_push_path, data=b"not json", content_type="text/plain")
    desk = Client()
    desk.force_login(support_user())
    page = desk.get(f"/admin/integrations/tenant/{acme.tenant_id}/change/").content.decode()
    assert "読めないプッシュ: 1件" in page
    assert "上限超過: 2件" in page
