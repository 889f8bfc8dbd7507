"""Small measuring tools: a query counter, an RSS sampler, medians."""

from __future__ import annotations

import resource
import statistics
import threading

import psutil


class QueryCounter:
    """A ``connection.execute_wrapper`` that counts (and keeps the start of) every statement."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(" ".join(str(sql).split())[:160])
        return execute(sql, params, many, context)

    @property
    def count(self) -> int:
        return len(self.statements)

    def heartbeats(self) -> int:
        """UPDATEs that only refresh a running run's lease (Lease in services/runs.py): their SET
        clause names heartbeat_at alone (the WHERE clause holds the lease token, attempt)."""
        return sum(
            1
            for s in self.statements
            if s.startswith("UPDATE")
            and '"heartbeat_at"' in s.split(" WHERE ")[0]
            and all(
                f'"{name}"' not in s.split(" WHERE ")[0]
                for name in ("finished_at", "attempt", "not_before", "status")
            )
        )


class RssSampler:
    """Peak resident set size of this process while running, sampled every few milliseconds."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.process = psutil.Process()
        self.peak = 0
        self.baseline = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.every)

    def start(self) -> RssSampler:
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak


def process_peak_rss() -> int:
    """This process's lifetime peak RSS in bytes (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
