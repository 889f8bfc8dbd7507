"""The sandbox: fake KING OF TIME and SenseLink servers on loopback, for tests, demos and benchmarks.

    sandbox = start_sandbox(employees=50, seed=1)
    requests.get(f"{sandbox.kot_url}/employees", headers={"Authorization": f"Bearer {sandbox.kot_token}"})
    sandbox.stop()

Both servers speak the HTTP contracts of shared/api/kot.md and shared/api/senselink.md; their
in-memory stores (``sandbox.kot``, ``sandbox.senselink``), KOT's clock, latency and faults can be
changed while they run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from . import data
from .faults import Faults
from .kot import KOT_READINGS, KotApp, KotState, SandboxClock
from .senselink import READINGS, SenseLinkApp, SenseLinkState
from .server import Runtime, Served
from .subscription import SHAPES

__all__ = [
    "KOT_READINGS",
    "KOT_TOKEN",
    "SENSELINK_APP_KEY",
    "SENSELINK_APP_SECRET",
    "Faults",
    "KotState",
    "READINGS",
    "Sandbox",
    "SandboxClock",
    "SenseLinkState",
    "start_sandbox",
]

KOT_TOKEN = "sandbox-kot-token-0123456789abcdef"
SENSELINK_APP_KEY = "sandbox-app-key-5f3c9a"
SENSELINK_APP_SECRET = "sandbox-app-secret-8d2e4b71c6"


class Sandbox:
    """Both fake servers of one sandbox and the handles to inspect and steer them."""

    def __init__(
        self,
        *,
        employees: int,
        seed: int,
        day: date | None,
        host: str,
        kot_port: int,
        senselink_port: int,
        latency: float,
        recognitions_per_employee: int | None,
        now: Callable[[], datetime] | None,
        senselink: SenseLinkModes = None,
        kot: KotModes = None,
        overlong: int | None = None,
        push_shape: str = "manual",
    ) -> None:
        if push_shape not in SHAPES:
            raise ValueError(f"push_shape {push_shape!r}: expected one of {SHAPES}")
        self.seed = seed
        self.kot_token = KOT_TOKEN
        self.app_key = SENSELINK_APP_KEY
        self.app_secret = SENSELINK_APP_SECRET
        self.clock = SandboxClock(now)
        self.day = day or self.clock.today()
        self.faults = Faults()
        self._runtime = Runtime(self.faults, latency)
        self.kot = KotState(data.generate_employees(employees, seed, self.day), self.kot_token)
        apply_kot_modes(self.kot, kot)
        self.senselink = SenseLinkState(
            app_key=self.app_key,
            app_secret=self.app_secret,
            seed=seed,
            employees=self._current_employees,
            recognitions_per_employee=recognitions_per_employee,
        )
        apply_senselink_modes(self.senselink, senselink)
        self.senselink.subscription.shape = push_shape
        if overlong:
            self.make_overlong(overlong)
        self._kot_server = Served(KotApp(self.kot, self.clock), self._runtime, host, kot_port)
        try:
            self._senselink_server = Served(
                SenseLinkApp(self.senselink), self._runtime, host, senselink_port
            )
        except OSError:
            self._kot_server.stop()
            raise
        self.kot_url = f"http://{host}:{self._kot_server.port}/v1.0"
        self.senselink_url = f"http://{host}:{self._senselink_server.port}/"
        self._stopped = False

    def make_overlong(self, length: int, *, employees: int = 2) -> list[str]:
        """Overlong strings: the first ``employees`` KOT employees get codes of ``length``
        characters (their recognitions carry them as job numbers), and every day gains one
        recognition of a ``length``-character job number KOT does not know. Days already
        generated are generated again. Returns the new KOT codes."""
        if length < 1:
            raise ValueError("length must be at least 1")
        codes = []
        with self.kot.lock:
            for index, employee in enumerate(self.kot.employees[:employees]):
                employee["code"] = data.overlong(f"L{index}{employee['code']}", length)
                codes.append(employee["code"])
            self.kot._reindex()
        with self.senselink.lock:
            self.senselink.extra_job_numbers = (data.overlong("Z", length),)
            self.senselink._days.clear()
        return codes

    def _current_employees(self) -> list[dict]:
        with self.kot.lock:
            return list(self.kot.employees)

    @property
    def latency(self) -> float:
        """Seconds added to every request of both servers."""
        return self._runtime.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._runtime.latency = seconds

    @property
    def kot_port(self) -> int:
        return self._kot_server.port

    @property
    def senselink_port(self) -> int:
        return self._senselink_server.port

    def request_counts(self) -> Counter[str]:
        """Requests received per "METHOD /route-template", e.g. "GET /api/v5/record/list"."""
        return self._runtime.counts()

    def reset_counts(self) -> None:
        self._runtime.reset_counts()

    def stop(self) -> None:
        """Stop both servers; held (timeout) requests are cut short. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._runtime.stopping.set()
        self.senselink.subscription.stop()
        self._kot_server.stop()
        self._senselink_server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Sandbox kot={self.kot_url} senselink={self.senselink_url} seed={self.seed}>"


SenseLinkModes = str | Iterable[str] | dict[str, Any] | None
KotModes = str | Iterable[str] | dict[str, Any] | None


def apply_kot_modes(state: KotState, modes: KotModes) -> None:
    """Reading names (KOT_READINGS) or a dict of switches (KotState.configure)."""
    if not modes:
        return
    if isinstance(modes, dict):
        state.configure(**modes)
        return
    for name in [modes] if isinstance(modes, str) else modes:
        state.apply_reading(name)


def apply_senselink_modes(state: SenseLinkState, modes: SenseLinkModes) -> None:
    """Reading names (READINGS) or a dict of switches (SenseLinkState.configure)."""
    if not modes:
        return
    if isinstance(modes, dict):
        state.configure(**modes)
        return
    for name in [modes] if isinstance(modes, str) else modes:
        state.apply_reading(name)


def start_sandbox(
    *,
    employees: int = 50,
    seed: int = 1,
    day: date | None = None,
    host: str = "127.0.0.1",
    kot_port: int = 0,
    senselink_port: int = 0,
    latency: float = 0.0,
    recognitions_per_employee: int | None = None,
    now: Callable[[], datetime] | None = None,
    senselink: SenseLinkModes = None,
    kot: KotModes = None,
    overlong: int | None = None,
    push_shape: str = "manual",
) -> Sandbox:
    """Start both fake servers (port 0: a free port) and return the running Sandbox.

    `day` is the reference "today" of the generated data (resignations lie before it), by default
    today in JST on the KOT clock; `now` replaces the real time of that clock. `senselink`
    names the SenseLink readings to take (READINGS), or gives switches as a dict; `kot` the same
    for KOT (KOT_READINGS, or KotState.configure's switches, e.g. {"throttle_rate": 20});
    `overlong` (a length) turns on the overlong-strings mode (Sandbox.make_overlong);
    `push_shape` ("manual" or "sender") is the JSON shape of the event subscription's pushes
    (``connectors.sandbox.subscription``; change it later with ``senselink.subscription.shape``).
    """
    return Sandbox(
        employees=employees,
        seed=seed,
        day=day,
        host=host,
        kot_port=kot_port,
        senselink_port=senselink_port,
        latency=latency,
        recognitions_per_employee=recognitions_per_employee,
        now=now,
        senselink=senselink,
        kot=kot,
        overlong=overlong,
        push_shape=push_shape,
    )
