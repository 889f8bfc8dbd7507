"""Pytest fixtures for the sandbox: ``sandbox`` (defaults) and ``make_sandbox`` (custom arguments).

Register with ``pytest_plugins = ["connectors.sandbox.pytest_plugin"]``. Each test gets its own
servers on free loopback ports, stopped when the test ends.

KOT's clock follows the real time (so time-machine moves it); a test that must not meet a
forbidden window by the accident of when it runs pins it: ``sandbox.clock.set(aware_datetime)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import Sandbox, start_sandbox


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A running sandbox with the default data (50 employees, seed 1).

    Parametrize it indirectly with SenseLink reading names (or switches) to run a test under
    another reading of the contract: ``@pytest.mark.parametrize("sandbox", ["update-replaces"],
    indirect=True)``. KOT readings (KOT_READINGS names or KotState.configure switches) come
    in a dict, with SenseLink's if wanted: ``{"kot": "minutes-only", "senselink": [...]}``; the
    dict may also name the push shape: ``{"push_shape": "sender"}`` (default "manual").
    """
    param = getattr(request, "param", None)
    if isinstance(param, dict) and set(param) <= {"kot", "senselink", "push_shape"}:
        running = start_sandbox(
            kot=param.get("kot"),
            senselink=param.get("senselink"),
            push_shape=param.get("push_shape", "manual"),
        )
    else:
        running = start_sandbox(senselink=param)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """A factory taking start_sandbox's arguments; every sandbox it made is stopped afterwards."""
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        running = start_sandbox(**kwargs)
        started.append(running)
        return running

    try:
        yield make
    finally:
        for running in started:
            running.stop()
