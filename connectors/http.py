"""The small HTTP base every connector stands on.

It owns the session, the (connect, read) timeout, bounded retries with jittered backoff, pacing,
call counters, and the translation of every ``requests`` failure into ``connectors.errors``.
Subclasses build URLs and payloads, and classify responses in ``_classify``.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from connectors import transport
from connectors.errors import (
    ConfigurationError,
    ConnectorError,
    NetworkError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.text import clean

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BAD_URL_EXCEPTIONS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)

# Pacing after a 429/303: the interval between calls doubles, starting from THROTTLED_INTERVAL
# when the client had no pacing, and never exceeds MAX_INTERVAL.
THROTTLED_INTERVAL = 1.0
MAX_INTERVAL = 10.0
# A Retry-After beyond this is taken as this (the client gives up and the run retries later).
MAX_RETRY_AFTER = 86400.0


class _RedactUrlFilter(logging.Filter):
    """urllib3 logs full request lines at DEBUG: hide the SenseLink sign and the KOT token."""

    _patterns = (
        (re.compile(r"([?&](?:sign|app_key|timestamp)=)[^&\s\"']*"), r"\1***"),
        (re.compile(r"(/tokens/)[^/\s?\"']+"), r"\1***"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for pattern, replacement in self._patterns:
            redacted = pattern.sub(replacement, redacted)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_urllib3_filter() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactUrlFilter) for f in target.filters):
        target.addFilter(_RedactUrlFilter())


_install_urllib3_filter()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan", "inf" or 1e20 from a server must not overflow the datetime arithmetic.
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


class HttpClient:
    """One session, timeouts, bounded retries and error translation for one remote service."""

    service: str = "http"
    #: Name of the service in Japanese messages.
    display_name: str = "外部サービス"
    #: Error code for credentials that can't even be sent (e.g. a token with a line break).
    auth_code: str = "auth"
    #: APIs don't redirect; following one could lead a request (with its signature) elsewhere.
    allow_redirects: bool = False
    #: Resend a throttled call (429, KOT's 303) whatever its method, within its own budget of
    #: ``throttle_retries`` resends and ``throttle_max_wait`` seconds of waiting: for APIs that
    #: refuse a throttled call before processing it.
    resend_throttled: bool = False
    throttle_retries: int = 10
    throttle_max_wait: float = 120.0

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        rate: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        write_guard: Callable[[], None] | None = None,
        deadline: float = transport.DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = transport.DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        # Every call: an overall deadline, a bounded (decompressed) body, pinned addresses.
        self.deadline = float(deadline)
        self.max_body_bytes = int(max_body_bytes)
        self.adapter = transport.BoundedAdapter(deadline=deadline, max_body_bytes=max_body_bytes)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        self.calls: Counter[str] = Counter()
        self.log = logging.getLogger(f"connectors.{self.service}")
        self._sleep = sleep
        self._monotonic = monotonic
        self._random = random.Random()
        self._lock = threading.Lock()
        self._interval = 1.0 / rate if rate else 0.0
        self._next_slot = 0.0
        self._cooldown_until = 0.0
        # Called before every attempt of a write (any thread); raises to stop the write from
        # leaving, e.g. when the worker no longer owns its run (fencing).
        self.write_guard = write_guard

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._safe_base_url()!r})"

    # ----------------------------------------------------------------- hooks for subclasses

    def _prepare_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Query parameters for one attempt (SenseLink signs here, afresh for every attempt)."""
        return dict(params or {})

    def _headers(self) -> dict[str, str]:
        """Extra headers for every attempt (KOT's bearer token)."""
        return {}

    def _before_send(self, method: str, endpoint: str) -> None:
        """Called before every attempt; raise a ConnectorError to refuse sending."""

    def _classify(self, response: requests.Response) -> ConnectorError | None:
        """Error for a response, or None when it is a success. Subclasses refine this."""
        status = response.status_code
        if status == 429:
            return self._throttled(response)
        if status >= 500:
            return ServerError(
                f"{self.display_name}でサーバーエラーが発生しました(HTTP {status})。"
                "時間をおいて再度お試しください。",
                service=self.service,
                detail=f"HTTP {status}",
            )
        if 300 <= status < 400:
            return ConfigurationError(
                f"{self.display_name}のURLがリダイレクトされました(HTTP {status})。"
                "設定されたURLが正しいかご確認ください。",
                service=self.service,
                code="bad_url",
                detail=f"unexpected redirect HTTP {status}",
            )
        if status >= 400:
            return ResponseFormatError(
                f"{self.display_name}が想定外の応答を返しました(HTTP {status})。",
                service=self.service,
                detail=f"HTTP {status}",
            )
        return None

    def _secrets(self) -> tuple[str, ...]:
        """Strings that must never reach a message, a detail or a log line."""
        return ()

    # ---------------------------------------------------------------------------- helpers

    def redact(self, text: str) -> str:
        """``text`` without control characters (connectors/text.py: cleaned first, so removing
        one can never join a secret back together) and with every secret of this client
        replaced by ``***``."""
        text = clean(text)
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def _safe_base_url(self) -> str:
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return self.redact(f"{parts.scheme}://{host}{parts.path}")

    def _host_label(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _throttled(self, response: requests.Response, *, code: str = "throttled") -> ThrottledError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        retry_at = (
            datetime.now(UTC) + timedelta(seconds=retry_after) if retry_after is not None else None
        )
        return ThrottledError(
            f"{self.display_name}へのアクセスが集中しているため制限されました。"
            "時間をおいて再度お試しください。",
            service=self.service,
            code=code,
            retry_after=retry_after,
            retry_at=retry_at,
            detail=f"HTTP {response.status_code} throttled",
        )

    def _json(self, response: requests.Response, *, required: bool = True) -> Any:
        """The decoded JSON body; ResponseFormatError for HTML, garbage or (if required) empty."""
        cached = getattr(response, "_connector_json", _MISSING)
        if cached is not _MISSING:
            return cached
        text = response.content.strip()
        if not text:
            if not required:
                return None
            raise ResponseFormatError(
                f"{self.display_name}から空の応答が返りました。",
                service=self.service,
                detail=f"empty body, HTTP {response.status_code}",
            )
        try:
            value = transport.parse_json(response.content)
        except transport.JsonLimitError as exc:
            reason = _JSON_REASONS.get(exc.kind, "JSONではありません")
            if exc.kind == "syntax":
                kind = "HTML" if text[:1] == b"<" else "non-JSON"
                detail = f"{kind} body, HTTP {response.status_code}"
            else:
                detail = f"{exc}, HTTP {response.status_code}"
            raise ResponseFormatError(
                f"{self.display_name}の応答を読み取れませんでした({reason})。",
                service=self.service,
                detail=detail,
            ) from None
        response._connector_json = value  # type: ignore[attr-defined]
        return value

    def _format_error(self, detail: str) -> ResponseFormatError:
        """A body of the wrong shape; ``detail`` says where (for the log, secrets redacted)."""
        return ResponseFormatError(
            f"{self.display_name}の応答の形式が想定と異なります。",
            service=self.service,
            detail=self.redact(detail),
        )

    # ----------------------------------------------------------------------- the request

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        retry: bool = True,
        endpoint: str | None = None,
        write: bool | None = None,
    ) -> requests.Response:
        """Send one call with bounded retries; a 2xx response or a ConnectorError.

        ``endpoint`` labels the call in counters and logs (a path template without secrets);
        ``retry=False`` sends exactly once (non-idempotent writes); ``write`` marks a call that
        changes remote state (default: any method but GET/HEAD/OPTIONS) for ``write_guard``.
        """
        method = method.upper()
        label = f"{method} {endpoint or '/' + path.lstrip('/')}"
        if write is None:
            write = method not in SAFE_METHODS
        attempts = 1 + (self.max_retries if retry else 0)
        attempt = throttled = 0
        throttle_wait = 0.0
        while True:
            self._before_send(method, label)
            ticket, answer = self._acquire(), _MISSING
            try:
                if write and self.write_guard is not None:
                    # Last, right before the attempt leaves (after any wait for a slot).
                    self.write_guard()
                error, response = self._send_once(method, path, label, params, json, data, files)
                answer = error
            finally:
                self._release(ticket, answer)  # _MISSING: no answer (an unexpected exception)
            if error is None:
                return response
            if (
                self.resend_throttled
                and isinstance(error, ThrottledError)
                and not error.may_have_landed
            ):
                # Refused before it was processed: safe to send again, writes included. An
                # answer that was not a clean refusal (may have landed) is never sent again,
                # so every earlier try of a resent write was a clean refusal.
                delay = self._throttle_delay(throttled, throttle_wait, error)
                if delay is None:
                    raise error
                throttled += 1
                throttle_wait += delay
                self.log.info("%s throttled (resend %d in %.2fs)", label, throttled, delay)
                self._sleep(delay)
                continue
            last_try = attempt + 1 >= attempts
            if last_try or not self._is_retryable(error):
                raise error
            delay = self._retry_delay(attempt, error)
            if delay is None:
                raise error
            self.log.warning(
                "%s failed (%s, attempt %d/%d), retrying in %.1fs",
                label,
                error.code,
                attempt + 1,
                attempts,
                delay,
            )
            if isinstance(error, ThrottledError):
                # Client-wide: every thread using this client waits, then goes slower.
                self._slow_down(delay)
            elif delay > 0:
                self._sleep(delay)
            attempt += 1

    def _send_once(self, method, path, label, params, json, data, files):
        with self._lock:
            self.calls[label] += 1
        try:
            response = self.session.request(
                method,
                self._url(path),
                params=self._prepare_params(params),
                json=json,
                data=data,
                files=files,
                headers=self._headers(),
                timeout=self.timeout,
                allow_redirects=self.allow_redirects,
            )
        except requests.RequestException as exc:
            # Never chain or quote `exc`: requests' texts carry the full URL (token path, sign).
            self.log.debug("%s -> %s", label, type(exc).__name__)
            return self._translate_exception(exc, method, label), None
        except (ValueError, UnicodeError) as exc:  # a URL or header requests can't even build
            self.log.debug("%s -> %s", label, type(exc).__name__)
            return self._bad_url(f"{type(exc).__name__} on {label}"), None
        self.log.debug("%s -> %s", label, response.status_code)
        try:
            error = self._classify(response)
        except ConnectorError as exc:
            error = exc
        return error, response

    def _translate_exception(
        self, exc: requests.RequestException, method: str, label: str
    ) -> ConnectorError:
        write = method not in SAFE_METHODS
        host = self._host_label()
        name = type(exc).__name__
        if isinstance(exc, transport.DeadlineExceeded):
            return RequestTimeout(
                f"{self.display_name}({host})からの応答が{self.deadline:g}秒以内に"
                "完了しなかったため、中断しました(タイムアウト)。",
                service=self.service,
                may_have_landed=write,
                detail=f"overall deadline ({self.deadline:g} s) on {label}",
            )
        if isinstance(exc, transport.BodyTooLarge):
            return ResponseFormatError(
                f"{self.display_name}の応答が大きすぎるため、読み込みを中止しました"
                f"(上限 {_megabytes(exc.limit)})。",
                service=self.service,
                may_have_landed=write,
                detail=f"body over {exc.limit} bytes on {label}",
            )
        if isinstance(exc, transport.BadContentEncoding):
            return ResponseFormatError(
                f"{self.display_name}の応答を読み取れませんでした(圧縮形式が正しくありません)。",
                service=self.service,
                may_have_landed=write,
                detail=f"{exc} on {label}",
            )
        if isinstance(exc, requests.ConnectTimeout):
            return RequestTimeout(
                f"{self.display_name}({host})への接続がタイムアウトしました。"
                "URLとネットワークをご確認ください。",
                service=self.service,
                detail=f"connect timeout on {label}",
            )
        if isinstance(exc, requests.Timeout):
            return RequestTimeout(
                f"{self.display_name}({host})からの応答がタイムアウトしました。",
                service=self.service,
                may_have_landed=write,
                detail=f"read timeout on {label}",
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return NetworkError(
                f"{self.display_name}({host})と安全に接続できませんでした(SSL証明書エラー)。"
                "URLをご確認ください。",
                service=self.service,
                detail=f"TLS error on {label}",
            )
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return ConfigurationError(
                f"{self.display_name}の認証情報に使用できない文字が含まれています。"
                "設定をご確認ください。",
                service=self.service,
                code=self.auth_code,
                detail=f"{name} on {label}",
            )
        if isinstance(exc, _BAD_URL_EXCEPTIONS):
            return self._bad_url(f"{name} on {label}")
        refused = _connection_not_made(exc)
        return NetworkError(
            f"{self.display_name}({host})に接続できませんでした。URLとネットワークをご確認ください。",
            service=self.service,
            may_have_landed=write and not refused,
            detail=f"{name} on {label}" + (" (no connection)" if refused else ""),
        )

    def _bad_url(self, detail: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.display_name}のURLが正しくありません。設定をご確認ください。",
            service=self.service,
            code="bad_url",
            detail=detail,
        )

    # ------------------------------------------------------------------ retry and pacing

    def _is_retryable(self, error: ConnectorError) -> bool:
        return not error.permanent and isinstance(
            error, (ThrottledError, ServerError, NetworkError)
        )

    def _retry_delay(self, attempt: int, error: ConnectorError) -> float | None:
        """Seconds before the next attempt, or None to give up now (server asks for too long)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return retry_after if retry_after <= self.max_backoff else None
        cap = min(self.max_backoff, self.backoff * (2**attempt))
        return self._random.uniform(0, cap)  # full jitter

    def _acquire(self) -> Any:
        """Wait until this attempt may be sent; the ticket goes back to ``_release``."""
        self._pace()
        return None

    def _release(self, ticket: Any, answer: Any) -> None:
        """The attempt is over: ``answer`` is None (success), its ConnectorError, or neither."""

    def _throttle_delay(self, resent: int, waited: float, error: ConnectorError) -> float | None:
        """Seconds before resending a throttled call, or None when its budget is spent."""
        if resent >= self.throttle_retries:
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is None:
            retry_after = self._random.uniform(0, min(self.max_backoff, 0.25 * (2**resent)))
        if waited + retry_after > self.throttle_max_wait:
            return None
        return retry_after

    def _pace(self) -> None:
        """Wait for this call's slot: at most `rate` calls per second, after any cool-down."""
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next_slot, self._cooldown_until)
            self._next_slot = start + self._interval
        if start > now:
            self._sleep(start - now)

    def _slow_down(self, cooldown: float) -> None:
        with self._lock:
            self._cooldown_until = max(self._cooldown_until, self._monotonic() + cooldown)
            self._interval = min(max(self._interval * 2, THROTTLED_INTERVAL), MAX_INTERVAL)


_MISSING = object()
_JSON_REASONS = {
    "syntax": "JSONではありません",
    "encoding": "文字コードがUTF-8ではありません",
    "depth": "入れ子が深すぎます",
    "values": "項目数が多すぎます",
}


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _connection_not_made(exc: BaseException) -> bool:
    """Whether the failure happened before a connection existed (so nothing was sent)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):  # includes NameResolutionError
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.append(item.__cause__)
            stack.append(item.__context__)
            stack.append(getattr(item, "reason", None))
    return False
