"""SenseLinkClient against `responses`: signing, envelopes, both list shapes, paging, secrets."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime
from itertools import count
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.clock import JST
from connectors.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NetworkError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
)
from connectors.senselink import (
    PersonData,
    SenseLinkClient,
    SlPerson,
    SlRecord,
    UpdateUnsupported,
)
from tests.conftest import Recorder

URL = "https://link.example.jp/"
API = "https://link.example.jp/api"
APP_KEY = "appkey-acme"
SECRET = "S3cr3t-app-secret-value"
PUBLIC = "52.68.10.20"


def make_client(recorder: Recorder, *, url: str = URL, resolve=None, **kwargs) -> SenseLinkClient:
    ticks = count(1764032400000, 1000)
    return SenseLinkClient(
        base_url=url,
        app_key=APP_KEY,
        app_secret=SECRET,
        now_ms=lambda: next(ticks),
        resolve=resolve or (lambda host: [PUBLIC]),
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
        **kwargs,
    )


def ok(data) -> dict:
    return {"code": 200, "message": "OK", "data": data}


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def record(record_id: int, job_number: str | None = "2022") -> dict:
    return {
        "id": record_id,
        "sign_time": int(datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST).timestamp()),
        "sign_date": "2026-11-24",
        "user_name": "山田　太郎",
        "user_type": 1,
        "job_number": job_number,
    }


# ------------------------------------------------------------------------------ signing


@responses.activate
def test_every_call_is_signed(recorder):
    responses.get(f"{API}/v3/server/version", json=ok("3.2.1"))
    client = make_client(recorder)

    assert client.server_version() == "3.2.1"

    params = query(responses.calls[0])
    assert params["app_key"] == APP_KEY
    assert params["timestamp"] == "1764032400000"
    assert params["sign"] == md5(f"1764032400000#{SECRET}")


@responses.activate
def test_each_retry_is_signed_afresh(recorder):
    responses.get(f"{API}/v3/server/version", status=500)
    responses.get(f"{API}/v3/server/version", json=ok({"version": "3.2.1"}))
    client = make_client(recorder)

    assert client.server_version() == "3.2.1"

    first, second = (query(call) for call in responses.calls)
    assert first["timestamp"] != second["timestamp"]
    for params in (first, second):
        assert params["sign"] == md5(f"{params['timestamp']}#{SECRET}")


@pytest.mark.parametrize(
    "url",
    ["https://link.example.jp", "https://link.example.jp/", "https://link.example.jp/?x=1#top"],
)
@responses.activate
def test_api_root_is_base_url_plus_api(recorder, url):
    responses.get(f"{API}/v3/server/version", json=ok("1"))
    make_client(recorder, url=url).server_version()
    assert urlsplit(responses.calls[0].request.url).path == "/api/v3/server/version"


@responses.activate
def test_base_url_with_a_path(recorder):
    responses.get("https://link.example.jp/tenant/api/v3/server/version", json=ok("1"))
    make_client(recorder, url="https://link.example.jp/tenant").server_version()
    assert len(responses.calls) == 1


# ----------------------------------------------------------------------------- envelope


@responses.activate
def test_param_invalid_is_permanent(recorder):
    responses.get(f"{API}/v3/server/version", json={"code": 30001, "message": "Param Invalid"})
    client = make_client(recorder)

    with pytest.raises(ApiError) as info:
        client.server_version()

    error = info.value
    assert (error.code, error.permanent, error.remote_code) == (
        "senselink_param_invalid",
        True,
        30001,
    )
    assert "Param Invalid" in error.detail
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    "message",
    ["sign error", "Invalid Signature", "app_key not exist", "IP not allowed", "Auth failed"],
)
def test_auth_like_envelope_messages_are_authentication_errors(recorder, message):
    responses.get(f"{API}/v3/server/version", json={"code": 40001, "message": message})
    client = make_client(recorder)

    with pytest.raises(AuthenticationError) as info:
        client.server_version()

    assert info.value.code == "senselink_auth"
    assert info.value.permanent
    assert "Appキー" in info.value.message and "IP" in info.value.message
    assert "40001" in info.value.detail


@responses.activate
@pytest.mark.parametrize("status", [401, 403])
def test_http_401_403_are_authentication_errors(recorder, status):
    responses.get(f"{API}/v3/server/version", status=status, body="Forbidden")
    with pytest.raises(AuthenticationError):
        make_client(recorder).server_version()


@responses.activate
def test_other_envelope_codes_are_transient_api_errors(recorder):
    responses.get(f"{API}/v3/server/version", json={"code": 10086, "message": "busy"})
    client = make_client(recorder)

    with pytest.raises(ApiError) as info:
        client.server_version()

    error = info.value
    assert (error.code, error.permanent) == ("senselink_error", False)
    assert (error.remote_code, error.remote_message) == (10086, "busy")
    assert "10086" in error.detail and "busy" in error.detail


@responses.activate
def test_envelope_error_with_http_200_string_code(recorder):
    responses.get(f"{API}/v3/server/version", json={"code": "30001", "message": "Param Invalid"})
    with pytest.raises(ApiError, match="30001"):
        make_client(recorder).server_version()


@responses.activate
@pytest.mark.parametrize(
    "kwargs",
    [
        {"body": "<html>login</html>", "content_type": "text/html"},
        {"body": '{"code": 200, "data": ', "content_type": "application/json"},
        {"json": ["not", "an", "envelope"]},
        {"json": {"message": "no code"}},
    ],
)
def test_unreadable_bodies_are_response_format_errors(recorder, kwargs):
    responses.get(f"{API}/v3/server/version", **kwargs)
    with pytest.raises(ResponseFormatError):
        make_client(recorder).server_version()


@responses.activate
def test_transient_500_gives_up_after_bounded_retries(recorder):
    responses.get(f"{API}/v1/user/list", status=500, body="<html>oops</html>")
    client = make_client(recorder, max_retries=2)

    with pytest.raises(ServerError):
        client.list_persons()

    assert len(responses.calls) == 3


# ------------------------------------------------------------------------------ persons


@responses.activate
def test_person_list_as_plain_array_is_everything(recorder):
    responses.get(
        f"{API}/v1/user/list",
        json=ok(
            [
                {
                    "id": 1,
                    "name": "山田　太郎",
                    "job_number": "2022",
                    "birthday": "1990-04-01",
                    "entry_time": "2022-04-01",
                    "mail": "taro@example.jp",
                },
                {"id": "2", "name": "佐藤", "jobNumber": 7, "entryTime": 1648771200000, "mail": ""},
                {"id": 3, "name": "訪問者", "birthday": "", "entry_time": None, "job_number": ""},
                {"id": 4, "name": "X", "jobNumber": "9", "birthday": "soon", "entryTime": True},
            ]
        ),
    )
    client = make_client(recorder)

    persons = client.list_persons()

    assert persons[0] == SlPerson(
        id=1,
        name="山田　太郎",
        job_number="2022",
        birthday=date(1990, 4, 1),
        entry_time=date(2022, 4, 1),
        mail="taro@example.jp",
    )
    assert persons[1] == SlPerson(
        id=2, name="佐藤", job_number="7", birthday=None, entry_time=date(2022, 4, 1), mail=None
    )
    assert (persons[2].job_number, persons[2].birthday, persons[2].entry_time) == (None, None, None)
    assert (persons[3].birthday, persons[3].entry_time) == (None, None)
    assert len(responses.calls) == 1
    assert query(responses.calls[0])["type"] == "1"
    assert persons[0].data() == PersonData(
        job_number="2022",
        name="山田　太郎",
        birthday=date(1990, 4, 1),
        entry_time=date(2022, 4, 1),
        mail="taro@example.jp",
    )
    with pytest.raises(ValueError):
        persons[2].data()


@responses.activate
def test_person_list_as_pages_stops_at_total(recorder):
    responses.get(
        f"{API}/v1/user/list",
        json=ok({"list": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "total": 4}),
    )
    responses.get(
        f"{API}/v1/user/list",
        json=ok({"list": [{"id": 3, "name": "c"}, {"id": 4, "name": "d"}], "total": 4}),
    )
    client = make_client(recorder)

    persons = list(client.iter_persons(page_size=2))

    assert [p.id for p in persons] == [1, 2, 3, 4]
    assert [query(c)["page"] for c in responses.calls] == ["1", "2"]
    assert {query(c)["size"] for c in responses.calls} == {"2"}


@responses.activate
def test_person_list_as_pages_stops_after_a_short_page(recorder):
    responses.get(f"{API}/v1/user/list", json=ok({"list": [{"id": 1}, {"id": 2}], "page_num": 1}))
    responses.get(f"{API}/v1/user/list", json=ok({"list": [{"id": 3}], "page_num": 2}))
    client = make_client(recorder)

    assert [p.id for p in client.iter_persons(page_size=2)] == [1, 2, 3]
    assert len(responses.calls) == 2


@responses.activate
def test_person_list_that_repeats_a_page_is_an_error_not_the_end(recorder):
    responses.get(f"{API}/v1/user/list", json=ok({"list": [{"id": 1}, {"id": 2}]}))
    client = make_client(recorder)

    with pytest.raises(ResponseFormatError) as info:
        list(client.iter_persons(page_size=2))

    assert info.value.code == "senselink_paging"
    assert "同じページ" in info.value.message
    assert len(responses.calls) == 2


@responses.activate
def test_person_without_id_is_a_format_error(recorder):
    responses.get(f"{API}/v1/user/list", json=ok([{"name": "no id"}]))
    with pytest.raises(ResponseFormatError, match="形式"):
        make_client(recorder).list_persons()


def multipart_fields(call) -> dict[str, str]:
    content_type = call.request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=")[1].encode()
    fields = {}
    for part in call.request.body.split(b"--" + boundary):
        if b"Content-Disposition" not in part:
            continue
        head, _, value = part.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = value.removesuffix(b"\r\n").decode()
    return fields


@responses.activate
def test_create_person_posts_multipart_and_omits_empty_fields(recorder):
    responses.post(
        f"{API}/v1/user",
        json=ok({"id": 77, "name": "山田　太郎", "job_number": "0042", "birthday": "1990-04-01"}),
    )
    client = make_client(recorder)

    person_id = client.create_person(
        PersonData(
            job_number="0042",
            name="山田　太郎",
            birthday=date(1990, 4, 1),
            entry_time=None,
            mail=None,
        )
    )

    assert person_id == 77
    assert multipart_fields(responses.calls[0]) == {
        "name": "山田　太郎",
        "jobNumber": "0042",
        "birthday": "1990-04-01",
    }
    assert query(responses.calls[0])["sign"]
    assert client.calls == {"POST /api/v1/user": 1}


@responses.activate
def test_create_person_is_never_retried(recorder):
    responses.post(f"{API}/v1/user", body=requests.exceptions.ReadTimeout())
    client = make_client(recorder)

    with pytest.raises(RequestTimeout) as info:
        client.create_person(PersonData("0042", "山田", None, None, None))

    assert info.value.may_have_landed is True
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    ("data", "expected"),
    [({"id": 5, "name": "x"}, 5), (5, 5), ("5", 5), (None, None), (True, None)],
)
def test_create_person_answers_the_person_an_id_null_or_true(recorder, data, expected):
    responses.post(f"{API}/v1/user", json=ok(data))
    assert (
        make_client(recorder).create_person(PersonData("0042", "山田", None, None, None))
        == expected
    )


@responses.activate
@pytest.mark.parametrize("data", [False, "five", [{"id": 5}], {"name": "no id"}])
def test_create_person_with_unreadable_success_may_have_landed(recorder, data):
    responses.post(f"{API}/v1/user", json=ok(data))
    with pytest.raises(ResponseFormatError) as info:
        make_client(recorder).create_person(PersonData("0042", "山田", None, None, None))
    assert info.value.may_have_landed is True


@responses.activate
def test_create_person_sends_each_group_id(recorder):
    responses.post(f"{API}/v1/user", json=ok(None))
    make_client(recorder).create_person(
        PersonData("0042", "山田", None, None, None), groups=(3, 12)
    )
    body = responses.calls[0].request.body
    assert (
        body.count(b'name="groups"') == 2 and b"\r\n\r\n3\r\n" in body and b"\r\n\r\n12\r\n" in body
    )


@responses.activate
def test_update_person_sends_only_the_given_fields(recorder):
    responses.post(f"{API}/v1/user/update/77", json=ok(None))
    client = make_client(recorder)

    client.update_person(77, {"entryTime": "2022-04-01"})

    assert multipart_fields(responses.calls[0]) == {"entryTime": "2022-04-01"}
    assert client.calls == {"POST /api/v1/user/update/{id}": 1}


@responses.activate
@pytest.mark.parametrize(
    "changes",
    [{"mail": ""}, {"birthday": ""}, {"groups": "1"}, {"jobNumber": "1"}, {"avatarFile": "x"}],
)
def test_update_person_refuses_what_the_portal_must_never_send(recorder, changes):
    client = make_client(recorder)
    with pytest.raises(ApiError) as info:
        client.update_person(77, changes)
    assert info.value.code == "senselink_field_invalid" and info.value.permanent
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"code": 404, "message": "Not Found"}, 404),
        ({"code": 404, "message": "Not Found"}, 200),
        ({"code": 500, "message": "No handler found for POST /api/v1/user/update/77"}, 200),
        (None, 404),
        (None, 405),
    ],
)
def test_an_unknown_update_endpoint_is_unsupported(recorder, answer, status):
    if answer is None:
        responses.post(f"{API}/v1/user/update/77", status=status, body="<html>nope</html>")
    else:
        responses.post(f"{API}/v1/user/update/77", status=status, json=answer)
    with pytest.raises(UpdateUnsupported):
        make_client(recorder, max_retries=0).update_person(77, {"name": "山田"})


@responses.activate
@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"code": 30004, "message": "user not exist"}, 200),
        ({"code": 30004, "message": "user not found"}, 404),
        ({"code": 50000, "message": "User Not Found"}, 200),
    ],
)
def test_an_update_of_an_unknown_person_is_not_unsupported(recorder, answer, status):
    responses.post(f"{API}/v1/user/update/77", status=status, json=answer)
    with pytest.raises(ApiError) as info:
        make_client(recorder, max_retries=0).update_person(77, {"name": "山田"})
    assert not isinstance(info.value, UpdateUnsupported)


@responses.activate
def test_delete_person_is_a_signed_get(recorder):
    responses.get(f"{API}/v1/user/delete/77", json=ok(None))
    client = make_client(recorder)

    client.delete_person(77)

    assert query(responses.calls[0])["app_key"] == APP_KEY
    assert client.calls == {"GET /api/v1/user/delete/{id}": 1}


# ------------------------------------------------------------------------------ records


@responses.activate
def test_records_page_until_a_short_page(recorder):
    responses.get(f"{API}/v5/record/list", json=ok({"list": [record(1), record(2)], "page_num": 1}))
    responses.get(f"{API}/v5/record/list", json=ok({"list": [record(3, None)], "page_num": 2}))
    client = make_client(recorder)

    records = client.iter_records(day=date(2026, 11, 24), page_size=2)
    first = next(records)
    assert len(responses.calls) == 1  # pages are fetched lazily
    rest = list(records)

    assert [r.id for r in [first, *rest]] == [1, 2, 3]
    assert first == SlRecord(
        id=1,
        sign_time=datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST),
        job_number="2022",
        user_type=1,
        user_name="山田　太郎",
    )
    assert first.sign_time.utcoffset().total_seconds() == 9 * 3600
    assert rest[-1].job_number is None
    calls = [query(c) for c in responses.calls]
    assert [c["page"] for c in calls] == ["1", "2"]
    # The day widened by the margin (3 hours) on both sides; records are kept by sign_time.
    assert calls[0]["date_time_from"] == "2026-11-23 21:00:00"
    assert calls[0]["date_time_to"] == "2026-11-25 02:59:59"
    assert (calls[0]["size"], calls[0]["type"]) == ("2", "1")


@responses.activate
def test_records_short_first_page_needs_one_call(recorder):
    responses.get(f"{API}/v5/record/list", json=ok({"list": [record(1)], "page_num": 1}))
    client = make_client(recorder)

    assert [r.id for r in client.iter_records(day=date(2026, 11, 24))] == [1]
    assert len(responses.calls) == 1
    assert query(responses.calls[0])["size"] == "100"


@responses.activate
def test_records_with_bad_sign_time_name_the_field(recorder):
    bad = record(5)
    bad["sign_time"] = "yesterday"
    responses.get(f"{API}/v5/record/list", json=ok({"list": [bad]}))
    with pytest.raises(ResponseFormatError) as info:
        list(make_client(recorder).iter_records(day=date(2026, 11, 24)))
    assert "sign_time" in info.value.detail


# ----------------------------------------------------------------------------- netcheck


@responses.activate
def test_private_host_is_refused_before_sending(recorder):
    client = make_client(recorder, resolve=lambda host: ["10.0.0.5"])

    with pytest.raises(ConfigurationError) as info:
        client.server_version()

    assert info.value.code == "bad_url" and info.value.permanent
    assert len(responses.calls) == 0


@responses.activate
def test_host_is_re_resolved_after_the_cache_expires(recorder):
    answers = iter([[PUBLIC], ["169.254.169.254"]])
    responses.get(f"{API}/v3/server/version", json=ok("1"))
    client = make_client(recorder, resolve=lambda host: next(answers))

    client.server_version()
    client.server_version()  # within the cache window: no new resolution
    recorder.now += 60
    with pytest.raises(ConfigurationError, match="リンクローカル"):
        client.server_version()

    assert len(responses.calls) == 2


@responses.activate
def test_http_loopback_allowed_for_the_sandbox(recorder):
    responses.get("http://127.0.0.1:8765/api/v3/server/version", json=ok("sandbox"))
    client = make_client(recorder, url="http://127.0.0.1:8765/", allow_private_hosts=True)
    assert client.server_version() == "sandbox"


# ------------------------------------------------------------------------------ secrets


@responses.activate
def test_secret_and_sign_never_appear_in_logs_errors_or_reprs(recorder, caplog):
    version = f"{API}/v3/server/version"
    responses.get(version, json={"code": 40001, "message": "sign invalid"})
    responses.get(version, body=requests.exceptions.ConnectionError(f"failed {version}?sign=x"))
    responses.get(version, body=requests.exceptions.ReadTimeout(f"{version}?sign=x"))
    responses.get(version, status=500, body=f"<html>{SECRET}</html>")
    responses.get(version, json={"code": 50000, "message": f"bad {SECRET} {md5('x')}"})
    responses.get(version, json={"code": 30001, "message": "Param Invalid"})
    client = make_client(recorder, max_retries=0)
    texts = [repr(client)]
    raised = []

    with caplog.at_level(logging.DEBUG):
        for _ in range(6):
            with pytest.raises(ConnectorError) as info:
                client.server_version()
            raised.append(type(info.value))
            texts += [str(info.value), repr(info.value), info.value.detail, info.value.message]

    assert raised == [
        AuthenticationError,
        NetworkError,
        RequestTimeout,
        ServerError,
        ApiError,
        ApiError,
    ]
    signs = [query(call)["sign"] for call in responses.calls]
    assert len(signs) == 6
    texts.append(caplog.text)
    for text in texts:
        assert SECRET not in text
        assert md5("x") not in text
        for sign in signs:
            assert sign not in text


@responses.activate
def test_dns_failure_at_call_time_is_a_transient_network_error(recorder):
    def no_answer(host):
        raise OSError("temporary failure in name resolution")

    client = make_client(recorder, resolve=no_answer)

    with pytest.raises(NetworkError) as info:
        client.server_version()

    assert not info.value.permanent
    assert "ホスト名を解決できません" in info.value.message
    assert len(responses.calls) == 0
