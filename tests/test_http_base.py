"""The shared HTTP base: retries, backoff, Retry-After, pacing, counters, error translation."""

from __future__ import annotations

import logging
import pickle
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from connectors.errors import (
    ConfigurationError,
    ConnectorError,
    NetworkError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.http import HttpClient, parse_retry_after
from tests.conftest import Recorder

BASE = "https://api.example.test/v1"


class DemoClient(HttpClient):
    service = "demo"
    display_name = "デモ"


def make_client(recorder: Recorder, **kwargs) -> DemoClient:
    return DemoClient(BASE, sleep=recorder.sleep, monotonic=recorder.monotonic, **kwargs)


@responses.activate
def test_retries_server_errors_with_jittered_backoff_then_succeeds(recorder):
    responses.get(f"{BASE}/items", status=502)
    responses.get(f"{BASE}/items", status=503)
    responses.get(f"{BASE}/items", json={"ok": True})
    client = make_client(recorder, backoff=0.5)

    response = client.request("GET", "/items", endpoint="/items")

    assert response.json() == {"ok": True}
    assert len(responses.calls) == 3
    assert len(recorder.sleeps) == 2
    assert 0 <= recorder.sleeps[0] <= 0.5
    assert 0 <= recorder.sleeps[1] <= 1.0
    assert client.calls == {"GET /items": 3}


@responses.activate
def test_backoff_is_capped_at_max_backoff(recorder):
    responses.get(f"{BASE}/items", status=500)
    client = make_client(recorder, max_retries=6, backoff=10.0, max_backoff=2.0)

    with pytest.raises(ServerError):
        client.request("GET", "/items")

    assert len(responses.calls) == 7
    assert all(0 <= d <= 2.0 for d in recorder.sleeps)


@responses.activate
def test_server_error_gives_up_after_bounded_retries(recorder):
    responses.get(f"{BASE}/items", status=500, body="<html>Bad Gateway</html>")
    client = make_client(recorder, max_retries=2)

    with pytest.raises(ServerError) as info:
        client.request("GET", "/items")

    assert len(responses.calls) == 3
    assert info.value.code == "server_error"
    assert not info.value.permanent


@responses.activate
def test_retry_false_sends_exactly_once(recorder):
    responses.post(f"{BASE}/items", status=500)
    client = make_client(recorder)

    with pytest.raises(ServerError):
        client.request("POST", "/items", json={}, retry=False)

    assert len(responses.calls) == 1


@responses.activate
def test_retry_after_seconds_is_honoured_and_slows_the_client_down(recorder):
    responses.get(f"{BASE}/items", status=429, headers={"Retry-After": "3"})
    responses.get(f"{BASE}/items", json={})
    responses.get(f"{BASE}/other", json={})
    client = make_client(recorder)

    client.request("GET", "/items")
    client.request("GET", "/other")

    # The retry waits exactly Retry-After; later calls are paced at least 1 s apart.
    assert recorder.sleeps == [3.0, 1.0]


@responses.activate
def test_retry_after_longer_than_max_backoff_gives_up_with_retry_at(recorder):
    responses.get(f"{BASE}/items", status=429, headers={"Retry-After": "600"})
    client = make_client(recorder, max_backoff=30.0)

    with pytest.raises(ThrottledError) as info:
        client.request("GET", "/items")

    assert len(responses.calls) == 1
    assert info.value.retry_after == 600
    assert info.value.retry_at > datetime.now(UTC) + timedelta(seconds=590)


def test_parse_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5", now=now) == 5.0
    assert parse_retry_after("Tue, 24 Nov 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 00:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


@responses.activate
def test_connection_error_is_retried_then_raised_as_network_error(recorder):
    responses.get(f"{BASE}/items", body=requests.exceptions.ConnectionError("refused"))
    client = make_client(recorder, max_retries=2)

    with pytest.raises(NetworkError) as info:
        client.request("GET", "/items")

    assert type(info.value) is NetworkError
    assert info.value.code == "network"
    assert "接続できませんでした" in info.value.message
    assert len(responses.calls) == 3
    assert info.value.__cause__ is None


@responses.activate
def test_connect_timeout_never_landed(recorder):
    responses.post(f"{BASE}/items", body=requests.exceptions.ConnectTimeout())
    client = make_client(recorder)

    with pytest.raises(RequestTimeout) as info:
        client.request("POST", "/items", retry=False)

    assert info.value.code == "timeout"
    assert info.value.may_have_landed is False


@responses.activate
def test_read_timeout_of_a_read_is_retried(recorder):
    responses.get(f"{BASE}/items", body=requests.exceptions.ReadTimeout())
    responses.get(f"{BASE}/items", json=[])
    client = make_client(recorder)

    assert client.request("GET", "/items").json() == []
    assert len(responses.calls) == 2


@responses.activate
def test_redirects_are_not_followed(recorder):
    responses.get(f"{BASE}/items", status=302, headers={"Location": "http://169.254.169.254/"})
    client = make_client(recorder)

    with pytest.raises(ConfigurationError) as info:
        client.request("GET", "/items")

    assert info.value.code == "bad_url"
    assert len(responses.calls) == 1


@responses.activate
def test_pacing_spaces_calls_by_rate(recorder):
    responses.get(f"{BASE}/items", json={})
    client = make_client(recorder, rate=2.0)

    for _ in range(3):
        client.request("GET", "/items")

    assert recorder.sleeps == [0.5, 0.5]


@responses.activate
def test_counters_are_exact_under_threads():
    responses.get(f"{BASE}/items/abc", json={})
    client = DemoClient(BASE, max_retries=0)

    def work() -> None:
        for _ in range(10):
            client.request("GET", "/items/abc", endpoint="/items/{id}")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert client.calls == {"GET /items/{id}": 80}


@responses.activate
def test_debug_log_has_method_endpoint_and_status_only(recorder, caplog):
    responses.get(f"{BASE}/items/secret-id", json={})
    client = make_client(recorder)

    with caplog.at_level(logging.DEBUG, logger="connectors.demo"):
        client.request("GET", "/items/secret-id", params={"q": "x"}, endpoint="/items/{id}")

    assert "GET /items/{id} -> 200" in caplog.text
    assert "secret-id" not in caplog.text


def test_urllib3_request_lines_are_redacted(caplog):
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logger.debug(
            '%s://%s:%s "%s %s %s" %s %s',
            "https",
            "h",
            443,
            "GET",
            "/api/v1/x?app_key=k&timestamp=1&sign=abcdef0123&page=1",
            "HTTP/1.1",
            200,
            10,
        )
        logger.debug('"%s %s"', "GET", "/v1.0/tokens/TOKEN123/available")

    assert "abcdef0123" not in caplog.text
    assert "TOKEN123" not in caplog.text
    assert "page=1" in caplog.text


def test_errors_pickle_and_render_safely():
    error = ThrottledError("制限されました", service="kot", code="kot_throttled", retry_after=2.0)

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, ConnectorError)
    assert (copy.code, copy.retry_after, str(copy)) == ("kot_throttled", 2.0, "制限されました")
    detailed = ServerError("エラー", service="kot", detail="HTTP 502")
    assert str(detailed) == "エラー (HTTP 502)"
    assert "HTTP 502" in repr(detailed)


def test_a_body_of_the_wrong_shape_is_named_for_its_service_without_secrets():
    class TokenClient(DemoClient):
        def _secrets(self) -> tuple[str, ...]:
            return ("tok-9f8e7d",)

    error = TokenClient(BASE)._format_error("employee tok-9f8e7d: not an object")

    assert isinstance(error, ResponseFormatError)
    assert error.message == "デモの応答の形式が想定と異なります。"
    assert (error.service, error.detail) == ("demo", "employee ***: not an object")
