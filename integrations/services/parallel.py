"""Bounded parallel API writes, with the bookkeeping kept in the calling thread."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

from connectors.errors import AuthenticationError, ConnectorError

T = TypeVar("T")


def each_in_parallel(
    fn: Callable[[T], object],
    items: Iterable[T],
    *,
    beat: Callable[[], None],
    workers: int | None = None,
    raise_auth: bool = True,
) -> Iterator[tuple[T, ConnectorError | None]]:
    """Call ``fn`` on every item with at most ``workers`` (default SYNC_CONCURRENCY) calls in
    flight; yield (item, error or None) in order. KOT writes pass the KOT client's limiter's
    ceiling: the limiter itself decides how many of them are sent at once, and how fast.

    Items are handed out lazily, and ``beat`` is called in the calling thread before each one is
    handed out: a run's heartbeat and fence (a worker that lost its run raises there, and no
    further write leaves). An AuthenticationError (bad token or secret: every other call would
    fail the same way) cancels what has not started and is raised — or, with ``raise_auth``
    False, is yielded like any other error (the caller stops handing items out itself).
    """
    workers = max(1, workers or settings.SYNC_CONCURRENCY)
    remaining = iter(items)
    in_flight: deque[tuple[T, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def hand_out() -> None:
            while len(in_flight) < workers:
                item = next(remaining, _END)
                if item is _END:
                    return
                beat()
                in_flight.append((item, pool.submit(fn, item)))

        try:
            hand_out()
            while in_flight:
                item, future = in_flight.popleft()
                try:
                    future.result()
                except AuthenticationError as exc:
                    if raise_auth:
                        raise
                    yield item, exc
                except ConnectorError as exc:
                    yield item, exc
                else:
                    yield item, None
                hand_out()
        finally:
            for _item, pending in in_flight:
                pending.cancel()


_END = object()
