"""The transport under every connector: an overall deadline per call, a bounded body, strict and
bounded JSON, and connections to the addresses that were checked.

``HttpClient`` mounts one ``BoundedAdapter`` on its session. For each call the adapter

- arms a watchdog for the **overall deadline** (connect + request + headers + whole body). When
  it fires, the call's socket is shut down, so a server dripping its headers or body one byte at
  a time cannot hold a worker: a read timeout alone is per socket read. The call then fails with
  ``DeadlineExceeded`` (a ``requests.ReadTimeout``: for a write, "outcome unknown");
- reads the body itself, raw, and inflates gzip/deflate with its own bounded decoder, counting
  **decompressed** bytes against ``max_body_bytes`` (urllib3 never inflates anything unbounded);
- connects to the **pinned** addresses of a host (the ones ``connectors.netcheck`` validated),
  never resolving the name a second time, while TLS still sends the host name (SNI) and checks
  the certificate against it.

``parse_json`` is the strict JSON reader every connector uses: UTF-8 only, no NaN/Infinity,
nesting at most ``JSON_MAX_DEPTH`` deep and at most ``JSON_MAX_VALUES`` values.
"""

from __future__ import annotations

import codecs
import contextlib
import heapq
import itertools
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connectionpool
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection

DEFAULT_DEADLINE_SECONDS = 60.0
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
JSON_MAX_DEPTH = 32
JSON_MAX_VALUES = 500_000
CHUNK_BYTES = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"


# ------------------------------------------------------------------------------ errors


class DeadlineExceeded(requests.exceptions.ReadTimeout):
    """The call did not finish (connect + headers + whole body) within its overall deadline."""


class BodyTooLarge(requests.RequestException):
    """The body (decompressed bytes counted) is larger than the client's cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")
        self.limit = limit


class BadContentEncoding(requests.RequestException):
    """The body's Content-Encoding is unknown, or the compressed stream is broken."""


class JsonLimitError(ValueError):
    """A body that is not strict, bounded JSON; ``kind`` is syntax|encoding|depth|values."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


# ---------------------------------------------------------------------------- watchdog


class _Watchdog:
    """One daemon thread that fires callbacks at their time (cheaper than a Timer per call)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, callback: Callable[[], None]) -> list[Any]:
        entry = [callback, True]
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), entry))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="upstream-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[1] = False

    def _loop(self) -> None:
        while True:
            due: list[Callable[[], None]] = []
            with self._cond:
                while self._heap and not self._heap[0][2][1]:
                    heapq.heappop(self._heap)  # cancelled
                if not self._heap:
                    self._cond.wait(30.0)
                    continue
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, entry = heapq.heappop(self._heap)
                    if entry[1]:
                        due.append(entry[0])
                if not due:
                    self._cond.wait(max(0.0, self._heap[0][0] - now))
                    continue
            for callback in due:
                with contextlib.suppress(Exception):  # the watchdog must survive any callback
                    callback()


_WATCHDOG = _Watchdog()


