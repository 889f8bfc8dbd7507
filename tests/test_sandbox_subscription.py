"""The sandbox's SenseLink event subscription: each new recognition is POSTed as the manual's JSON
from a background thread; a non-200 answer or none within the timeout is retried, then the
subscription turns 異常 and every later push stops until updateSub restores it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
import requests

from connectors.sandbox import start_sandbox
from connectors.sandbox.subscription import FAILED, NORMAL
from tests.conftest import JST

WHEN = datetime(2026, 11, 25, 8, 45, tzinfo=JST)


class Receiver:
    """A loopback HTTP receiver whose answer tests choose: a status, or no answer at all."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.release = threading.Event()
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                if receiver.hang:
                    receiver.release.wait(10)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/senselink/t/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sandbox():
    sandbox = start_sandbox(employees=5, seed=3)
    subscription = sandbox.senselink.subscription
    subscription.timeout, subscription.retry_delay, subscription.retries = 0.3, 0.01, 2
    yield sandbox
    sandbox.stop()


def update_sub(sandbox, url: str) -> dict:
    timestamp = str(int(time.time() * 1000))
    sign = hashlib.md5(f"{timestamp}#{sandbox.app_secret}".encode()).hexdigest()  # noqa: S324
    response = requests.post(
        f"{sandbox.senselink_url}api/v3/event/updateSub",
        params={"app_key": sandbox.app_key, "timestamp": timestamp, "sign": sign},
        json={"url": url},
        timeout=5,
    )
    return response.json()


def employee(sandbox) -> str:
    return sandbox.kot.employees[0]["code"]


def test_each_new_recognition_is_pushed_as_the_manuals_json(sandbox, receiver):
    assert update_sub(sandbox, receiver.url)["data"] == {"url": receiver.url, "status": NORMAL}
    first = sandbox.senselink.add_record(when=WHEN, job_number=employee(sandbox))
    second = sandbox.senselink.add_record(when=WHEN.replace(minute=46), user_type=3)  # stranger
    assert sandbox.senselink.subscription.wait_idle()
    assert [body["data"]["id"] for body in receiver.bodies] == [first["id"], second["id"]]
    body = receiver.bodies[0]
    assert body["eventType"] == "30000"
    assert body["data"]["jobNumber"] == employee(sandbox)  # the record in camelCase
    assert body["data"]["signTime"] == first["sign_time"]
    assert body["data"]["deviceSN"] == first["device_ldid"]
    assert len({b["messageId"] for b in receiver.bodies}) == 2
    datetime.strptime(body["sendTime"], "%Y-%m-%d %H:%M:%S")  # the device's local time


def test_the_sender_shape_pushes_numbers_and_a_uuid(sandbox, receiver):
    """SenseTime's own push test sender: eventType and sendTime (epoch ms) as numbers."""
    sandbox.senselink.subscription.shape = "sender"
    update_sub(sandbox, receiver.url)
    before = time.time()
    record = sandbox.senselink.add_record(when=WHEN, job_number=employee(sandbox))
    assert sandbox.senselink.subscription.wait_idle()
    [body] = receiver.bodies
    assert body["eventType"] == 30000
    assert str(uuid.UUID(body["messageId"])) == body["messageId"]
    assert isinstance(body["sendTime"], int) and body["sendTime"] >= int(before * 1000) - 1000
    assert body["data"]["jobNumber"] == employee(sandbox)
    assert body["data"]["signTime"] == record["sign_time"] == int(WHEN.timestamp())


def test_the_push_shape_is_a_start_option_and_a_command_option(monkeypatch):
    from django.core.management import call_command

    from integrations.management.commands import sandbox as command

    with start_sandbox(employees=1, push_shape="sender") as sb:
        assert sb.senselink.subscription.shape == "sender"
    with pytest.raises(ValueError):
        start_sandbox(employees=1, push_shape="other")
    seen = {}
    real_print = command.Command._print

    def keep(self, sb):
        seen["shape"] = sb.senselink.subscription.shape
        real_print(self, sb)

    monkeypatch.setattr(command.Command, "_print", keep)
    monkeypatch.setattr(command.Command, "_wait", lambda self: None)
    out = StringIO()
    call_command(
        "sandbox", "--kot-port", "0", "--senselink-port", "0", "--push-shape", "sender", stdout=out
    )
    assert seen["shape"] == "sender"
    assert "push shape : sender" in out.getvalue()


def test_nothing_is_pushed_without_a_registered_receiver(sandbox):
    sandbox.senselink.add_record(when=WHEN, job_number=employee(sandbox))
    subscription = sandbox.senselink.subscription
    assert subscription.wait_idle() and subscription.attempts == []


def test_update_sub_refuses_a_bad_url(sandbox):
    assert update_sub(sandbox, "ftp://x/")["code"] == 30001


@pytest.mark.parametrize("failure", ["status-500", "no-answer"])
def test_a_failed_push_is_retried_then_the_subscription_turns_abnormal_and_pushes_stop(
    sandbox, receiver, failure
):
    subscription = sandbox.senselink.subscription
    update_sub(sandbox, receiver.url)
    if failure == "status-500":
        receiver.status = 500
    else:
        receiver.hang = True
    sandbox.senselink.add_record(when=WHEN, job_number=employee(sandbox))
    assert subscription.wait_idle()
    assert [a.attempt for a in subscription.attempts] == [0, 1, 2]  # first try + 2 retries
    assert {a.status for a in subscription.attempts} == (
        {500} if failure == "status-500" else {None}
    )
    assert subscription.status == FAILED
    # Every later push stops, even once the receiver is healthy again.
    receiver.status, receiver.hang = 200, False
    receiver.release.set()
    later = sandbox.senselink.add_record(when=WHEN.replace(minute=50), job_number="x")
    assert subscription.wait_idle()
    assert len(subscription.attempts) == 3 and subscription.delivered == []
    assert [m["data"]["id"] for m in subscription.dropped] == [later["id"]]
    # The records stay in the record list (the poll's truth).
    assert later in sandbox.senselink.records_for(WHEN.date())
    # updateSub restores it: the next recognition is pushed again.
    assert update_sub(sandbox, receiver.url)["data"]["status"] == NORMAL
    restored = sandbox.senselink.add_record(when=WHEN.replace(minute=55), job_number="y")
    assert subscription.wait_idle()
    assert [m["data"]["id"] for m in subscription.delivered] == [restored["id"]]


def test_a_push_answered_after_a_retry_keeps_the_subscription_normal(sandbox, receiver):
    subscription = sandbox.senselink.subscription
    update_sub(sandbox, receiver.url)
    answers = iter([503, 200])

    original = receiver.server.RequestHandlerClass.do_POST

    def do_post(handler):
        receiver.status = next(answers, 200)
        original(handler)

    receiver.server.RequestHandlerClass.do_POST = do_post
    sandbox.senselink.add_record(when=WHEN, job_number=employee(sandbox))
    assert subscription.wait_idle()
    assert [a.status for a in subscription.attempts] == [503, 200]
    assert subscription.status == NORMAL and len(subscription.delivered) == 1
