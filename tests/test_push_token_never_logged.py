"""The push token (the receiving path is the secret) reaches no log: not Django's request log
("Method Not Allowed (GET): …", "Not Found: …", "Internal Server Error: …"), not the dev
server's request line, not gunicorn's access line, not a traceback — whatever the method,
status or error, DEBUG on or off."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from django.http import UnreadablePostError
from django.test import Client

from integrations.models import ConnectSetting
from integrations.services import push
from tests.log_capture import every_record, leaks, start_dev_server
from tests.world import make_acme

METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.fixture
def acme(db):
    return ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))


@pytest.fixture
def woken(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(push, "wake", lambda setting_id: calls.append(setting_id) or True)
    return calls


def body() -> str:
    return json.dumps({"eventType": "30000", "messageId": uuid.uuid4().hex, "data": {}})


def paths(setting) -> list[str]:
    known = setting.senselink_push_path
    return [known, known.rstrip("/")]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("method", METHODS)
def test_no_method_writes_the_token_to_any_log(acme, woken, settings, method, debug):
    settings.DEBUG = debug
    client = Client()
    with every_record() as records:
        for path in paths(acme):
            response = client.generic(method, path, data=body(), content_type="application/json")
            assert response.status_code == 405, (method, path)
            assert response["Allow"] == "POST"
    assert leaks(records, acme.push_token) == []
    assert woken == []


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_path_below_or_beside_the_token_logs_no_token(acme, woken, settings, debug):
    settings.DEBUG = debug
    token = acme.push_token
    client = Client()
    with every_record() as records:
        for path in [f"/hooks/senselink/{token}/extra/", f"/hooks/senselink/{token}/a/b"]:
            response = client.post(path, data=body(), content_type="application/json")
            assert response.status_code == 404, path
        # Other spellings of the path are the view's too: Django logs none of them.
        for path in [f"/hooks//senselink//{token}/x", "/hooks/senselink", "/hooks/senselink/"]:
            response = client.post(path, data=body(), content_type="application/json")
            assert response.status_code == 404, path
    assert leaks(records, token) == []
    # A path the view does not own: Django's "Not Found" line is written without the token
    # (the record's request object still holds it; no handler of ours writes that).
    with every_record() as records:
        for path in [f"/HOOKS/SenseLink/{token}/", f"/x/hooks/senselink/{token}"]:
            assert client.post(path, data=body(), content_type="x").status_code == 404
    written = [logging.Formatter("%(message)s").format(r) for r in records]
    assert [line for line in written if line.startswith("Not Found")] == [
        "Not Found: /HOOKS/SenseLink/***/",
        "Not Found: /x/hooks/senselink/***",
    ]
    assert not [line for line in written if token in line]


def test_an_exception_inside_the_view_logs_no_token(acme, woken, monkeypatch):
    """The body cannot be read (the client went away), then the service fails with the path in
    its message: 200 both times (a 500 would stop every later push), and no token logged."""
    token = acme.push_token

    def unreadable(self, *args):
        raise UnreadablePostError(f"connection reset reading /hooks/senselink/{token}/")

    client = Client(raise_request_exception=False)
    with every_record() as records:
        with monkeypatch.context() as patch:
            patch.setattr("django.http.request.HttpRequest.read", unreadable)
            assert (
                client.post(acme.senselink_push_path, data=body(), content_type="x").status_code
                == 200
            )

        def failing(**kwargs):
            raise RuntimeError(f"cannot store a push of /hooks/senselink/{kwargs['token']}/")

        monkeypatch.setattr(push, "receive_push", failing)
        response = client.post(acme.senselink_push_path, data=body(), content_type="x")
        assert response.status_code == 200
    assert [r.getMessage()[:40] for r in records if r.name == "portal.hooks"] == [
        "push receiver failed (UnreadablePostErro",
        "push receiver failed (RuntimeError: cann",
    ]
    assert leaks(records, token) == []


def test_every_log_record_is_redacted_whatever_its_logger(acme):
    """The one mechanism (portal.log_redaction, installed by settings.LOGGING_CONFIG): the
    record factory cuts the token from the message and from a traceback quoting the path."""
    token = acme.push_token
    with every_record() as records:
        logging.getLogger("some.library").warning("fetched %s", f"/hooks/senselink/{token}/")
        try:
            raise ValueError(f"bad path hooks/senselink/{token}")
        except ValueError:
            logging.getLogger("another").exception("failed")
    assert [r.getMessage() for r in records] == ["fetched /hooks/senselink/***/", "failed"]
    assert "hooks/senselink/***" in records[1].exc_text
    assert leaks(records, token) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_the_dev_server_request_line_hides_the_token(woken, settings, debug):
    settings.DEBUG = debug
    acme = ConnectSetting.objects.get(tenant=make_acme(realtime_clock_in=True))
    server = start_dev_server()
    base = f"http://127.0.0.1:{server.port}"
    session = requests.Session()
    session.trust_env = False
    statuses = []
    try:
        with every_record() as records:
            for path in paths(acme):
                statuses.append(session.post(base + path, data=body(), timeout=5).status_code)
                statuses.append(session.get(base + path, timeout=5).status_code)
                statuses.append(session.post(base + path, data=b"\xff", timeout=5).status_code)
            unknown = f"/hooks/senselink/{'Q' * 43}/"
            statuses.append(session.post(base + unknown, data=body(), timeout=5).status_code)
    finally:
        server.terminate()
    assert statuses == [200, 405, 200, 200, 405, 200, 404]
    lines = [r.getMessage() for r in records if r.name == "django.server"]
    assert len(lines) == 7 and all("/hooks/senselink/***" in line for line in lines), lines
    assert leaks(records, acme.push_token) == [] and leaks(records, "Q" * 43) == []


def test_the_gunicorn_access_line_hides_the_token(acme):
    from gunicorn.config import Config

    from portal import gunicorn_conf
    from portal.gunicorn_logging import RedactingLogger

    config = Config()
    config.set("accesslog", "/dev/null")
    config.set("access_log_format", gunicorn_conf.access_log_format)
    logger = RedactingLogger(config)
    path = acme.senselink_push_path
    for uri in (path, path.rstrip("/"), path + "?x=1"):
        response = SimpleNamespace(status="405 Method Not Allowed", sent=0, headers=())
        request = SimpleNamespace(headers=(("REFERER", f"https://x{uri}"),))
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": uri,
            "PATH_INFO": uri.split("?")[0],
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
        }
        with every_record() as records:
            logger.access(response, request, environ, timedelta(milliseconds=3))
        [line] = [r.getMessage() for r in records if r.name == "gunicorn.access"]
        assert '"GET /hooks/senselink/***' in line
        assert leaks(records, acme.push_token) == []
