"""Contract tests: the real SenseLinkClient against the sandbox's fake SenseLink, over loopback HTTP.

Signing (a wrong secret is a clear, permanent error), the server version, persons in both list
shapes, create / update / delete, records paged to the last short page and filtered by type,
throttling, 5xx, timeouts, malformed and wrongly typed answers, and a create never sent twice.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest

from connectors.clock import JST
from connectors.errors import (
    ApiError,
    AuthenticationError,
    ConnectorError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.sandbox.data import finish_record
from connectors.sandbox.senselink import VERSION
from connectors.senselink import PersonData, SenseLinkClient, SlPerson, UpdateUnsupported
from tests.conftest import Recorder

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=JST)

VERSION_CALL = "GET /api/v3/server/version"
PERSONS = "GET /api/v1/user/list"
CREATE = "POST /api/v1/user"
UPDATE = "POST /api/v1/user/update/{id}"
DELETE = "GET /api/v1/user/delete/{id}"
RECORDS = "GET /api/v5/record/list"


@pytest.fixture
def sb(make_sandbox):
    return make_sandbox(day=DAY, now=lambda: NOON)


def client_for(sb, recorder: Recorder, **kwargs) -> SenseLinkClient:
    kwargs.setdefault("app_key", sb.app_key)
    kwargs.setdefault("app_secret", sb.app_secret)
    kwargs.setdefault("backoff", 0.01)
    return SenseLinkClient(
        base_url=sb.senselink_url,
        allow_private_hosts=True,  # the sandbox listens on loopback over http
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
        **kwargs,
    )


@pytest.fixture
def client(sb, recorder) -> SenseLinkClient:
    return client_for(sb, recorder)


def records_of(day: date, counts: dict[int, int]) -> list[dict]:
    """`counts[user_type]` records of that type on `day`, one minute apart from 07:00."""
    base = int(datetime(day.year, day.month, day.day, 7, 0, tzinfo=JST).timestamp())
    rows, n = [], 0
    for user_type, how_many in counts.items():
        for i in range(how_many):
            n += 1
            employee = user_type == 1
            rows.append(
                finish_record(
                    900_000 + n,
                    base + n * 60,
                    {
                        "user_type": user_type,
                        "job_number": f"{i:04d}" if employee else None,
                        "user_id": 5000 + i if user_type != 3 else 0,
                        "user_name": f"社員{i}" if employee else "",
                    },
                )
            )
    return rows


def add_persons(sb, how_many: int) -> None:
    for i in range(how_many):
        sb.senselink.add_person(name=f"試験　{i}", job_number=f"P{i:04d}", groups=[1])


# ------------------------------------------------------------------------------ signing


def test_server_version_with_a_good_signature(sb, client):
    assert client.server_version() == VERSION
    assert sb.request_counts() == {VERSION_CALL: 1}


def test_a_wrong_secret_is_a_clear_permanent_authentication_error(sb, recorder):
    client = client_for(sb, recorder, app_secret="not-the-secret-at-all")

    with pytest.raises(AuthenticationError) as info:
        client.server_version()

    error = info.value
    assert error.permanent and error.code == "senselink_auth"
    assert "署名認証に失敗" in error.message and "Appシークレット" in error.message
    assert "10003" in error.detail and "sign error" in error.detail
    assert sb.request_counts() == {VERSION_CALL: 1}  # not retried: it cannot get better


def test_an_unknown_app_key_is_a_permanent_authentication_error(sb, recorder):
    client = client_for(sb, recorder, app_key="no-such-key")

    with pytest.raises(AuthenticationError) as info:
        client.server_version()

    assert info.value.permanent and "10004" in info.value.detail
    assert sb.request_counts() == {VERSION_CALL: 1}


def test_a_caller_ip_not_allowed_is_an_authentication_error(sb, client):
    sb.senselink.allowed_ips = {"203.0.113.7"}

    with pytest.raises(AuthenticationError) as info:
        client.server_version()

    assert info.value.permanent and "10006" in info.value.detail


def test_a_skewed_clock_is_refused_with_the_remote_message(sb, recorder):
    skewed = client_for(sb, recorder, now_ms=lambda: int((time.time() - 3600) * 1000))

    with pytest.raises(ConnectorError) as info:
        skewed.server_version()

    assert "10005" in info.value.detail and "timestamp expired" in info.value.detail


def test_signature_fault_mid_listing_is_an_authentication_error(sb, client):
    sb.faults.add("senselink", "signature", path="record/list", after=1)
    sb.senselink.set_records(DAY, records_of(DAY, {1: 150}))

    with pytest.raises(AuthenticationError):
        list(client.iter_records(day=DAY))

    assert sb.request_counts() == {RECORDS: 2}


def test_each_retry_is_signed_afresh(sb, recorder):
    """A retried call after a 500 passes the signature check again with a new timestamp."""
    ticks = iter(range(0, 10_000, 1000))
    client = client_for(sb, recorder, now_ms=lambda: int(time.time() * 1000) - 60_000 + next(ticks))
    sb.faults.add("senselink", "maintenance", path="version", times=2)

    assert client.server_version() == VERSION
    assert sb.request_counts() == {VERSION_CALL: 3}


# ------------------------------------------------------------------------------ persons


def test_persons_as_pages(sb, client):
    persons = list(client.iter_persons())

    assert [p.id for p in persons] == sorted(sb.senselink.persons)
    stored = sb.senselink.persons
    for person in persons:
        assert isinstance(person, SlPerson)
        assert person.name == stored[person.id]["name"]
        assert person.job_number == stored[person.id]["job_number"]
    assert any(p.job_number is None for p in persons)  # hand-registered, no number
    assert sb.request_counts() == {PERSONS: 1}


def test_persons_as_pages_to_the_last_short_page(sb, client):
    add_persons(sb, 250)  # 253 with the 3 hand-registered: 100, 100, 53

    persons = client.list_persons()

    assert len(persons) == 253 and len({p.id for p in persons}) == 253
    assert sb.request_counts() == {PERSONS: 3}


def test_persons_as_pages_stop_at_the_total(sb, client):
    add_persons(sb, 197)  # exactly 200: the total says two full pages are everything

    assert len(client.list_persons()) == 200
    assert sb.request_counts() == {PERSONS: 2}


def test_persons_as_a_plain_array(sb, client):
    add_persons(sb, 250)
    sb.senselink.person_list_shape = "array"

    persons = client.list_persons()

    assert [p.id for p in persons] == sorted(sb.senselink.persons)
    assert sb.request_counts() == {PERSONS: 1}


def test_create_person(sb, client):
    person = PersonData(
        job_number="0042",
        name="山田　太郎",
        birthday=date(1990, 4, 1),
        entry_time=date(2020, 4, 1),
        mail="taro.yamada@example.co.jp",
    )

    created = client.create_person(person, groups=(1, 3))

    listed = {p.id: p for p in client.list_persons()}
    assert listed[created].data() == person  # leading zero kept, dates round-trip
    stored = sb.senselink.persons[created]
    assert stored["job_number"] == "0042" and stored["mail"] == "taro.yamada@example.co.jp"
    assert stored["birthday"] == "1990-04-01" and stored["entry_time"] == "2020-04-01"
    assert stored["groups"] == [1, 3]  # the terminals bound to these groups know the person


def test_create_person_without_optional_fields(sb, client):
    created = client.create_person(
        PersonData(job_number="A0004", name="佐藤　花子", birthday=None, entry_time=None, mail=None)
    )

    stored = sb.senselink.persons[created]
    assert stored["birthday"] is None and stored["mail"] is None and stored["entry_time"] is None
    assert stored["groups"] == []  # no group given: in no group (the manual's reading)


def test_create_person_with_a_duplicate_number_is_an_api_error_sent_once(sb, client):
    existing = sb.senselink.add_person(name="既存　社員", job_number="1001")

    with pytest.raises(ApiError) as info:
        client.create_person(
            PersonData(job_number="1001", name="新規", birthday=None, entry_time=None, mail=None)
        )

    assert info.value.remote_code == 30002
    assert sb.request_counts() == {CREATE: 1}
    assert [p["id"] for p in sb.senselink.persons.values() if p["job_number"] == "1001"] == [
        existing["id"]
    ]


def test_create_person_with_a_too_long_field_is_refused_before_sending(sb, client):
    with pytest.raises(ApiError) as info:
        client.create_person(
            PersonData(
                job_number="1001", name="長い", birthday=None, entry_time=None, mail="m" * 46
            )
        )

    assert info.value.permanent and info.value.code == "senselink_field_invalid"
    assert "mail: longer than 45" in info.value.detail
    assert sb.request_counts() == {}  # never sent


def test_a_create_the_sandbox_refuses_is_a_permanent_param_invalid(sb, client):
    with pytest.raises(ApiError) as info:
        client.create_person(PersonData("1001", "名" * 65, None, None, None))  # sandbox: name ≤ 64

    assert info.value.permanent and info.value.remote_code == 30001


def test_update_person_sends_only_what_changed_and_keeps_the_rest(sb, client):
    created = client.create_person(
        PersonData("1001", "旧姓　花子", date(1990, 1, 2), date(2020, 4, 1), "old@example.jp"),
        groups=(1,),
    )
    sb.senselink.persons[created]["avatar"] = "/static/avatar/hand-registered.jpg"

    client.update_person(created, {"name": "新姓　花子", "entryTime": "2021-04-01"})

    stored = sb.senselink.persons[created]
    assert stored["name"] == "新姓　花子" and stored["entry_time"] == "2021-04-01"
    assert stored["birthday"] == "1990-01-02" and stored["mail"] == "old@example.jp"
    assert stored["groups"] == [1] and stored["avatar"] == "/static/avatar/hand-registered.jpg"
    assert sb.request_counts()[UPDATE] == 1


def test_update_unknown_person_is_an_error(sb, client):
    with pytest.raises(ApiError) as info:
        client.update_person(987654, {"name": "誰か"})

    assert info.value.remote_code == 30004
    assert info.value.code != "senselink_update_unsupported"  # the person, not the endpoint


def test_update_on_a_server_without_the_endpoint_is_unsupported(sb, client):
    created = client.create_person(PersonData("1001", "旧姓", None, None, None))
    sb.senselink.configure(update_mode="unsupported")

    with pytest.raises(UpdateUnsupported) as info:
        client.update_person(created, {"name": "新姓"})

    assert info.value.code == "senselink_update_unsupported" and info.value.permanent
    assert "更新API" in info.value.message


def test_delete_person(sb, client):
    created = client.create_person(PersonData("1001", "削除　予定", None, None, None))

    client.delete_person(created)

    assert created not in sb.senselink.persons
    assert sb.request_counts()[DELETE] == 1
    with pytest.raises(ApiError) as info:
        client.delete_person(created)
    assert info.value.remote_code == 30004


def test_person_create_that_timed_out_is_sent_exactly_once(sb, recorder):
    sb.faults.add("senselink", "timeout_after_store", path="/api/v1/user", method="POST", delay=2)
    client = client_for(sb, recorder, timeout=(2.0, 0.5), max_retries=5)
    before = len(sb.senselink.persons)

    with pytest.raises(RequestTimeout) as info:
        client.create_person(PersonData("1001", "一度　だけ", None, None, None))

    assert info.value.may_have_landed
    assert sb.request_counts() == {CREATE: 1}
    assert len(sb.senselink.persons) == before + 1
    assert "1001" in sb.senselink.persons_by_job_number()


# ------------------------------------------------------------------------------ records


@pytest.mark.parametrize(
    ("employees", "requests_made"),
    [(0, 1), (99, 1), (100, 2), (250, 3), (200, 3)],
)
def test_records_page_to_the_last_short_page(sb, client, employees, requests_made):
    sb.senselink.set_records(DAY, records_of(DAY, {1: employees, 2: 7, 3: 5}))

    records = list(client.iter_records(day=DAY))

    assert len(records) == employees
    assert len({r.id for r in records}) == employees
    assert all(r.user_type == 1 and r.job_number for r in records)
    assert sb.request_counts() == {RECORDS: requests_made}


def test_records_are_fetched_page_by_page_not_all_at_once(sb, client):
    sb.senselink.set_records(DAY, records_of(DAY, {1: 250}))

    records = client.iter_records(day=DAY)
    first = next(records)

    assert sb.request_counts() == {RECORDS: 1}
    assert first.sign_time == datetime(2026, 11, 24, 7, 1, tzinfo=JST)
    rest = list(records)
    assert len(rest) == 249 and sb.request_counts() == {RECORDS: 3}


def test_records_of_visitors_and_strangers_are_filtered_by_type(sb, client):
    sb.senselink.set_records(DAY, records_of(DAY, {1: 30, 2: 7, 3: 5}))

    visitors = list(client.iter_records(day=DAY, user_type=2))
    strangers = list(client.iter_records(day=DAY, user_type=3))

    assert len(visitors) == 7 and {r.user_type for r in visitors} == {2}
    assert len(strangers) == 5 and {r.user_type for r in strangers} == {3}
    assert all(r.job_number is None for r in visitors + strangers)


def test_generated_records_fields(sb, client):
    """The sandbox's own day: employees (some unknown to KOT) but no visitor or stranger."""
    raw = {r["id"]: r for r in sb.senselink.records_for(DAY)}

    records = list(client.iter_records(day=DAY))

    assert records and {r.user_type for r in records} == {1}
    assert len(records) == sum(1 for r in raw.values() if r["user_type"] == 1)
    for record in records:
        source = raw[record.id]
        assert record.job_number == source["job_number"]
        assert record.sign_time == datetime.fromtimestamp(source["sign_time"], JST)
        assert record.sign_time.date() == DAY
        assert record.user_name == source["user_name"]


