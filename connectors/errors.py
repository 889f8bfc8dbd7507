"""The one error family every connector raises.

Callers catch ``ConnectorError`` and read ``code`` (machine), ``message`` (Japanese, for the sync
log and a support person), ``permanent`` (retrying won't help) and ``retry_at`` (when to try
again). Messages and details never contain a token, secret or signature.
"""

from __future__ import annotations

from datetime import datetime

from connectors.text import clean


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    #: Whether a write may have been stored by the remote side although we got no clear answer
    #: (read timeout, connection dropped after sending, unreadable success body).
    may_have_landed: bool = False

    def __init__(
        self,
        message: str,
        *,
        service: str,
        code: str,
        permanent: bool = False,
        retry_at: datetime | None = None,
        detail: str = "",
    ) -> None:
        # The message and detail end up in the sync log, a database row and log lines: never a
        # control character (connectors/text.py), whatever the remote side sent.
        message, detail = clean(message), clean(detail)
        super().__init__(message)
        self.message = message
        self.service = service
        self.code = code
        self.permanent = permanent
        self.retry_at = retry_at
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(service={self.service!r}, code={self.code!r}, "
            f"permanent={self.permanent!r}, message={self.message!r}, detail={self.detail!r})"
        )

    def __reduce__(self):
        # Keyword-only arguments break Exception's default pickling; django-q2 pickles failures.
        return (self.__class__.__new__, (self.__class__,), self.__dict__.copy())


class ConfigurationError(ConnectorError):
    """Bad URL, token, keys or IP registration: retrying won't help until someone fixes it."""

    def __init__(self, message: str, *, service: str, code: str, permanent: bool = True, **kwargs):
        super().__init__(message, service=service, code=code, permanent=permanent, **kwargs)


class AuthenticationError(ConfigurationError):
    """The remote refused our credentials (or our source IP)."""


class ForbiddenWindowError(ConnectorError):
    """KOT refuses most calls 08:30–10:00 and 17:30–18:30 JST; ``retry_at`` is the window end."""

    def __init__(
        self,
        message: str,
        *,
        service: str = "kot",
        code: str = "kot_forbidden_window",
        retry_at: datetime | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("permanent", False)
        super().__init__(message, service=service, code=code, retry_at=retry_at, **kwargs)


class ThrottledError(ConnectorError):
    """HTTP 429 or KOT's "303" body; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        code: str = "throttled",
        retry_after: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(message, service=service, code=code, **kwargs)
        self.retry_after = retry_after


class ServerError(ConnectorError):
    """5xx, KOT maintenance (500/300) or an HTML gateway page."""

    def __init__(self, message: str, *, service: str, code: str = "server_error", **kwargs):
        super().__init__(message, service=service, code=code, **kwargs)


class NetworkError(ConnectorError):
    """Connection refused or reset, DNS failure, TLS failure."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        code: str = "network",
        may_have_landed: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(message, service=service, code=code, **kwargs)
        self.may_have_landed = may_have_landed


class RequestTimeout(NetworkError):
    """Connect or read timeout; ``may_have_landed`` is True for read timeouts of writes."""

    def __init__(self, message: str, *, service: str, code: str = "timeout", **kwargs):
        super().__init__(message, service=service, code=code, **kwargs)


class ResponseFormatError(ConnectorError):
    """Non-JSON or HTML body, missing fields, wrong types, empty body where data was expected."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        code: str = "bad_response",
        may_have_landed: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(message, service=service, code=code, **kwargs)
        self.may_have_landed = may_have_landed


class ApiError(ConnectorError):
    """The remote answered with an error we don't classify further; keeps its code and text."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        code: str,
        remote_code: int | str | None = None,
        remote_message: str = "",
        **kwargs,
    ) -> None:
        super().__init__(message, service=service, code=code, **kwargs)
        self.remote_code = clean(remote_code) if isinstance(remote_code, str) else remote_code
        self.remote_message = clean(remote_message)
