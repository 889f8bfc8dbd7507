"""Measuring what a hostile upstream costs: wall time and peak memory (RSS) growth.

The peak is the kernel's VmHWM of this process, reset before the measurement by writing "5" to
/proc/self/clear_refs (Linux); where that is not possible the growth of ``ru_maxrss`` is used
(a lower bound: it only shows growth beyond the process's earlier peak).
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Cost:
    seconds: float = 0.0
    rss_growth_mib: float = 0.0
    method: str = ""


@contextlib.contextmanager
def measure() -> Iterator[Cost]:
    """Time the block and the growth of the process's peak RSS over its RSS at the start."""
    cost = Cost()
    exact = _reset_peak()
    start_rss = _status_kib("VmRSS")
    start_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        yield cost
    finally:
        cost.seconds = time.monotonic() - started
        peak = _status_kib("VmHWM")
        if exact and peak is not None and start_rss is not None:
            cost.rss_growth_mib = max(0, peak - start_rss) / 1024
            cost.method = "VmHWM"
        else:
            end_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            cost.rss_growth_mib = max(0, end_max - start_max) / 1024
            cost.method = "ru_maxrss"