def test_records_stay_inside_the_local_day(sb, client):
    late = datetime(2026, 11, 24, 23, 59, 30, tzinfo=JST)
    sb.senselink.set_records(DAY, [])
    sb.senselink.set_records(DAY + timedelta(days=1), [])
    sb.senselink.add_record(when=late, job_number="1001")
    sb.senselink.add_record(when=late + timedelta(minutes=1), job_number="1001")

    assert [r.sign_time for r in client.iter_records(day=DAY)] == [late]


# ------------------------------------------------------------------------- transient faults


def test_throttled_then_success_after_one_retry(sb, client, recorder):
    sb.faults.add("senselink", "throttle", path="record/list", times=1)
    sb.senselink.set_records(DAY, records_of(DAY, {1: 3}))

    assert len(list(client.iter_records(day=DAY))) == 3
    assert sb.request_counts() == {RECORDS: 2}
    assert recorder.sleeps and recorder.sleeps[0] == pytest.approx(1.0)  # Retry-After: 1


def test_throttled_every_time_is_a_throttled_error(sb, recorder):
    sb.faults.add("senselink", "throttle", path="version", times=None)
    client = client_for(sb, recorder, max_retries=2)

    with pytest.raises(ThrottledError):
        client.server_version()

    assert sb.request_counts() == {VERSION_CALL: 3}


