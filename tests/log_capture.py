"""Every log record of a block, whichever logger wrote it, and the texts a record can put in a
log: for tests that a secret reaches no log at all.

pytest's ``caplog`` sees what reaches the root logger; ``every_record`` also listens on the
loggers that do not propagate (``django.server``, gunicorn's) and lowers the levels of the
portal's, Django's and gunicorn's loggers to DEBUG for the block.
``django.db.backends`` stays at its configured WARNING (the settings keep SQL out of the logs).
``start_dev_server`` runs the dev server with the request log of ``manage.py runserver``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.servers.basehttp import WSGIRequestHandler
from django.db import connections
from django.test.testcases import LiveServerThread

LOUD = ("", "django", "django.request", "django.server", "portal", "integrations", "gunicorn")


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def every_record() -> Iterator[list[logging.LogRecord]]:
    keep = _Keep()
    levels = {name: logging.getLogger(name).level for name in LOUD}
    for name in LOUD:
        logging.getLogger(name).setLevel(logging.DEBUG)
    listened = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in listened:
        logger.addHandler(keep)
    try:
        yield keep.records
    finally:
        for logger in listened:
            logger.removeHandler(keep)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def record_texts(record: logging.LogRecord) -> str:
    """All a handler could write of the record: the message, the formatted line with its
    traceback and stack, and every attribute."""
    formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return "\n".join([record.getMessage(), formatted, repr(vars(record))])


def leaks(records: list[logging.LogRecord], secret: str) -> list[str]:
    """The records (as "logger: message") that carry ``secret`` anywhere."""
    return [f"{r.name}: {r.getMessage()[:200]}" for r in records if secret in record_texts(r)]


class DevServerThread(LiveServerThread):
    """The dev server as ``manage.py runserver`` runs it: Django's own request handler, whose
    request line goes to the ``django.server`` logger (the test live server's is silent)."""

    def _create_server(self, connections_override=None):
        return self.server_class(
            (self.host, self.port),
            WSGIRequestHandler,
            allow_reuse_address=False,
            connections_override=connections_override,
        )


def start_dev_server() -> DevServerThread:
    """A running dev server on a free loopback port (``.terminate()`` it); the test must be
    transactional (the server thread has its own connection, except on in-memory SQLite)."""
    override = {
        c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()
    }
    server = DevServerThread("127.0.0.1", lambda app: app, override)
    server.daemon = True
    server.start()
    server.is_ready.wait(10)
    if server.error is not None:
        raise server.error
    return server
