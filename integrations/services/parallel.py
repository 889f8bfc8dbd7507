"""Bounded parallel API writes, with the bookkeeping kept in the calling thread."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

from connectors.errors import AuthenticationError, ConnectorError

T = TypeVar("T")


def each_in_parallel(
    fn: Callable[[T], object], items: Iterable[T], *, beat: Callable[[], None]
) -> Iterator[tuple[T, ConnectorError | None]]:
    """Call ``fn`` on every item with SYNC_CONCURRENCY threads; yield (item, error or None) in
    order. An AuthenticationError (bad token or secret: every other call would fail the same
    way) cancels what has not started and is raised."""
    with ThreadPoolExecutor(max_workers=max(1, settings.SYNC_CONCURRENCY)) as pool:
        futures = [(item, pool.submit(fn, item)) for item in items]
        try:
            for item, future in futures:
                beat()
                try:
                    future.result()
                except AuthenticationError:
                    raise
                except ConnectorError as exc:
                    yield item, exc
                else:
                    yield item, None
        finally:
            for _item, pending in futures:
                pending.cancel()
