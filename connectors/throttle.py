"""An adaptive limiter for one KING OF TIME token: the rate and the concurrency KOT allows.

KOT publishes no rate limit; it answers 429 or the top-level ``{"code": "303"}`` body when a
caller goes too fast (shared/api/kot.md). So the limiter learns the limit from those answers,
the way TCP learns a path's capacity:

- It starts unpaced, with ``max_concurrency`` calls in flight.
- On a throttled answer it decreases multiplicatively: the rate becomes ``decrease`` times the
  rate calls were sent at over the last second (or the current rate, when paced already), and
  the concurrency window shrinks by the same factor (at least 1). A burst of throttled answers
  to calls sent before the decrease counts once: only a call sent after the last decrease can
  decrease again.
- On every success it increases additively: ``increase / rate`` (so ``increase`` calls per
  second per second of sending) and ``1 / window`` for the window.

One limiter is shared by every client (and so every run and thread) of the same base URL and
token in this process: two runs of one tenant do not each push KOT to its limit. Tokens are never
kept: the registry's key is a hash.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: The slowest the limiter ever goes (calls per second).
MIN_RATE = 0.5
#: Above this learned rate, pacing is negligible next to the round trip.
MAX_RATE = 1000.0
DECREASE = 0.85
INCREASE = 1.0
WINDOW_SECONDS = 1.0


@dataclass
class Ticket:
    """One call's permission to be sent; hand it back with ``release``."""

    sent_at: float


class AdaptiveLimiter:
    """Rate (calls/s, None = unpaced) and concurrency window for one token, learned (AIMD)."""

    def __init__(
        self,
        *,
        max_concurrency: int = 8,
        max_rate: float | None = None,
        increase: float = INCREASE,
        decrease: float = DECREASE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_rate = min(max_rate, MAX_RATE) if max_rate else None
        self.increase = increase
        self.decrease = decrease
        self._monotonic = monotonic
        self._sleep = sleep
        self._cond = threading.Condition()
        self.rate: float | None = self.max_rate  # a configured ceiling paces from the start
        self.window = float(self.max_concurrency)
        self.in_flight = 0
        self.throttled = 0  # throttled answers seen (all of them)
        self.decreases = 0
        self._next_slot = 0.0
        self._decreased_at = float("-inf")
        self._sent: deque[float] = deque()

    def __repr__(self) -> str:
        rate = f"{self.rate:.1f}/s" if self.rate else "unpaced"
        return f"<AdaptiveLimiter {rate} window={self.window:.1f} in_flight={self.in_flight}>"

    def acquire(self) -> Ticket:
        """Wait for a free place in the window and this call's slot in the pacing."""
        with self._cond:
            while self.in_flight >= max(1, int(self.window)):
                self._cond.wait()
            self.in_flight += 1
            now = self._monotonic()
            start = now
            if self.rate:
                start = max(now, self._next_slot)
                self._next_slot = start + 1.0 / self.rate
            self._sent.append(start)
            while self._sent and self._sent[0] < start - WINDOW_SECONDS:
                self._sent.popleft()
        if start > now:
            self._sleep(start - now)
        return Ticket(sent_at=start)

    def release(self, ticket: Ticket, *, throttled: bool = False, success: bool = False) -> None:
        """Hand the place back, learning from the answer: throttled, success, or neither."""
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            if throttled:
                self.throttled += 1
                if ticket.sent_at > self._decreased_at:
                    self._decrease()
            elif success:
                if self.rate:
                    ceiling = self.max_rate or MAX_RATE
                    self.rate = min(ceiling, self.rate + self.increase / self.rate)
                self.window = min(float(self.max_concurrency), self.window + 1.0 / self.window)
            self._cond.notify_all()

    def _decrease(self) -> None:
        now = self._monotonic()
        recent = [t for t in self._sent if t >= now - WINDOW_SECONDS]
        sending = len(recent) / WINDOW_SECONDS
        base = self.rate if self.rate else max(sending, MIN_RATE)
        self.rate = max(MIN_RATE, base * self.decrease)
        self.window = max(1.0, self.window * self.decrease)
        self._next_slot = max(self._next_slot, now + 1.0 / self.rate)
        self._decreased_at = now
        self.decreases += 1


_registry: dict[str, AdaptiveLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(base_url: str, token: str, **kwargs) -> AdaptiveLimiter:
    """The process's limiter for this KOT base URL and token (created with ``kwargs``)."""
    key = hashlib.sha256(f"{base_url.rstrip('/')}\0{token}".encode()).hexdigest()
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = AdaptiveLimiter(**kwargs)
        return limiter


def reset() -> None:
    """Forget every learned limit (tests; a process starts afresh anyway)."""
    with _registry_lock:
        _registry.clear()
