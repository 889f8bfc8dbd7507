"""KotClient against `responses`: windows, errors, parsing, chunking, the punch POST, secrets."""

from __future__ import annotations

import json
import logging
import time as time_module
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import time_machine

from connectors.clock import JST
from connectors.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    ForbiddenWindowError,
    NetworkError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.kot import (
    KotClient,
    KotEmployee,
    KotPunch,
    forbidden_window_end,
    next_window_start,
)
from tests.conftest import Recorder

BASE = "https://api.kingtime.example/v1.0"
TOKEN = "tok3n5ecretV4lue0123456789abcdef"
NOON_JST = datetime(2026, 11, 24, 12, 0, tzinfo=JST)
KEY = "3f1c0000000000000000000000e9a0"


def make_client(recorder: Recorder, at: datetime = NOON_JST, **kwargs) -> KotClient:
    return KotClient(
        base_url=BASE,
        token=TOKEN,
        clock=lambda: at,
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
        **kwargs,
    )


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


# ----------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("at", "end"),
    [
        (datetime(2026, 11, 24, 8, 29, 59, tzinfo=JST), None),
        (datetime(2026, 11, 24, 8, 30, tzinfo=JST), datetime(2026, 11, 24, 10, 0, tzinfo=JST)),
        (datetime(2026, 11, 24, 9, 59, 59, tzinfo=JST), datetime(2026, 11, 24, 10, 0, tzinfo=JST)),
        (datetime(2026, 11, 24, 10, 0, tzinfo=JST), None),
        (datetime(2026, 11, 24, 17, 30, tzinfo=JST), datetime(2026, 11, 24, 18, 30, tzinfo=JST)),
        (datetime(2026, 11, 24, 18, 30, tzinfo=JST), None),
        # 00:45 UTC is 09:45 JST; 23:59 UTC on the 23rd is 08:59 JST on the 24th.
        (datetime(2026, 11, 24, 0, 45, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, tzinfo=JST)),
        (datetime(2026, 11, 23, 23, 59, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, tzinfo=JST)),
        (datetime(2026, 11, 24, 3, 0, tzinfo=UTC), None),
    ],
)
def test_forbidden_window_end(at, end):
    assert forbidden_window_end(at) == end


@pytest.mark.parametrize(
    ("at", "start"),
    [
        (datetime(2026, 11, 24, 7, 0, tzinfo=JST), datetime(2026, 11, 24, 8, 30, tzinfo=JST)),
        (datetime(2026, 11, 24, 8, 30, tzinfo=JST), datetime(2026, 11, 24, 8, 30, tzinfo=JST)),
        (datetime(2026, 11, 24, 9, 0, tzinfo=JST), datetime(2026, 11, 24, 17, 30, tzinfo=JST)),
        (datetime(2026, 11, 24, 19, 0, tzinfo=JST), datetime(2026, 11, 25, 8, 30, tzinfo=JST)),
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 25, 8, 30, tzinfo=JST)),
    ],
)
def test_next_window_start(at, start):
    assert next_window_start(at) == start


@responses.activate
@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 24, 9, 15, tzinfo=JST),
        datetime(2026, 11, 24, 8, 45, tzinfo=UTC),  # 17:45 JST
    ],
)
def test_calls_inside_a_window_are_refused_without_sending(recorder, at):
    client = make_client(recorder, at=at)

    with pytest.raises(ForbiddenWindowError) as info:
        client.list_employees()
    with pytest.raises(ForbiddenWindowError):
        client.list_punches(start=date(2026, 11, 24), end=date(2026, 11, 24), employee_keys=[KEY])

    assert len(responses.calls) == 0
    error = info.value
    assert error.code == "kot_forbidden_window"
    assert not error.permanent
    assert error.retry_at == forbidden_window_end(at)
    assert f"{error.retry_at:%H:%M}以降に再開します" in error.message


