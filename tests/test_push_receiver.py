"""The SenseLink push receiver: POST only, CSRF-exempt, 200 at once for every POST to a known
token (a body that is not a bounded strict JSON object, or has no usable messageId, is counted and
wakes the poll), with or without the trailing slash, one stored message per messageId (a repeat
does nothing), a wake-up after commit, 404 for an unknown token, other event types stored and
ignored, nothing with a control character stored, and the token in no log."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import Client

from integrations.models import ConnectSetting, PushMessage, PushReceiver
from integrations.services import push
from portal.gunicorn_logging import redact_path
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    """acme has real-time clock-in on and receives pushes; globex is another tenant."""
    make_globex(realtime_clock_in=True)
    return ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))


@pytest.fixture
def woken(monkeypatch):
    """Setting ids whose poll the receiver woke (realtime's wake is recorded, not run)."""
    calls: list[int] = []
    monkeypatch.setattr(push, "wake", lambda setting_id: calls.append(setting_id) or True)
    return calls


def body(*, message_id=None, event_type="30000", **extra) -> bytes:
    payload = {
        "eventType": event_type,
        "messageId": message_id or uuid.uuid4().hex,
        "sendTime": "2026-11-25 08:45:03",
        "data": {"id": 1, "job_number": "1001", "sign_time": 1795571103},
        **extra,
    }
    return json.dumps(payload).encode()


def post(client, setting, data: bytes, *, path: str | None = None, **kwargs):
    return client.post(
        path or setting.senselink_push_path, data=data, content_type="application/json", **kwargs
    )


def test_push_path_is_unguessable_and_unique_per_setting(acme):
    other = ConnectSetting.objects.exclude(pk=acme.pk).get()
    assert acme.senselink_push_path.startswith("/hooks/senselink/")
    assert acme.senselink_push_path.endswith("/")
    assert len(acme.push_token) >= 43  # 32 random bytes, url-safe base64
    assert acme.push_token != other.push_token


def test_a_recognition_is_stored_and_wakes_the_poll_after_commit(
    acme, woken, django_capture_on_commit_callbacks
):
    client = Client(enforce_csrf_checks=True)  # SenseLink sends no CSRF token
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, acme, body(message_id="m-1"))
    assert response.status_code == 200
    message = PushMessage.objects.get()
    assert (message.setting_id, message.message_id, message.event_type) == (acme.pk, "m-1", "30000")
    assert message.send_time == "2026-11-25 08:45:03"
    assert woken == [acme.pk]
    receiver = PushReceiver.objects.get(setting=acme)
    assert receiver.push_count == 1 and receiver.stopped_at is None


def test_a_repeated_message_id_answers_200_and_does_nothing(
    acme, woken, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, acme, body(message_id="same"))
    with django_capture_on_commit_callbacks(execute=True):
        again = post(client, acme, body(message_id="same"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert PushMessage.objects.count() == 1
    assert woken == [acme.pk]  # the repeat woke nothing


def test_the_same_message_id_of_another_tenant_is_its_own(acme, woken):
    globex = ConnectSetting.objects.exclude(pk=acme.pk).get()
    client = Client()
    post(client, acme, body(message_id="shared"))
    post(client, globex, body(message_id="shared"))
    assert PushMessage.objects.filter(message_id="shared").count() == 2


def test_other_event_types_are_stored_and_wake_nothing(
    acme, woken, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, body(event_type="30100"))
    assert response.status_code == 200
    assert PushMessage.objects.get().event_type == "30100"
    assert woken == []


def test_a_push_for_a_tenant_without_real_time_is_stored_and_wakes_nothing(
    acme, woken, django_capture_on_commit_callbacks
):
    ConnectSetting.objects.filter(pk=acme.pk).update(realtime_clock_in=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, body())
    assert response.status_code == 200
    assert PushMessage.objects.count() == 1 and woken == []


def test_unknown_or_malformed_token_answers_404(acme, woken):
    client = Client()
    for token in ["x" * 43, "short", "../../admin", acme.push_token[:-1] + "!"]:
        response = client.post(
            f"/hooks/senselink/{token}/", data=body(), content_type="application/json"
        )
        assert response.status_code == 404, token
    assert PushMessage.objects.count() == 0 and woken == []


def test_only_post_is_accepted(acme, woken):
    assert Client().get(acme.senselink_push_path).status_code == 405
    assert PushMessage.objects.count() == 0


def test_a_body_over_64_kib_answers_200_and_is_counted(
    acme, woken, django_capture_on_commit_callbacks
):
    """A 413 would stop every later push: the body is counted (and the poll woken) instead."""
    big = body(padding="x" * (push.BODY_LIMIT + 1))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, big)
    assert response.status_code == 200
    # A client that lies about its length gets no more than the limit read, and a 200 too.
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, body(), CONTENT_LENGTH=str(push.BODY_LIMIT + 1))
    assert response.status_code == 200
    assert PushMessage.objects.count() == 0
    receiver = PushReceiver.objects.get(setting=acme)
    assert (receiver.push_count, receiver.unusable_count) == (2, 2)
    assert woken == [acme.pk, acme.pk]  # it may have been a recognition: the poll tells