@pytest.mark.parametrize("kind", ["http500_html", "maintenance"])
def test_500_is_a_server_error_after_bounded_retries(sb, recorder, kind):
    sb.faults.add("senselink", kind, path="user/list", times=None)
    client = client_for(sb, recorder, max_retries=3)

    with pytest.raises(ServerError) as info:
        client.list_persons()

    assert not info.value.permanent and "HTTP 500" in info.value.detail
    assert sb.request_counts() == {PERSONS: 4}
    assert len(recorder.sleeps) == 3


def test_500_then_success_mid_paging(sb, client):
    sb.faults.add("senselink", "http500_html", path="record/list", after=1, times=1)
    sb.senselink.set_records(DAY, records_of(DAY, {1: 150}))

    assert len(list(client.iter_records(day=DAY))) == 150
    assert sb.request_counts() == {RECORDS: 3}


def test_500_on_a_person_create_is_not_retried(sb, client):
    sb.faults.add("senselink", "http500_html", path="/api/v1/user", method="POST", times=None)

    with pytest.raises(ServerError):
        client.create_person(PersonData("1001", "一度", None, None, None))

    assert sb.request_counts() == {CREATE: 1}


def test_timeout_is_a_request_timeout(sb, recorder):
    sb.faults.add("senselink", "timeout", path="version", times=None, delay=2)
    client = client_for(sb, recorder, timeout=(2.0, 0.5), max_retries=1)

    with pytest.raises(RequestTimeout) as info:
        client.server_version()

    assert not info.value.may_have_landed
    assert sb.request_counts() == {VERSION_CALL: 2}