@responses.activate
def test_default_clock_uses_tokyo_time_whatever_the_host_zone(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time_module.tzset()
    try:
        with time_machine.travel(datetime(2026, 11, 24, 0, 40, tzinfo=UTC), tick=False):
            client = KotClient(base_url=BASE, token=TOKEN)
            with pytest.raises(ForbiddenWindowError) as info:
                client.list_employees()
    finally:
        monkeypatch.undo()
        time_module.tzset()
    assert info.value.retry_at == datetime(2026, 11, 24, 10, 0, tzinfo=JST)
    assert len(responses.calls) == 0


@responses.activate
def test_token_check_and_punch_are_allowed_inside_a_window(recorder):
    responses.get(f"{BASE}/tokens/{TOKEN}/available", json={"available": True})
    responses.post(
        f"{BASE}/daily-workings/timerecord/{KEY}",
        status=201,
        json={
            "date": "2026-11-24",
            "employeeKey": KEY,
            "timeRecord": {"time": "2026-11-24T09:01:00+09:00", "code": "1", "name": "出勤"},
        },
    )
    client = make_client(recorder, at=datetime(2026, 11, 24, 9, 0, tzinfo=JST))

    assert client.check_token() is True
    client.register_punch(
        employee_key=KEY,
        date=date(2026, 11, 24),
        time=datetime(2026, 11, 24, 9, 1, tzinfo=JST),
        code=1,
    )
    assert len(responses.calls) == 2
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_server_403_104_raises_forbidden_window_with_now_plus_ten_minutes(recorder):
    # The local clock says 08:29:50, KOT already counts the window.
    at = datetime(2026, 11, 24, 8, 29, 50, tzinfo=JST)
    responses.get(
        f"{BASE}/employees",
        status=403,
        json={
            "errors": [
                {"message": "次の時間帯(JST)はAPIへのアクセスが禁止されています", "code": 104}
            ]
        },
    )
    client = make_client(recorder, at=at)

    with pytest.raises(ForbiddenWindowError) as info:
        client.list_employees()

    assert info.value.retry_at == at + timedelta(minutes=10)
    assert len(responses.calls) == 1


@responses.activate
def test_server_403_104_inside_a_window_retries_at_its_end(recorder):
    responses.get(f"{BASE}/tokens/{TOKEN}/available", status=403, json={"errors": [{"code": 104}]})
    client = make_client(recorder, at=datetime(2026, 11, 24, 17, 40, tzinfo=JST))

    with pytest.raises(ForbiddenWindowError) as info:
        client.check_token()

    assert info.value.retry_at == datetime(2026, 11, 24, 18, 30, tzinfo=JST)


# ------------------------------------------------------------------------------ errors


@responses.activate
def test_403_100_is_a_permanent_authentication_error_not_retried(recorder):
    responses.get(
        f"{BASE}/employees",
        status=403,
        json={"errors": [{"message": "認証に失敗しました", "code": 100}]},
    )
    client = make_client(recorder)

    with pytest.raises(AuthenticationError) as info:
        client.list_employees()

    assert info.value.code == "kot_auth"
    assert info.value.permanent
    assert "アクセストークン" in info.value.message and "許可IPアドレス" in info.value.message
    assert len(responses.calls) == 1


@responses.activate
def test_429_then_303_body_then_success_honours_retry_after(recorder):
    responses.get(f"{BASE}/employees", status=429, headers={"Retry-After": "2"})
    responses.get(
        f"{BASE}/employees", status=429, json={"code": "303", "message": "Too Many Requests"}
    )
    responses.get(f"{BASE}/employees", json=[{"key": KEY, "code": "0042"}])
    client = make_client(recorder)

    employees = client.list_employees()

    assert [e.code for e in employees] == ["0042"]
    assert len(responses.calls) == 3
    assert recorder.sleeps[0] == 2.0  # Retry-After honoured; then backoff and learned pacing
    assert client.calls == {"GET /employees": 3}
    assert client.limiter.throttled == 2 and client.limiter.rate is not None


@responses.activate
def test_303_body_with_200_status_is_throttling_too(recorder):
    responses.get(f"{BASE}/employees", json={"code": "303", "message": "Too Many Requests"})
    client = make_client(recorder, max_retries=0, throttle_retries=1)

    with pytest.raises(ThrottledError) as info:
        client.list_employees()

    assert info.value.code == "kot_throttled"
    assert len(responses.calls) == 2  # resent once (its own budget), then given up


@responses.activate
def test_html_500_gateway_page_is_a_server_error_after_bounded_retries(recorder):
    responses.get(f"{BASE}/employees", status=502, body="<html><h1>502 Bad Gateway</h1></html>")
    client = make_client(recorder, max_retries=2)

    with pytest.raises(ServerError) as info:
        client.list_employees()

    assert info.value.code == "kot_server_error"
    assert not info.value.permanent
    assert len(responses.calls) == 3


@responses.activate
def test_500_300_is_maintenance(recorder):
    responses.get(
        f"{BASE}/employees",
        status=500,
        json={"errors": [{"message": "Resource Server Error.", "code": 300}]},
    )
    client = make_client(recorder, max_retries=0)

    with pytest.raises(ServerError, match="メンテナンス"):
        client.list_employees()


@responses.activate
def test_400_is_a_permanent_bad_request_with_kot_message(recorder):
    responses.get(
        f"{BASE}/employees",
        status=400,
        json={"errors": [{"message": f"日付の形式が不正です ({TOKEN})", "code": 1}]},
    )
    client = make_client(recorder)

    with pytest.raises(ApiError) as info:
        client.list_employees(on=date(2026, 11, 24))

    error = info.value
    assert (error.code, error.permanent, error.remote_code) == ("kot_bad_request", True, "1")
    assert "日付の形式が不正です" in error.message
    assert TOKEN not in str(error) and TOKEN not in error.remote_message
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>maintenance</html>", "text/html"),
        ('[{"key": "k", "code": "1"', "application/json"),
        ("", "application/json"),
        ('{"key": "k"}', "application/json"),  # an object where a list is expected
    ],
)
def test_unreadable_bodies_are_response_format_errors(recorder, body, content_type):
    responses.get(f"{BASE}/employees", body=body, content_type=content_type)
    client = make_client(recorder)

    with pytest.raises(ResponseFormatError) as info:
        client.list_employees()

    assert info.value.code == "bad_response"
    assert len(responses.calls) == 1


