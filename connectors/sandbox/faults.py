"""Fault switches shared by the fake KOT and SenseLink servers.

A test arms a fault with ``faults.add("kot", "throttle", path="timerecord")``; the next matching
request gets the fault instead of (or, for ``wrong_type`` and the ``*_after_store`` kinds, on top of)
its normal answer. What each kind does is described in ``KINDS``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

KINDS = {
    "http500_html": "HTTP 500 with an HTML gateway page; the request is not processed",
    "maintenance": "KOT: 500 with error 300; SenseLink: HTTP 500 JSON; not processed",
    "throttle": "429 + Retry-After: 1 (KOT: the top-level 303 body); not processed",
    "malformed_json": "200 with a truncated JSON body; not processed",
    "wrong_type": "the request is processed, then its answer is reshaped into the wrong types",
    "empty": "200 with an empty list (SenseLink: envelope with data []); not processed",
    "reset": "the connection is closed (RST) without an answer; not processed",
    "timeout": "the answer is held for `delay` seconds, then a 504 page; not processed",
    "timeout_after_store": "processed fully, then the answer is held for `delay` seconds",
    "gateway_after_store": "processed fully, then a gateway's 502 HTML page instead of the answer",
    "reset_after_store": "processed fully, then the connection is closed without an answer",
    "signature": "SenseLink: the bad-signature envelope; KOT: 403/100; not processed",
    # Hostile upstreams (issue 13): what a broken or malicious server can answer.
    "deep_nesting": "200 with JSON nested 200,000 deep ([[[[…]]]]); not processed",
    "gzip_bomb": "200, Content-Encoding gzip: 0.5 MB that inflates to 512 MB; not processed",
    "oversized_body": "200 with 64 MB of JSON-looking bytes, no Content-Length; not processed",
    "slow_body": "processed, then the answer's body dripped one byte per `delay` seconds",
    "slow_headers": "processed, then the status line and headers dripped one byte per `delay` s",
    "page_ignored_shuffled": "lists: every page is the first one, shuffled (`page` ignored)",
}
# Kinds the server answers in its shared plumbing (server.py), for both services.
HOSTILE_KINDS = frozenset(
    {"deep_nesting", "gzip_bomb", "oversized_body", "slow_body", "slow_headers"}
)
SERVICES = ("kot", "senselink")


@dataclass
class Fault:
    service: str
    kind: str
    path: str | None = None
    method: str | None = None
    times: int | None = 1
    after: int = 0
    delay: float = 5.0
    seen: int = 0
    fired: int = 0

    def matches(self, service: str, method: str, path: str) -> bool:
        if service != self.service:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.path is None or self.path in path:
            return True
        try:
            return re.search(self.path, path) is not None
        except re.error:
            return False

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class Faults:
    """The armed faults of one sandbox; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        service: str,
        kind: str,
        *,
        path: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        after: int = 0,
        delay: float = 5.0,
    ) -> Fault:
        """Arm a fault for `times` matching requests (None: until cleared), skipping the first `after`.

        `path` is a substring or regular expression of the request path (without the query).
        """
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        fault = Fault(service, kind, path, method, times, after, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(self, service: str, method: str, path: str) -> Fault | None:
        """Return the fault that applies to this request, counting it, or None."""
        with self._lock:
            if not self._faults:
                return None
            chosen = None
            for fault in self._faults:
                if fault.exhausted or not fault.matches(service, method, path):
                    continue
                fault.seen += 1
                if chosen is None and fault.seen > fault.after:
                    fault.fired += 1
                    chosen = fault
            self._faults = [f for f in self._faults if not f.exhausted]
            return chosen
