"""SenseLink's event subscription (manual 2.11 "イベントサブスクリプション API"), as the sandbox
plays it: each new recognition record is POSTed as JSON to the registered URL from a background
thread, in one of two shapes (``Subscription.shape``, ``manage.py sandbox --push-shape``):

- ``manual``: the manual's strings, ``{"eventType": "30000", "messageId": <hex>, "sendTime":
  "2026-11-25 08:45:03" (device time), "data": <the record, camelCase>}``;
- ``sender``: what SenseTime's own push test sender sends, ``{"eventType": 30000, "messageId":
  <UUID>, "sendTime": <epoch milliseconds>, "data": <the record, camelCase>}``.

The record is the v5 record list's, in camelCase (``jobNumber``, ``signTime`` in epoch seconds,
``deviceSN``, …).

An answer other than 200, or none within ``timeout`` (5 s, as the manual says), is a failure;
the push is retried ``retries`` times ``retry_delay`` apart, and if it still fails the
subscription turns 異常 and **every later push stops** (those waiting are dropped) until the
subscription is restored (``register`` again, i.e. ``POST /api/v3/event/updateSub``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from connectors.clock import JST

log = logging.getLogger(__name__)

NORMAL = "正常"
FAILED = "異常"
RECOGNITION = "30000"
SEND_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SHAPES = ("manual", "sender")


def camel_case(record: dict[str, Any]) -> dict[str, Any]:
    """A v5 record (snake_case) as a push carries it: camelCase keys, plus ``deviceSN``."""
    data = {}
    for key, value in record.items():
        head, *tail = key.split("_")
        data[head + "".join(part.title() for part in tail)] = value
    if "deviceLdid" in data:
        data["deviceSN"] = data["deviceLdid"]
    return data


@dataclass
class Attempt:
    """One POST of a push: which message, which try (0 = first), and what came back."""

    message_id: str
    attempt: int
    status: int | None  # HTTP status, None when no answer in time or no connection
    seconds: float


class Subscription:
    """The registered receiver of one SenseLink and the thread that pushes to it."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.url: str | None = None
        self.status = NORMAL
        self.timeout = 5.0
        self.shape = "manual"  # or "sender" (SHAPES)
        self.retries = 3
        self.retry_delay = 1.0
        self.attempts: list[Attempt] = []
        self.delivered: list[dict[str, Any]] = []  # messages answered 200, in order
        self.dropped: list[dict[str, Any]] = []  # never sent: the subscription was 異常
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._busy = 0
        self._idle = threading.Condition(self.lock)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # No proxy from the environment: the receiver is wherever the test or demo says.
        self._session = requests.Session()
        self._session.trust_env = False

    # --- configuration (updateSub) ---------------------------------------------------------------
    def register(self, url: str) -> None:
        """Register (or restore) the receiver: the subscription is 正常 again."""
        with self.lock:
            self.url = url
            self.status = NORMAL
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="senselink-subscription", daemon=True
                )
                self._thread.start()

    def unregister(self) -> None:
        with self.lock:
            self.url = None

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"url": self.url, "status": self.status}

    # --- pushing ---------------------------------------------------------------------------------
    def publish(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Queue a push of a new recognition record; None when nothing is subscribed or the
        subscription is 異常 (the record is then only in the record list)."""
        with self.lock:
            if self.url is None:
                return None
            message = self._message(record)
            if self.status != NORMAL:
                self.dropped.append(message)
                return None
            self._busy += 1
        self._queue.put(message)
        return message

    def _message(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown push shape {self.shape!r}; expected one of {SHAPES}")
        if self.shape == "sender":
            return {
                "eventType": int(RECOGNITION),
                "messageId": str(uuid.uuid4()),
                "sendTime": int(self.clock() * 1000),
                "data": camel_case(record),
            }
        return {
            "eventType": RECOGNITION,
            "messageId": uuid.uuid4().hex,
            "sendTime": datetime.fromtimestamp(self.clock(), JST).strftime(SEND_TIME_FORMAT),
            "data": camel_case(record),
        }

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued push was delivered or given up (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)

    def _run(self) -> None:
        while not self._stopping.is_set():
            message = self._queue.get()
            if message is None:
                break
            try:
                self._deliver(message)
            except Exception:  # the thread must survive anything a receiver does
                log.exception("sandbox subscription: push %s failed", message["messageId"])
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _deliver(self, message: dict[str, Any]) -> None:
        with self.lock:
            url, status = self.url, self.status
            timeout, retries, delay = self.timeout, self.retries, self.retry_delay
        if url is None or status != NORMAL:
            with self.lock:
                self.dropped.append(message)
            return
        body = json.dumps(message, ensure_ascii=False).encode()
        for attempt in range(retries + 1):
            if attempt and self._stopping.wait(delay):
                return
            answered = self._post(url, body, timeout)
            with self.lock:
                self.attempts.append(Attempt(message["messageId"], attempt, *answered))
            if answered[0] == 200:
                with self.lock:
                    self.delivered.append(message)
                return
        with self.lock:
            self.status = FAILED
            log.info("sandbox subscription: push failed %d times, subscription 異常", retries + 1)

    def _post(self, url: str, body: bytes, timeout: float) -> tuple[int | None, float]:
        started = time.monotonic()
        try:
            response = self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
            )
            status: int | None = response.status_code
            response.close()
        except (requests.RequestException, ValueError):  # refused, reset, timed out, bad URL
            status = None
        return status, time.monotonic() - started