# ---------------------------------------------------------------------------- employees


@responses.activate
def test_list_employees_parses_fields_and_asks_for_additional_fields(recorder):
    responses.get(
        f"{BASE}/employees",
        json=[
            {
                "key": KEY,
                "code": "0042",
                "lastName": "山田",
                "firstName": "太郎",
                "divisionCode": "100",
                "birthDate": "1990-04-01",
                "hiredDate": "2022-04-01",
                "emailAddresses": ["", "taro@example.jp", "other@example.jp"],
            },
            {"key": 12345, "code": 7, "lastName": "佐藤"},  # ints, null fields omitted
        ],
    )
    client = make_client(recorder)

    first, second = client.list_employees(on=date(2026, 11, 24), include_resigned=True)

    assert first == KotEmployee(
        key=KEY,
        code="0042",
        last_name="山田",
        first_name="太郎",
        birth_date=date(1990, 4, 1),
        hired_date=date(2022, 4, 1),
        resignation_date=None,
        email="taro@example.jp",
        division_code="100",
    )
    assert first.full_name == "山田\u3000太郎"
    assert (second.key, second.code, second.first_name, second.email) == ("12345", "7", "", None)
    assert second.full_name == "佐藤"
    params = query(responses.calls[0])
    assert params["additionalFields"] == "hiredDate,birthDate,emailAddresses,resignationDate"
    assert params["date"] == "2026-11-24"
    assert params["includeResigner"] == "true"


