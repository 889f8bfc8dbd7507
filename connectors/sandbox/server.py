"""The HTTP plumbing both fake servers share: routing, latency, faults, counting, quiet shutdown.

Each fake service is an ``App`` (routes + handlers returning ``Response`` objects); ``serve``
puts it on a ``ThreadingHTTPServer`` speaking HTTP/1.1 keep-alive on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
import re
import socket
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .faults import HOSTILE_KINDS, Fault, Faults

logger = logging.getLogger(__name__)

GATEWAY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>\n"
)


@dataclass
class Response:
    status: int
    payload: Any = None  # encoded as JSON unless `body` is given
    body: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    # Hostile answers: a body streamed without Content-Length (the connection closes after
    # it), or a normal answer dripped ("headers" | "body") one byte per `drip_delay` seconds.
    chunks: Callable[[], Iterator[bytes]] | None = None
    drip: str = ""
    drip_delay: float = 0.0

    def encode(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.payload, ensure_ascii=False).encode("utf-8")


NESTING_DEPTH = 200_000
BOMB_INFLATED_MB = 512
OVERSIZED_MB = 64


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A gzip body of about 0.5 MB that inflates to BOMB_INFLATED_MB of JSON-looking bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    parts = [packer.compress(b'{"code": 200, "data": {"version": "')]
    parts += [packer.compress(block) for _ in range(BOMB_INFLATED_MB)]
    parts += [packer.compress(b'"}}'), packer.flush()]
    return b"".join(parts)


def _oversized_chunks() -> Iterator[bytes]:
    block = b"0" * (1024 * 1024)
    yield b'{"code": 200, "data": {"list": [], "pad": "'
    for _ in range(OVERSIZED_MB):
        yield block
    yield b'"}}'


def hostile_response(kind: str) -> Response:
    """The answers of the hostile fault kinds that replace the normal answer."""
    if kind == "deep_nesting":
        return Response(200, body=b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH)
    if kind == "gzip_bomb":
        return Response(200, body=gzip_bomb(), headers={"Content-Encoding": "gzip"})
    if kind == "oversized_body":
        return Response(200, chunks=_oversized_chunks)
    raise ValueError(kind)


def shuffle_page(response: Response, rng: random.Random) -> Response:
    """A list answer's items in another order (SenseLink's data.list, data.data or data)."""
    payload = response.payload
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        for key in ("list", "data"):
            if isinstance(data.get(key), list):
                rng.shuffle(data[key])
    elif isinstance(data, list):
        rng.shuffle(data)
    return response


def html_response(status: int, reason: str) -> Response:
    page = GATEWAY_PAGE.format(status=status, reason=reason)
    return Response(status, body=page.encode(), content_type="text/html")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    client_ip: str
    params: dict[str, str] = field(default_factory=dict)  # from the route's {placeholders}
    raw_target: str = ""


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    func: Callable[[Request], Response]


class Runtime:
    """What both servers of one sandbox share: faults, latency, request counts, the stop signal."""

    def __init__(self, faults: Faults, latency: float = 0.0) -> None:
        self.faults = faults
        self.latency = latency
        self.stopping = threading.Event()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    def count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1

    def counts(self) -> Counter[str]:
        with self._counts_lock:
            return Counter(self._counts)

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()


class App:
    """One fake service: subclasses register routes and answer the service-specific faults."""

    service = ""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add_route(self, method: str, template: str, func: Callable[[Request], Response]) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.routes.append(Route(method, template, re.compile(f"^{regex}$"), func))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                m = route.pattern.match(path)
                if m:
                    return route, m.groupdict()
        return None

    def handle(self, route: Route, request: Request) -> Response:
        return route.func(request)

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": "Not Found"})

    def fault_response(self, kind: str, request: Request) -> Response:
        raise NotImplementedError

    def reshape(self, template: str, response: Response) -> Response:
        """Answer `wrong_type`: the same response with a wrong shape."""
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.shuffler = random.Random(7)
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeouts, resets, benchmarks cut short) is normal here.
        logger.debug("sandbox connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    wbufsize = -1  # buffered: headers and body leave in one segment, flushed per response
    timeout = 300  # an idle keep-alive connection is dropped after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        app, runtime = self.server.app, self.server.runtime
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        query = {k: v[-1] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        request = Request(
            method=self.command,
            path=target.path,
            query=query,
            headers=self.headers,
            body=body,
            client_ip=self.client_address[0],
            raw_target=self.path,
        )
        matched = app.match(self.command, target.path)
        runtime.count(f"{self.command} {matched[0].template if matched else target.path}")
        if runtime.latency > 0:
            runtime.stopping.wait(runtime.latency)
        fault = runtime.faults.take(app.service, self.command, target.path)
        try:
            response = self._respond(app, runtime, matched, request, fault)
        except Exception:
            logger.exception("sandbox %s failed on %s %s", app.service, self.command, self.path)
            response = Response(500, {"message": "sandbox internal error"})
        if response is None or runtime.stopping.is_set():
            self._reset()
            return
        self._send(response)

    def _respond(
        self,
        app: App,
        runtime: Runtime,
        matched: tuple[Route, dict[str, str]] | None,
        request: Request,
        fault: Fault | None,
    ) -> Response | None:
        kind = fault.kind if fault else None
        if kind in ("deep_nesting", "gzip_bomb", "oversized_body"):
            return hostile_response(kind)
        if kind == "page_ignored_shuffled" and "page" in request.query:
            request.query["page"] = "1"
        if kind == "reset":
            return None
        if kind == "timeout" and fault is not None:
            runtime.stopping.wait(fault.delay)
            return html_response(504, "Gateway Time-out")
        if kind == "http500_html":
            return html_response(500, "Internal Server Error")
        passing = (
            None,
            "wrong_type",
            "timeout_after_store",
            "gateway_after_store",
            "reset_after_store",
            "page_ignored_shuffled",
        )
        if kind not in passing and kind not in HOSTILE_KINDS:
            return app.fault_response(kind, request)
        if matched is None:
            return app.not_found(request)
        route, request.params = matched
        response = app.handle(route, request)
        if kind == "wrong_type" and response.status < 300 and response.body is None:
            response = app.reshape(route.template, response)
        if kind == "timeout_after_store" and fault is not None:
            runtime.stopping.wait(fault.delay)
        if kind == "gateway_after_store":
            return html_response(502, "Bad Gateway")
        if kind == "reset_after_store":
            return None
        if kind == "page_ignored_shuffled" and response.payload is not None:
            response = shuffle_page(response, self.server.shuffler)
        if kind in ("slow_body", "slow_headers") and fault is not None:
            response.drip = "body" if kind == "slow_body" else "headers"
            response.drip_delay = fault.delay
        return response

    def _send(self, response: Response) -> None:
        if response.chunks is not None:
            self._send_stream(response)
            return
        if response.drip:
            self._send_dripped(response)
            return
        body = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _head(self, response: Response, length: int | None) -> bytes:
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}"]
        lines.append(f"Content-Length: {length}" if length is not None else "Connection: close")
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_stream(self, response: Response) -> None:
        """A body of unknown length: read until the connection closes (HTTP/1.1 allows it)."""
        assert response.chunks is not None
        self.close_connection = True
        stopping = self.server.runtime.stopping
        with contextlib.suppress(OSError):
            self.wfile.write(self._head(response, None))
            for chunk in response.chunks():
                if stopping.is_set():
                    break
                self.wfile.write(chunk)
            self.wfile.flush()

    def _send_dripped(self, response: Response) -> None:
        """The answer with its headers or its body sent one byte per ``drip_delay`` seconds."""
        body = response.encode()
        head = self._head(response, len(body))
        slow, fast = (head, b"") if response.drip == "headers" else (b"", head)
        stopping = self.server.runtime.stopping
        self.close_connection = True
        with contextlib.suppress(OSError):
            if fast:
                self.wfile.write(fast)
                self.wfile.flush()
            for index in range(len(slow)):
                self.wfile.write(slow[index : index + 1])
                self.wfile.flush()
                if stopping.wait(response.drip_delay):
                    return
            if response.drip == "headers":
                self.wfile.write(body)
                self.wfile.flush()
                return
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                if stopping.wait(response.drip_delay):
                    return

    def _reset(self) -> None:
        """Drop the connection with an RST, as a crashed gateway would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Served:
    """A running server: its base address and how to stop it."""

    def __init__(self, app: App, runtime: Runtime, host: str, port: int) -> None:
        self.server = _Server((host, port), app, runtime)
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{app.service}",
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        with self.server.connections_lock:
            connections = list(self.server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server.server_close()
        self.thread.join(timeout=5)