def test_timeout_once_then_success(sb, recorder):
    sb.faults.add("senselink", "timeout", path="record/list", times=1, delay=2)
    sb.senselink.set_records(DAY, records_of(DAY, {1: 3}))
    client = client_for(sb, recorder, timeout=(2.0, 0.5))

    assert len(list(client.iter_records(day=DAY))) == 3
    assert sb.request_counts() == {RECORDS: 2}


# ------------------------------------------------------------------ malformed and wrong types


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type"])
@pytest.mark.parametrize("endpoint", ["version", "persons", "records"])
def test_unreadable_answers_are_response_format_errors(sb, client, kind, endpoint):
    sb.senselink.set_records(DAY, records_of(DAY, {1: 3}))
    path, call = {
        "version": ("version", client.server_version),
        "persons": ("user/list", client.list_persons),
        "records": ("record/list", lambda: list(client.iter_records(day=DAY))),
    }[endpoint]
    sb.faults.add("senselink", kind, path=path)

    with pytest.raises(ResponseFormatError) as info:
        call()

    assert info.value.message.startswith("SenseLink")
    assert sum(sb.request_counts().values()) == 1  # not retried


def test_wrongly_typed_persons_as_array_are_a_format_error(sb, client):
    sb.senselink.person_list_shape = "array"
    sb.faults.add("senselink", "wrong_type", path="user/list")

    with pytest.raises(ResponseFormatError):
        client.list_persons()


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type"])
def test_unreadable_create_answer_may_have_landed(sb, client, kind):
    sb.faults.add("senselink", kind, path="/api/v1/user", method="POST")

    with pytest.raises(ResponseFormatError) as info:
        client.create_person(PersonData("1001", "形式　不正", None, None, None))

    assert info.value.may_have_landed
    assert sb.request_counts() == {CREATE: 1}