@responses.activate
@pytest.mark.parametrize(
    ("employee", "needle"),
    [
        ({"code": "0042"}, "'key'"),
        ({"key": KEY}, "'code'"),
        ({"key": KEY, "code": "0042", "birthDate": "1990/04/01"}, "0042: 'birthDate'"),
        ({"key": KEY, "code": "0042", "hiredDate": 20220401}, "0042: 'hiredDate'"),
        ({"key": KEY, "code": "0042", "lastName": ["山田"]}, "0042: 'lastName'"),
        ("not an object", "not an object"),
    ],
)
def test_malformed_employees_name_the_field_and_employee(recorder, employee, needle):
    responses.get(f"{BASE}/employees", json=[employee])
    client = make_client(recorder)

    with pytest.raises(ResponseFormatError) as info:
        client.list_employees()

    assert needle in info.value.detail


# ------------------------------------------------------------------------------ punches


def timerecord_body(keys: list[str], day: str) -> list[dict]:
    return [
        {
            "date": day,
            "dailyWorkings": [
                {
                    "date": day,
                    "employeeKey": key,
                    "timeRecord": [
                        {"time": f"{day}T18:00:00+09:00", "code": "2"},
                        {"time": f"{day}T09:00:00+09:00", "code": 1},
                    ],
                }
                for key in keys
            ]
            + [{"date": day, "employeeKey": "nobody", "timeRecord": []}],
        }
    ]


@responses.activate
def test_list_punches_splits_range_at_62_days_and_chunks_keys(recorder):
    keys = [f"{i:032x}" for i in range(250)]

    def reply(request):
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        chunk = params["employeeKeys"].split(",")
        return 200, {}, json.dumps(timerecord_body(chunk[:1], params["start"]))

    responses.add_callback(responses.GET, f"{BASE}/daily-workings/timerecord", callback=reply)
    client = make_client(recorder)

    punches = client.list_punches(
        start=date(2026, 1, 1), end=date(2026, 1, 1) + timedelta(days=99), employee_keys=keys
    )

    calls = [query(call) for call in responses.calls]
    assert len(calls) == 6
    spans = sorted({(c["start"], c["end"]) for c in calls})
    assert spans == [("2026-01-01", "2026-03-03"), ("2026-03-04", "2026-04-10")]
    sizes = [len(c["employeeKeys"].split(",")) for c in calls]
    assert sorted(sizes) == [50, 50, 100, 100, 100, 100]
    assert all(len(call.request.url) < 4000 for call in responses.calls)
    sent = set()
    for c in calls:
        sent.update(c["employeeKeys"].split(","))
    assert sent == set(keys)
    # 3 chunks x 2 spans, first key of each chunk with 2 punches, sorted by time.
    assert len(punches) == 12
    assert punches == sorted(punches, key=lambda p: (p.time, p.employee_key))
    assert punches[0] == KotPunch(
        employee_key=keys[0],
        date=date(2026, 1, 1),
        time=datetime(2026, 1, 1, 9, 0, tzinfo=JST),
        code=1,
    )


@responses.activate
def test_list_punches_without_keys_sends_nothing(recorder):
    client = make_client(recorder)
    assert client.list_punches(start=date(2026, 1, 1), end=date(2026, 1, 2), employee_keys=[]) == []
    assert len(responses.calls) == 0


@responses.activate
def test_list_punches_rejects_malformed_punch(recorder):
    body = timerecord_body([KEY], "2026-11-24")
    body[0]["dailyWorkings"][0]["timeRecord"][0]["time"] = "yesterday"
    responses.get(f"{BASE}/daily-workings/timerecord", json=body)
    client = make_client(recorder)

    with pytest.raises(ResponseFormatError, match="形式"):
        client.list_punches(start=date(2026, 11, 24), end=date(2026, 11, 24), employee_keys=[KEY])