class _Call:
    """One call in flight: its deadline, its sockets and its pinned addresses."""

    def __init__(self, deadline_at: float, pins: dict[str, tuple[str, ...]]) -> None:
        self.deadline_at = deadline_at
        self.pins = pins
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add_socket(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_local = threading.local()


def _current_call() -> _Call | None:
    return getattr(_local, "call", None)


# ------------------------------------------------------------------- pinned connections


class _PinningMixin:
    """Connect to the call's pinned addresses for this host; TLS keeps using the host name."""

    _dns_host: str
    host: str
    sock: Any

    def _new_conn(self) -> socket.socket:
        call = _current_call()
        addresses = call.pins.get(self.host.lower()) if call else None
        if not addresses:
            sock = super()._new_conn()  # type: ignore[misc]
        else:
            name = self._dns_host
            error: Exception | None = None
            sock = None
            for address in addresses:
                # The connection goes to the checked address; `host` (SNI, certificate check,
                # Host header) reads the name again once `_dns_host` is restored.
                self._dns_host = address
                try:
                    sock = super()._new_conn()  # type: ignore[misc]
                    break
                except (u3.NewConnectionError, u3.ConnectTimeoutError) as exc:
                    error = exc
                finally:
                    self._dns_host = name
            if sock is None:
                assert error is not None
                raise error
        if call is not None:
            call.add_socket(sock)
        return sock


class PinnedHTTPConnection(_PinningMixin, HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinningMixin, HTTPSConnection):
    pass


class _HTTPPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        call = _current_call()
        if call is not None:
            call.add_socket(getattr(conn, "sock", None))  # kept alive: the watchdog may cut it
        return conn


class _HTTPSPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        call = _current_call()
        if call is not None:
            call.add_socket(getattr(conn, "sock", None))
        return conn


# ------------------------------------------------------------------------- the adapter


class BoundedAdapter(HTTPAdapter):
    """An HTTPAdapter with an overall deadline, a body cap, own bounded decoding and pinning."""

    def __init__(
        self,
        *,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        **kwargs: Any,
    ) -> None:
        self.deadline = float(deadline)
        self.max_body_bytes = int(max_body_bytes)
        self._pins: dict[str, tuple[str, ...]] = {}
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def pin(self, host: str, addresses: Iterable[str]) -> None:
        """Connect to ``addresses`` (in order) for ``host`` from now on; none: resolve again."""
        addresses = tuple(str(a) for a in addresses)
        if addresses:
            self._pins[host.lower()] = addresses
        else:
            self._pins.pop(host.lower(), None)

    def pinned(self, host: str) -> tuple[str, ...]:
        return self._pins.get(host.lower(), ())

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        if request.headers.get("Accept-Encoding") != "identity":
            request.headers["Accept-Encoding"] = ACCEPT_ENCODING  # nothing we can't bound
        call = _Call(time.monotonic() + self.deadline, dict(self._pins))
        entry = _WATCHDOG.arm(call.deadline_at, call.expire)
        previous = _current_call()
        _local.call = call
        try:
            try:
                response = super().send(request, stream=True, **kwargs)
            except requests.RequestException:
                if call.expired:
                    raise DeadlineExceeded(
                        f"no answer within the {self.deadline:g} s deadline", request=request
                    ) from None
                raise
            try:
                response._content = self._read_body(response, call)
                if call.expired:
                    # A cut connection can look like a complete answer (headers ended by EOF,
                    # a body read until close): nothing read after the deadline is trusted.
                    raise DeadlineExceeded(
                        f"no complete answer within the {self.deadline:g} s deadline",
                        response=response,
                    )
            except BaseException:
                response.close()
                raise
            response._content_consumed = True  # type: ignore[attr-defined]
            response.raw.release_conn()
            return response
        finally:
            _WATCHDOG.cancel(entry)
            _local.call = previous

    def _read_body(self, response: requests.Response, call: _Call) -> bytes:
        limit = self.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        decoder = _Decoder(response.headers.get("Content-Encoding", ""), limit)
        raw = response.raw
        received = 0
        try:
            while True:
                chunk = raw.read(CHUNK_BYTES, decode_content=False)
                if not chunk:
                    break
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                decoder.feed(chunk)
            return decoder.finish()
        except (BodyTooLarge, BadContentEncoding):
            raise
        except (u3.HTTPError, OSError, ValueError) as exc:
            if call.expired:
                raise DeadlineExceeded(
                    f"body not complete within the {self.deadline:g} s deadline",
                    response=response,
                ) from None
            if isinstance(exc, u3.ReadTimeoutError | socket.timeout):
                raise requests.exceptions.ReadTimeout(
                    "read timeout in the body", response=response
                ) from None
            if isinstance(exc, u3.SSLError):
                raise requests.exceptions.SSLError("TLS error in the body") from None
            raise requests.exceptions.ChunkedEncodingError(
                f"body cut short ({type(exc).__name__})", response=response
            ) from None


class _Decoder:
    """gzip / deflate / identity, chained as the header lists them, bounded at ``limit``."""

    def __init__(self, header: str, limit: int) -> None:
        self.limit = limit
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        self.stages: list[_Inflater] = []
        for coding in reversed(codings):
            if coding in ("identity", ""):
                continue
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise BadContentEncoding(f"unsupported Content-Encoding {coding[:40]!r}")
            self.stages.append(_Inflater(coding, limit))
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        for stage in self.stages:
            data = stage.feed(data)
        self._keep(data)

    def finish(self) -> bytes:
        for stage in self.stages:
            stage.finish()
        return b"".join(self.parts)

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.limit:
            raise BodyTooLarge(self.limit)
        self.parts.append(data)


class _Inflater:
    """One bounded zlib stream: never produces more than ``limit`` + 1 bytes per feed."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.produced = 0
        self._obj: Any = None
        self._head = b""

    def _start(self, data: bytes) -> None:
        if self.coding == "deflate":
            # "deflate" is zlib-wrapped by the RFC, raw deflate by some servers.
            zlib_wrapped = (
                len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            )
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        else:
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        if self._obj is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return b""
            self._head = b""
            self._start(data)
        out: list[bytes] = []
        while True:
            if self._obj.eof:
                rest = self._obj.unused_data + data
                if self.coding != "deflate" and rest[:2] == b"\x1f\x8b":
                    self._start(rest)  # the next member of a multi-member gzip
                    data = rest
                    continue
                if rest.strip(b"\x00\r\n\t "):
                    raise BadContentEncoding("data after the end of the compressed stream")
                break
            if not data:
                break
            try:
                piece = self._obj.decompress(data, self.limit - self.produced + 1)
            except zlib.error:
                raise BadContentEncoding(f"broken {self.coding} stream") from None
            self.produced += len(piece)
            if self.produced > self.limit:
                raise BodyTooLarge(self.limit)
            out.append(piece)
            data = self._obj.unconsumed_tail
        return b"".join(out)

    def finish(self) -> bytes:
        if self._obj is None:
            if self._head:
                raise BadContentEncoding(f"truncated {self.coding} stream")
            return b""  # an empty body
        if not self._obj.eof:
            raise BadContentEncoding(f"truncated {self.coding} stream")
        return b""


# ------------------------------------------------------------------------------- JSON


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError("syntax", f"{name} is not JSON")


def parse_json(
    body: bytes | str,
    *,
    max_depth: int = JSON_MAX_DEPTH,
    max_values: int = JSON_MAX_VALUES,
) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, at most ``max_depth`` deep and ``max_values`` values.

    Raises JsonLimitError (a ValueError) with ``kind`` syntax|encoding|depth|values.
    """
    if isinstance(body, bytes):
        if body.startswith(codecs.BOM_UTF8):
            body = body[len(codecs.BOM_UTF8) :]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonLimitError("encoding", f"not UTF-8 at byte {exc.start}") from None
    else:
        text = body
    # Cheap upper bound of the number of values (separators and containers, strings included):
    # refuses a body that would build millions of objects before anything is built.
    rough = text.count(",") + text.count("[") + text.count("{") + 1
    if rough > max_values:
        raise JsonLimitError("values", f"more than {max_values} values")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonLimitError("depth", f"nested deeper than {max_depth}") from None
    except JsonLimitError:
        raise
    except ValueError as exc:  # JSONDecodeError, an integer of too many digits
        raise JsonLimitError("syntax", f"invalid JSON ({type(exc).__name__})") from None
    _check_tree(value, max_depth)
    return value


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and text of a parsed value, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JsonLimitError("depth", f"nested deeper than {max_depth}")
            for key, child in item.items():
                _check_text(key)
                if isinstance(child, (dict, list)):
                    stack.append((child, depth + 1))
                elif isinstance(child, str):
                    _check_text(child)
        elif isinstance(item, list):
            if depth > max_depth:
                raise JsonLimitError("depth", f"nested deeper than {max_depth}")
            for child in item:
                if isinstance(child, (dict, list)):
                    stack.append((child, depth + 1))
                elif isinstance(child, str):
                    _check_text(child)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no database can store it
            raise JsonLimitError("encoding", "a string with a lone surrogate") from None


def cut(text: Any, limit: int = 200) -> str:
    """``text`` as one line of at most ``limit`` characters, for people to read."""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
