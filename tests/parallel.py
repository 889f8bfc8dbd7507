"""How the suite is spread over pytest-xdist workers (`make test`, `make check`: ``-n N``).

Most tests go out one by one to whichever worker is free. Each module of ``SERIAL_MODULES``
runs whole in one worker, one test after another: a module whose report section needs every
cell of its matrix in one session (tests/fault_matrix_report.py), the production proof (a
deployment of its own), the browser tests (one Chromium at a time). These go out first, longest
first, then the other tests marked slow, so the long ones run beside the many short ones
instead of after them.

pytest-xdist's own ``--dist loadgroup`` with ``xdist_group`` marks does not group here: xdist
3.8 tags node ids through an attribute pytest 9 no longer reads.
"""

from __future__ import annotations

SERIAL_MODULES = (  # longest first
    "tests/test_production.py",
    "tests/test_fault_matrix.py",
    "tests/test_browser.py",
    "tests/test_kot_readings.py",
    "tests/test_realtime_clock_in.py",
    "tests/test_senselink_readings.py",
    "tests/test_push_matrix.py",
    "tests/test_two_writer_matrix.py",
    "tests/test_browser_accounts.py",
    "tests/test_feed_orders.py",
    "tests/test_push_receiver_matrix.py",
)


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def rank(item) -> tuple[int, int]:
    """Where a test goes in the collection (and so in the workers' queue); sort is stable."""
    module = module_of(item.nodeid)
    if module in SERIAL_MODULES:
        return (0, SERIAL_MODULES.index(module))
    return (1, 0) if item.get_closest_marker("slow") else (2, 0)


def make_scheduler(config, log):
    """pytest-xdist's scope scheduler with a scope per serial module and per other test."""
    from xdist.scheduler import LoadScopeScheduling

    class SerialModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = module_of(nodeid)
            return module if module in SERIAL_MODULES else nodeid

    config.option.loadscopereorder = False  # hand work out in collection order (``rank``)
    return SerialModules(config, log)