@responses.activate
def test_register_punch_sends_jst_time_once(recorder):
    responses.post(
        f"{BASE}/daily-workings/timerecord/{KEY}",
        status=201,
        json={
            "date": "2026-11-24",
            "employeeKey": KEY,
            "timeRecord": {"time": "2026-11-24T08:57:03+09:00", "code": "1", "name": "出勤"},
        },
    )
    client = make_client(recorder)

    punch = client.register_punch(
        employee_key=KEY,
        date=date(2026, 11, 24),
        time=datetime(2026, 11, 23, 23, 57, 3, 999, tzinfo=UTC),
        code=1,
    )

    sent = json.loads(responses.calls[0].request.body)
    # The reference types the code as a string enum ("1"-"4"), so it is sent as a string.
    assert sent == {"date": "2026-11-24", "time": "2026-11-24T08:57:03+09:00", "code": "1"}
    assert punch == KotPunch(
        employee_key=KEY,
        date=date(2026, 11, 24),
        time=datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST),
        code=1,
    )
    assert client.calls == {"POST /daily-workings/timerecord/{key}": 1}


@responses.activate
def test_register_punch_with_odd_success_body_returns_what_was_sent(recorder):
    responses.post(f"{BASE}/daily-workings/timerecord/{KEY}", status=201, body="")
    client = make_client(recorder)

    punch = client.register_punch(
        employee_key=KEY,
        date=date(2026, 11, 24),
        time=datetime(2026, 11, 24, 18, 2, tzinfo=JST),
        code=2,
    )

    assert punch.code == 2 and punch.time == datetime(2026, 11, 24, 18, 2, tzinfo=JST)


@responses.activate
def test_register_punch_read_timeout_is_sent_once_and_may_have_landed(recorder):
    responses.post(
        f"{BASE}/daily-workings/timerecord/{KEY}", body=requests.exceptions.ReadTimeout()
    )
    client = make_client(recorder)

    with pytest.raises(RequestTimeout) as info:
        client.register_punch(
            employee_key=KEY,
            date=date(2026, 11, 24),
            time=datetime(2026, 11, 24, 9, 0, tzinfo=JST),
            code=1,
        )

    assert len(responses.calls) == 1
    assert info.value.may_have_landed is True
    assert info.value.code == "timeout"
    assert recorder.sleeps == []


def test_register_punch_refuses_naive_time(recorder):
    client = make_client(recorder)
    with pytest.raises(ValueError):
        client.register_punch(
            employee_key=KEY, date=date(2026, 11, 24), time=datetime(2026, 11, 24, 9, 0), code=1
        )


# ------------------------------------------------------------------------------ secrets


@responses.activate
def test_token_never_appears_in_logs_errors_or_reprs(recorder, caplog):
    token_path = f"{BASE}/tokens/{TOKEN}/available"
    responses.get(token_path, status=403, json={"errors": [{"code": 100, "message": "認証に失敗"}]})
    responses.get(token_path, body=requests.exceptions.ConnectionError(f"failed {token_path}"))
    responses.get(token_path, body=requests.exceptions.ReadTimeout(f"timeout {token_path}"))
    responses.get(
        f"{BASE}/employees", status=400, json={"errors": [{"code": 1, "message": f"bad {TOKEN}"}]}
    )
    responses.get(f"{BASE}/employees", status=500, body=f"<html>{TOKEN}</html>")
    responses.get(f"{BASE}/employees", body=f"not json {TOKEN}")
    client = make_client(recorder, max_retries=0)
    texts = [repr(client)]
    raised = []

    with caplog.at_level(logging.DEBUG):
        for call in [client.check_token] * 3 + [client.list_employees] * 3:
            with pytest.raises(ConnectorError) as info:
                call()
            raised.append(type(info.value))
            texts += [str(info.value), repr(info.value), info.value.detail, info.value.message]

    assert raised == [
        AuthenticationError,
        NetworkError,
        RequestTimeout,
        ApiError,
        ServerError,
        ResponseFormatError,
    ]
    texts.append(caplog.text)
    assert len(texts) > 10
    for text in texts:
        assert TOKEN not in text


@responses.activate
def test_token_that_cannot_be_sent_is_a_configuration_error(recorder):
    client = KotClient(base_url=BASE, token="abc\ndef", clock=lambda: NOON_JST)

    with pytest.raises(ConfigurationError) as info:
        client.list_employees()

    assert info.value.code == "kot_auth" and info.value.permanent
    assert "abc" not in str(info.value)
    assert len(responses.calls) == 0
