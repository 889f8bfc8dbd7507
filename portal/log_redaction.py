"""No log record carries a SenseLink push token: ``/hooks/senselink/<token>`` becomes
``/hooks/senselink/***`` in every record the process creates.

The push receiving path is the secret (SenseLink cannot authenticate to us), and many loggers
write request paths: Django's ``django.request`` ("Not Found: …", "Method Not Allowed (GET): …"),
the dev server's ``django.server`` request line, gunicorn's access log, a traceback that quotes
a path. Rather than a filter on each handler (a handler added later — pytest's, an error
tracker's — would see the raw record), the record factory itself redacts: the message, the
formatted exception and the stack text are cut before any handler sees the record.
``configure_logging`` is Django's ``LOGGING_CONFIG``: settings install it with the rest of the
logging. Plain Python (no Django import): gunicorn's logger class uses ``redact`` too.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

# Case-insensitive and tolerant of repeated slashes, with or without the leading one: whatever
# spelling of the path a log line quotes, the segment after "senselink/" is cut.
_PUSH_PATH = re.compile(r"(hooks/+senselink/+)[^/?#\s\"'<>]+", flags=re.IGNORECASE)
REDACTED = r"\1***"


def redact(text: str) -> str:
    """``/hooks/senselink/<token>/`` becomes ``/hooks/senselink/***/``."""
    if "senselink" not in text.lower():  # the common case: no regex
        return text
    return _PUSH_PATH.sub(REDACTED, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, exception and stack text redacted (in place)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format: logging reports it with msg and args, redacted here
        message = f"{record.msg!r} % {record.args!r}"
    cut = redact(message)
    if cut != message:
        record.msg, record.args = cut, ()
    if record.exc_info and not record.exc_text:
        # Formatters write exc_text when it is set: a traceback quoting a path is kept only as
        # redacted text (the exception object, which still holds the path, is dropped); any
        # other is left to the handler's formatter.
        text = logging.Formatter().formatException(record.exc_info)
        if redact(text) != text:
            record.exc_text, record.exc_info = redact(text), None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Make every log record of the process pass through ``redact_record`` (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_push_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    factory.redacts_push_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(config: dict[str, Any]) -> None:
    """Django's ``LOGGING_CONFIG``: ``dictConfig(LOGGING)``, then the redacting record factory."""
    logging.config.dictConfig(config)
    install()
