"""Loaded by every Python process that scripts/at_jst.py starts (it puts this directory on
PYTHONPATH), and by no other.

libfaketime 0.9.10 (Debian's) with the monotonic clock left real (FAKETIME_DONT_FAKE_MONOTONIC=1)
shifts the absolute deadline Python 3.11's ``time.sleep`` passes to
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` by its offset, and the kernel answers EINVAL
(libfaketime issue #426). With the monotonic clock faked instead, every timed wait on a lock
(``Event.wait``, ``Queue.get``, ``Thread.join``) waits for ever. So the monotonic clock stays
real, and ``time.sleep`` waits on an Event, which uses the real monotonic clock.
"""

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep
