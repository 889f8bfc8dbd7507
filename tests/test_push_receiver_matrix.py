"""The push receiver's matrix (issue 18): the real view, through Django's test client, under
every body variant × path variant (with and without the trailing slash) × known and unknown
token × DEBUG off and on, and every other method; then the dev server's and gunicorn's request
lines. In every cell a known token's POST is answered 200 (any other answer stops SenseLink's
every later push), an unknown token's 404, another method 405, and no log record of any logger
carries the token. The section "push-receiver" of docs/RELIABILITY.md is written when every
cell ran in the session."""

from __future__ import annotations

import json
import platform
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
import time_machine
from django.db import connection
from django.test import Client

from integrations.models import ConnectSetting, PushMessage, PushReceiver
from integrations.services import push
from tests.conftest import JST
from tests.fault_matrix_report import read_section, write_section
from tests.log_capture import every_record, leaks, start_dev_server
from tests.world import make_acme

AT = datetime(2026, 11, 25, 8, 45, tzinfo=JST)
UNKNOWN = "Q" * 43
METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


def manual() -> bytes:
    """The manual's shape: strings everywhere, sendTime the device's local time."""
    return json.dumps(
        {
            "eventType": "30000",
            "messageId": uuid.uuid4().hex,
            "sendTime": "2026-11-25 08:45:03",
            "data": {"id": 1, "signTime": int(AT.timestamp()), "deviceSN": "SPS-1A2B3C"},
        }
    ).encode()


def sender() -> bytes:
    """SenseTime's push test sender: numbers for eventType and sendTime (epoch ms), a UUID."""
    return json.dumps(
        {
            "eventType": 30000,
            "messageId": str(uuid.uuid4()),
            "sendTime": int(AT.timestamp() * 1000),
            "data": {"jobNumber": "1001", "signTime": int(AT.timestamp())},
        }
    ).encode()


def with_id(message_id: object, event_type: object = "30000") -> Callable[[], bytes]:
    def build() -> bytes:
        payload = {"eventType": event_type, "sendTime": "2026-11-25 08:45:03", "data": {}}
        if message_id is not None:
            payload["messageId"] = message_id() if callable(message_id) else message_id
        return json.dumps(payload).encode()

    return build


def huge() -> bytes:
    return json.dumps(
        {"eventType": "30000", "messageId": uuid.uuid4().hex, "data": {"x": "x" * 70_000}}
    ).encode()


@dataclass(frozen=True)
class Body:
    id: str
    what: str
    build: Callable[[], bytes]
    rows: int  # PushMessage rows one POST adds
    unusable: int  # PushReceiver.unusable_count one POST adds
    wakes: int  # polls one POST wakes
    repeat: bool = False  # the cell POSTs the same body twice and measures the second


BODIES = [
    Body("manual", "valid, the manual's shape", manual, 1, 0, 1),
    Body("sender", "valid, the real sender's shape", sender, 1, 0, 1),
    Body("duplicate", "the same messageId again", manual, 0, 0, 0, repeat=True),
    Body("empty", "empty body", lambda: b"", 0, 1, 1),
    Body("not-json", "not JSON", lambda: b"hello", 0, 1, 1),
    Body("truncated", "truncated JSON", lambda: manual()[:40], 0, 1, 1),
    Body("array", "a JSON array", lambda: b"[" + manual() + b"]", 0, 1, 1),
    Body("huge", f"{70_000 // 1024} KiB (> {push.BODY_LIMIT // 1024} KiB)", huge, 0, 1, 1),
    Body("deep", "nested 20,000 deep", lambda: b"[" * 20_000 + b"]" * 20_000, 0, 1, 1),
    Body(
        "not-utf8",
        "not UTF-8 (Shift_JIS name)",
        lambda: manual()[:-2] + b', "userName": "' + "山田".encode("shift_jis") + b'"}}',
        0,
        1,
        1,
    ),
    Body("nan", "NaN in it", lambda: manual()[:-1] + b', "x": NaN}', 0, 1, 1),
    Body("control-id", "NUL in messageId", with_id(lambda: "m\x00" + uuid.uuid4().hex), 0, 1, 1),
    Body("no-id", "no messageId", with_id(None), 0, 1, 1),
    Body(
        "alert",
        "eventType 30100 (device alert)",
        with_id(lambda: uuid.uuid4().hex, "30100"),
        1,
        0,
        0,
    ),
]


@dataclass
class Report:
    bodies: dict[str, dict] = field(default_factory=dict)
    methods: dict[str, dict] = field(default_factory=dict)
    servers: dict[str, dict] = field(default_factory=dict)


REPORT = Report()
DEBUGS = [False, True]
SERVERS = ["dev-server", "gunicorn"]


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    complete = (
        set(REPORT.bodies) == {(b.id, d) for b in BODIES for d in DEBUGS}
        and set(REPORT.methods) == {(m, d) for m in METHODS for d in DEBUGS}
        and set(REPORT.servers) == set(SERVERS)
    )
    if complete:
        write_section("push-receiver", render())


@pytest.fixture
def acme(db, settings, monkeypatch):
    """acme receives pushes (real-time on); wakes are recorded, not run."""
    woken: list[int] = []
    monkeypatch.setattr(push, "wake", lambda setting_id: woken.append(setting_id) or True)
    setting = ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))
    setting.woken = woken
    return setting


def paths(token: str) -> dict[str, str]:
    return {"slash": f"/hooks/senselink/{token}/", "no-slash": f"/hooks/senselink/{token}"}


def counters(setting) -> tuple[int, int, int]:
    receiver = PushReceiver.objects.filter(setting=setting).first()
    rows = PushMessage.objects.filter(setting=setting).count()
    return rows, receiver.unusable_count if receiver else 0, len(setting.woken)


@pytest.mark.parametrize("debug", DEBUGS, ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("variant", BODIES, ids=[b.id for b in BODIES])
def test_every_post_to_a_known_token_is_answered_200(
    acme, variant, debug, settings, django_capture_on_commit_callbacks
):
    settings.DEBUG = debug
    client = Client()
    statuses, effects, logged = {}, [], []
    with every_record() as records, time_machine.travel(AT, tick=False) as clock:
        for name, path in paths(acme.push_token).items():
            clock.shift(timedelta(minutes=2))  # each path's unusable push is logged again
            raw = variant.build()
            if variant.repeat:
                with django_capture_on_commit_callbacks(execute=True):
                    client.post(path, data=raw, content_type="application/json")
            before = counters(acme)
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(path, data=raw, content_type="application/json")
            after = counters(acme)
            statuses[f"known {name}"] = response.status_code
            effects.append(tuple(b - a for a, b in zip(before, after, strict=True)))
            for name_unknown, unknown in paths(UNKNOWN).items():
                response = client.post(unknown, data=raw, content_type="application/json")
                statuses[f"unknown {name_unknown}"] = response.status_code
        logged = [r.getMessage() for r in records if r.name == "integrations.services.push"]
    expected = (variant.rows, variant.unusable, variant.wakes)
    token_leaks = leaks(records, acme.push_token) + leaks(records, UNKNOWN)
    REPORT.bodies[(variant.id, debug)] = {
        "statuses": statuses,
        "effect": effects[0],
        "logged": logged[0].split(": ", 1)[1] if logged else "-",
        "leaks": len(token_leaks),
        "records": len(records),
        "passed": False,
    }
    assert statuses == {
        "known slash": 200,
        "known no-slash": 200,
        "unknown slash": 404,
        "unknown no-slash": 404,
    }
    assert effects == [expected, expected]
    assert token_leaks == []
    REPORT.bodies[(variant.id, debug)]["passed"] = True


@pytest.mark.parametrize("debug", DEBUGS, ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("method", METHODS)
def test_another_method_is_405_and_logs_no_token(acme, method, debug, settings):
    settings.DEBUG = debug
    client = Client()
    statuses = {}
    with every_record() as records:
        for who, token in (("known", acme.push_token), ("unknown", UNKNOWN)):
            for name, path in paths(token).items():
                response = client.generic(
                    method, path, data=manual(), content_type="application/json"
                )
                statuses[f"{who} {name}"] = response.status_code
    token_leaks = leaks(records, acme.push_token) + leaks(records, UNKNOWN)
    REPORT.methods[(method, debug)] = {
        "statuses": statuses,
        "leaks": len(token_leaks),
        "records": len(records),
        "passed": False,
    }
    assert set(statuses.values()) == {405}
    assert counters(acme) == (0, 0, 0) and not PushReceiver.objects.exists()
    assert token_leaks == []
    REPORT.methods[(method, debug)]["passed"] = True


@pytest.mark.django_db(transaction=True)
def test_the_dev_server_request_lines_carry_no_token(settings, monkeypatch):
    monkeypatch.setattr(push, "wake", lambda setting_id: True)
    setting = ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))
    server = start_dev_server()
    session = requests.Session()
    session.trust_env = False
    base = f"http://127.0.0.1:{server.port}"
    sent = []
    try:
        with every_record() as records:
            for token in (setting.push_token, UNKNOWN):
                for path in paths(token).values():
                    for method, raw in (("POST", manual()), ("POST", b"\xff{"), ("GET", b"")):
                        answer = session.request(method, base + path, data=raw, timeout=5)
                        sent.append(answer.status_code)
    finally:
        server.terminate()
    lines = [r.getMessage() for r in records if r.name == "django.server"]
    token_leaks = leaks(records, setting.push_token) + leaks(records, UNKNOWN)
    REPORT.servers["dev-server"] = {
        "what": "`manage.py runserver`'s request handler (logger django.server)",
        "requests": f"{len(sent)}: POST valid / not UTF-8, GET × known / unknown × both paths",
        "statuses": ", ".join(str(s) for s in sorted(set(sent))),
        "example": lines[0] if lines else "-",
        "leaks": len(token_leaks),
        "records": len(records),
        "passed": False,
    }
    assert sent == [200, 200, 405] * 2 + [404, 404, 405] * 2
    assert len(lines) == len(sent) and all("/hooks/senselink/***" in line for line in lines)
    assert token_leaks == []
    REPORT.servers["dev-server"]["passed"] = True


def test_the_gunicorn_access_lines_carry_no_token(acme):
    from gunicorn.config import Config

    from portal import gunicorn_conf
    from portal.gunicorn_logging import RedactingLogger

    config = Config()
    config.set("accesslog", "/dev/null")
    config.set("access_log_format", gunicorn_conf.access_log_format)
    logger = RedactingLogger(config)
    lines, count = [], 0
    with every_record() as records:
        for token in (acme.push_token, UNKNOWN):
            for path in paths(token).values():
                for method, status in (("POST", "200 OK"), ("GET", "405 Method Not Allowed")):
                    environ = {
                        "REQUEST_METHOD": method,
                        "RAW_URI": path + "?a=1",
                        "PATH_INFO": path,
                        "QUERY_STRING": "a=1",
                        "SERVER_PROTOCOL": "HTTP/1.1",
                        "REMOTE_ADDR": "203.0.113.9",
                    }
                    response = SimpleNamespace(status=status, sent=2, headers=())
                    logger.access(response, SimpleNamespace(headers=()), environ, timedelta(0))
                    count += 1
        lines = [r.getMessage() for r in records if r.name == "gunicorn.access"]
    token_leaks = leaks(records, acme.push_token) + leaks(records, UNKNOWN)
    REPORT.servers["gunicorn"] = {
        "what": "gunicorn's access line (`portal.gunicorn_logging.RedactingLogger`, the "
        "Procfile's format)",
        "requests": f"{count}: POST, GET × known / unknown × both paths",
        "statuses": "200, 405",
        "example": lines[0] if lines else "-",
        "leaks": len(token_leaks),
        "records": len(records),
        "passed": False,
    }
    assert len(lines) == count and all("/hooks/senselink/***" in line for line in lines)
    assert token_leaks == []
    REPORT.servers["gunicorn"]["passed"] = True


# --- the report ---------------------------------------------------------------------------------


def _md(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def _effect(effect: tuple[int, int, int]) -> str:
    rows, unusable, wakes = effect
    parts = [f"rows +{rows}"] if rows else ["no row"]
    if unusable:
        parts.append(f"unusable +{unusable}")
    parts.append(f"woke {wakes}")
    return ", ".join(parts)


def render() -> str:
    cells = list(REPORT.bodies.values()) + list(REPORT.methods.values())
    cells += list(REPORT.servers.values())
    passed = sum(1 for c in cells if c["passed"])
    records = sum(c.get("records", 0) for c in cells)
    now = datetime.now(JST)
    runs = {
        line.split(":", 1)[0][2:]: line
        for line in read_section("push-receiver").splitlines()
        if line.startswith(("- sqlite:", "- postgresql:"))
    }
    runs[connection.vendor] = (
        f"- {connection.vendor}: {passed} of {len(cells)} cells pass ({now:%Y-%m-%d %H:%M} JST)"
    )
    lines = [
        "## Push receiver (every body, path, method and log line)",
        "",
        "Generated by `tests/test_push_receiver_matrix.py`: the real view "
        "(`portal/hooks.py`, `integrations/services/push.py`) through Django's test client, "
        "DEBUG off and on; every log record of every logger captured at DEBUG "
        "(`tests/log_capture.py`) and searched for the token (message, traceback, every "
        "attribute). A known token's POST must be answered 200 whatever its body: SenseLink "
        "stops every later push after any other answer.",
        "",
        f"- Generated: {now:%Y-%m-%d %H:%M} JST, Python {platform.python_version()}",
        f"- Database: {connection.vendor}",
        f"- Result: **{passed} of {len(cells)} cells pass**; {records} log records searched, "
        f"{sum(c['leaks'] for c in cells)} carried a token",
        "",
        "Last run on each database:",
        "",
        *[runs[name] for name in sorted(runs)],
        "",
        "### POST: body × path (with / without the trailing slash) × token",
        "",
        "Effect per POST to the known token (the same with either path); `unusable` is "
        "`PushReceiver.unusable_count`; a woken poll is coalesced by realtime.",
        "",
        "| body | DEBUG | known `/` | known no `/` | unknown `/` | unknown no `/` | effect "
        "| logged (without the token) | records with a token | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for body in BODIES:
        for debug in DEBUGS:
            cell = REPORT.bodies[(body.id, debug)]
            s = cell["statuses"]
            lines.append(
                f"| {_md(body.what)} | {'on' if debug else 'off'} | {s.get('known slash')} "
                f"| {s.get('known no-slash')} | {s.get('unknown slash')} "
                f"| {s.get('unknown no-slash')} | {_effect(cell['effect'])} "
                f"| {_md(cell['logged'])} | {cell['leaks']} "
                f"| {'PASS' if cell['passed'] else 'FAIL'} |"
            )
    lines += [
        "",
        "### Other methods (405, nothing stored)",
        "",
        "| method | DEBUG | known `/` | known no `/` | unknown `/` | unknown no `/` "
        "| records with a token | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        for debug in DEBUGS:
            cell = REPORT.methods[(method, debug)]
            s = cell["statuses"]
            lines.append(
                f"| {method} | {'on' if debug else 'off'} | {s.get('known slash')} "
                f"| {s.get('known no-slash')} | {s.get('unknown slash')} "
                f"| {s.get('unknown no-slash')} | {cell['leaks']} "
                f"| {'PASS' if cell['passed'] else 'FAIL'} |"
            )
    lines += [
        "",
        "### Request lines of the servers",
        "",
        "| server | requests | statuses | a line as written | records with a token | result |",
        "|---|---|---|---|---|---|",
    ]
    for name in SERVERS:
        cell = REPORT.servers[name]
        lines.append(
            f"| {_md(cell['what'])} | {_md(cell['requests'])} | {cell['statuses']} "
            f"| `{_md(cell['example'])}` | {cell['leaks']} "
            f"| {'PASS' if cell['passed'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"