def deeply_nested() -> bytes:
    deep: dict = {}
    for _ in range(push.MAX_DEPTH + 5):
        deep = {"a": deep}
    return json.dumps({"eventType": "30000", "messageId": "deep", "data": deep}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"eventType": "30000", "messageId": "cut',
        b"[1, 2]",
        b'{"eventType": "30000", "messageId": NaN}',
        b"\xff\xfe{}",
        b"[" * 20_000 + b"]" * 20_000,
        deeply_nested(),
    ],
    ids=["empty", "text", "truncated", "array", "nan", "not-utf8", "nested-20000", "nested-object"],
)
def test_a_known_token_answers_200_to_a_body_that_is_not_a_bounded_json_object(
    acme, woken, raw, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, raw)
    assert response.status_code == 200
    assert PushMessage.objects.count() == 0
    assert PushReceiver.objects.get(setting=acme).unusable_count == 1
    assert woken == [acme.pk]
    assert f"push for setting {acme.pk}: unusable push" in caplog.text


def test_the_push_path_works_without_its_trailing_slash(
    acme, woken, django_capture_on_commit_callbacks
):
    """No redirect (APPEND_SLASH's 301 is not followed on a POST): the same view answers."""
    path = acme.senselink_push_path.rstrip("/")
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(path, data=body(message_id="m-1"), content_type="application/json")
    assert response.status_code == 200
    assert PushMessage.objects.get().message_id == "m-1"
    assert woken == [acme.pk]
    unknown = Client().post(
        f"/hooks/senselink/{'z' * 43}", data=body(), content_type="application/json"
    )
    assert unknown.status_code == 404


def test_a_path_below_the_token_answers_404(acme, woken):
    response = post(Client(), acme, body(), path=acme.senselink_push_path + "extra/")
    assert response.status_code == 404
    assert PushMessage.objects.count() == 0 and woken == []


@pytest.mark.parametrize(
    "message_id", ["m\x00-1", "m-\x1f", "m\x7f", "\u202em-1", "m\u200b", "m\n", "   "]
)
def test_a_message_id_with_control_characters_is_unusable(
    acme, woken, message_id, django_capture_on_commit_callbacks
):
    """PostgreSQL refuses NUL (DataError): such an id is not stored; the push still wakes."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, body(message_id=message_id))
    assert response.status_code == 200
    assert PushMessage.objects.count() == 0
    assert PushReceiver.objects.get(setting=acme).unusable_count == 1
    assert woken == [acme.pk]


def test_event_type_and_send_time_are_stored_without_control_characters(
    acme, woken, django_capture_on_commit_callbacks
):
    raw = body(message_id="m-1", event_type="300\x0000", sendTime="2026-11-25\x00 08:45\u202e")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, raw)
    assert response.status_code == 200
    message = PushMessage.objects.get()
    assert (message.event_type, message.send_time) == ("30000", "2026-11-25 08:45")
    assert woken == [acme.pk]


def test_the_sender_shape_is_a_recognition(acme, woken, django_capture_on_commit_callbacks):
    """SenseTime's push test sender: eventType 30000 and sendTime (epoch ms) as numbers."""
    message_id = str(uuid.uuid4())
    raw = json.dumps(
        {
            "eventType": 30000,
            "messageId": message_id,
            "sendTime": 1795571103123,
            "data": {"jobNumber": "1001", "signTime": 1795571103},
        }
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert post(Client(), acme, raw).status_code == 200
        assert post(Client(), acme, raw).status_code == 200  # the same message again
    message = PushMessage.objects.get()
    assert (message.message_id, message.event_type) == (message_id, "30000")
    assert message.send_time == "1795571103123"
    assert woken == [acme.pk]


def test_a_recognition_without_message_id_still_wakes_the_poll(
    acme, woken, django_capture_on_commit_callbacks
):
    raw = json.dumps({"eventType": "30000", "data": {}}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), acme, raw)
    assert response.status_code == 200
    assert PushMessage.objects.count() == 0
    assert woken == [acme.pk]


def test_a_device_alert_without_message_id_wakes_nothing(
    acme, woken, django_capture_on_commit_callbacks
):
    raw = json.dumps({"eventType": "30100", "data": {}}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert post(Client(), acme, raw).status_code == 200
    assert PushMessage.objects.count() == 0 and woken == []


def test_the_token_is_in_no_log_line(acme, woken, caplog):
    caplog.set_level(logging.DEBUG)
    client = Client()
    post(client, acme, b"not json")  # logged: body refused
    client.post(f"/hooks/senselink/{'y' * 43}/", data=body(), content_type="application/json")
    post(client, acme, body())
    assert acme.push_token not in caplog.text
    assert "y" * 43 not in caplog.text


def test_the_access_log_path_hides_the_token(acme):
    line = f'"POST {acme.senselink_push_path} HTTP/1.1" 200'
    assert acme.push_token not in redact_path(line)
    assert "/hooks/senselink/***/" in redact_path(line)


def test_regenerating_the_token_retires_the_old_path(acme, woken):
    post(Client(), acme, body())
    assert PushReceiver.objects.filter(setting=acme).exists()
    old_path = acme.senselink_push_path
    new_path = push.regenerate_token(setting=acme)
    assert new_path != old_path
    assert not PushReceiver.objects.filter(setting=acme).exists()  # a new subscription
    client = Client()
    assert client.post(old_path, data=body(), content_type="application/json").status_code == 404
    assert client.post(new_path, data=body(), content_type="application/json").status_code == 200


def test_a_failure_while_storing_answers_200_and_logs_no_token(acme, woken, monkeypatch, caplog):
    """A 500 would stop SenseLink's every later push: the next interval poll is the net."""
    from django.db import OperationalError

    def locked(**kwargs):
        raise OperationalError(f"database is locked ({kwargs['token']})")

    monkeypatch.setattr(push, "receive_push", locked)
    response = post(Client(raise_request_exception=False), acme, body())
    assert response.status_code == 200
    assert "push receiver failed (OperationalError" in caplog.text
    assert acme.push_token not in caplog.text