def test_empty_answers(sb, client):
    sb.faults.add("senselink", "empty", path="record/list")
    sb.faults.add("senselink", "empty", path="user/list")
    sb.faults.add("senselink", "empty", path="version")

    assert list(client.iter_records(day=DAY)) == []
    assert client.list_persons() == []
    with pytest.raises(ResponseFormatError):
        client.server_version()
    assert sb.request_counts() == {RECORDS: 1, PERSONS: 1, VERSION_CALL: 1}


def test_no_call_raises_anything_but_connector_errors(sb, client):
    """Every fault kind on every endpoint: a result or a ConnectorError, never KeyError/TypeError."""
    created = client.create_person(PersonData("7777", "対象", None, None, None))
    person = PersonData("7777", "対象", None, None, None)
    calls = {
        "version": client.server_version,
        "user/list": client.list_persons,
        "/api/v1/user$": lambda: client.create_person(person),
        "update": lambda: client.update_person(created, {"name": "対象"}),
        "delete": lambda: client.delete_person(created),
        "record/list": lambda: list(client.iter_records(day=DAY)),
    }
    kinds = [
        "http500_html",
        "maintenance",
        "malformed_json",
        "wrong_type",
        "empty",
        "reset",
        "signature",
    ]
    outcomes = []
    for shape in ("page", "array"):
        sb.senselink.person_list_shape = shape
        for path, call in calls.items():
            for kind in kinds:
                sb.faults.clear()
                sb.faults.add("senselink", kind, path=path, times=None)
                try:
                    call()
                    outcomes.append("ok")
                except (
                    ConnectorError
                ) as exc:  # anything else (KeyError, TypeError...) fails the test
                    outcomes.append(type(exc).__name__)
    sb.faults.clear()
    assert "ResponseFormatError" in outcomes and "ServerError" in outcomes
