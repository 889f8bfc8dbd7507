"""Contract tests: the real KotClient against the sandbox's fake KOT, over real loopback HTTP.

Every endpoint the client uses, the 62-day split and key chunking, the forbidden windows (refused
before sending by the client; refused by the server when only its clock is inside), throttling,
5xx gateway pages, timeouts, malformed and wrongly typed answers, and the punch POST that is never
sent twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.clock import JST
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    ForbiddenWindowError,
    NetworkError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.kot import MAX_KEYS_PER_CALL, KotClient, KotEmployee, KotPunch
from connectors.sandbox.data import is_active
from tests.conftest import Recorder

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=JST)
IN_MORNING_WINDOW = datetime(2026, 11, 24, 9, 15, tzinfo=JST)
IN_EVENING_WINDOW = datetime(2026, 11, 24, 17, 45, tzinfo=JST)

TIMERECORD = "GET /v1.0/daily-workings/timerecord"
POST_PUNCH = "POST /v1.0/daily-workings/timerecord/{key}"
EMPLOYEES = "GET /v1.0/employees"
TOKEN_CHECK = "GET /v1.0/tokens/{token}/available"


@pytest.fixture
def sb(make_sandbox):
    """A sandbox whose KOT clock stands at 12:00 JST on DAY (outside the windows)."""
    return make_sandbox(day=DAY, now=lambda: NOON)


def client_for(sb, recorder: Recorder, *, at: datetime = NOON, token=None, **kwargs) -> KotClient:
    kwargs.setdefault("backoff", 0.01)
    return KotClient(
        base_url=sb.kot_url,
        token=token or sb.kot_token,
        clock=lambda: at,
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
        **kwargs,
    )


@pytest.fixture
def client(sb, recorder) -> KotClient:
    return client_for(sb, recorder)


def employee_keys(sb) -> list[str]:
    return [e["key"] for e in sb.kot.employees]


# ------------------------------------------------------------------------------ endpoints


def test_check_token(sb, client, recorder):
    assert client.check_token() is True
    assert sb.request_counts() == {TOKEN_CHECK: 1}


def test_check_token_with_a_wrong_token_is_a_permanent_authentication_error(sb, recorder):
    client = client_for(sb, recorder, token="not-the-sandbox-token-0000")

    with pytest.raises(AuthenticationError) as info:
        client.check_token()

    assert info.value.permanent and info.value.code == "kot_auth"
    assert sb.request_counts() == {TOKEN_CHECK: 1}  # not retried


def test_list_employees_without_resigned_asks_for_additional_fields(sb, client):
    employees = client.list_employees(on=DAY)

    stored = {e["key"]: e for e in sb.kot.employees}
    expected = {k for k, e in stored.items() if is_active(e, DAY)}
    assert {e.key for e in employees} == expected
    assert any(stored[k].get("resignationDate") for k in stored if k not in expected)
    assert all(isinstance(e, KotEmployee) for e in employees)
    for employee in employees:
        raw = stored[employee.key]
        assert employee.code == raw["code"]  # leading zeros and letters kept
        assert (employee.last_name, employee.first_name) == (raw["lastName"], raw["firstName"])
        assert employee.division_code == raw["divisionCode"]
        # The additional fields arrive because the client asks for them.
        assert employee.hired_date == date.fromisoformat(raw["hiredDate"])
        assert employee.birth_date == (
            date.fromisoformat(raw["birthDate"]) if "birthDate" in raw else None
        )
        assert employee.email == (raw["emailAddresses"][0] if "emailAddresses" in raw else None)
    codes = {e.code for e in employees}
    assert any(c.startswith("0") for c in codes) and any(c.startswith("A") for c in codes)
    assert any(e.email is None for e in employees) and any(e.birth_date is None for e in employees)
    assert sb.request_counts() == {EMPLOYEES: 1}


def test_list_employees_with_resigned(sb, client):
    employees = client.list_employees(on=DAY, include_resigned=True)

    assert {e.key for e in employees} == set(employee_keys(sb))
    resigned = [e for e in employees if e.resignation_date and e.resignation_date < DAY]
    assert resigned
    for employee in resigned:
        raw = sb.kot.employee_by_key(employee.key)
        assert employee.resignation_date == date.fromisoformat(raw["resignationDate"])


def test_list_employees_of_an_empty_company(sb, client):
    sb.kot.remove_all_employees()

    assert client.list_employees() == []


def test_list_punches_reads_back_stored_punches_sorted(sb, client):
    first, second = employee_keys(sb)[:2]
    sb.kot.add_punch(second, DAY, datetime(2026, 11, 24, 18, 2, tzinfo=JST), 2)
    sb.kot.add_punch(first, DAY, datetime(2026, 11, 24, 8, 55, tzinfo=JST), 1)
    # A night-shift punch after midnight that belongs to the day before.
    sb.kot.add_punch(first, DAY, datetime(2026, 11, 25, 1, 30, tzinfo=JST), 2)

    punches = client.list_punches(start=DAY, end=DAY, employee_keys=[first, second])

    assert punches == [
        KotPunch(first, DAY, datetime(2026, 11, 24, 8, 55, tzinfo=JST), 1),
        KotPunch(second, DAY, datetime(2026, 11, 24, 18, 2, tzinfo=JST), 2),
        KotPunch(first, DAY, datetime(2026, 11, 25, 1, 30, tzinfo=JST), 2),
    ]
    assert sb.request_counts() == {TIMERECORD: 1}


def test_list_punches_over_62_days_is_split_into_several_calls(sb, client):
    key = employee_keys(sb)[0]
    start, end = date(2026, 6, 1), date(2026, 11, 24)  # 177 days: 62 + 62 + 53
    edges = [start, start + timedelta(days=61), start + timedelta(days=62), end]
    for n, day in enumerate(edges):
        sb.kot.add_punch(key, day, datetime(day.year, day.month, day.day, 9, tzinfo=JST), 1 + n % 2)

    punches = client.list_punches(start=start, end=end, employee_keys=[key])

    assert [p.date for p in punches] == edges  # every span was read, none refused by KOT
    assert sb.request_counts() == {TIMERECORD: 3}


def test_list_punches_of_exactly_62_days_is_one_call(sb, client):
    client.list_punches(
        start=date(2026, 9, 24), end=date(2026, 11, 24), employee_keys=employee_keys(sb)[:1]
    )

    assert sb.request_counts() == {TIMERECORD: 1}


def test_list_punches_chunks_many_keys(make_sandbox, recorder):
    sb = make_sandbox(employees=250, day=DAY, now=lambda: NOON)
    sb.kot.max_url_length = 4096  # a stricter gateway than the default: chunks must fit
    client = client_for(sb, recorder)
    keys = employee_keys(sb)
    for key in keys[::25]:
        sb.kot.add_punch(key, DAY, datetime(2026, 11, 24, 9, 0, tzinfo=JST), 1)

    punches = client.list_punches(start=date(2026, 9, 1), end=DAY, employee_keys=keys)

    assert {p.employee_key for p in punches} == set(keys[::25])
    chunks = -(-len(keys) // MAX_KEYS_PER_CALL)
    assert chunks == 3
    assert sb.request_counts() == {TIMERECORD: 2 * chunks}  # 85 days: 2 spans x 3 chunks


def test_register_punch(sb, client):
    key = employee_keys(sb)[3]
    when = datetime(2026, 11, 24, 8, 57, 3, 123456, tzinfo=JST)

    registered = client.register_punch(employee_key=key, date=DAY, time=when, code=1)

    assert registered == KotPunch(key, DAY, when.replace(microsecond=0), 1)
    stored = sb.kot.punches_for(key, DAY)
    assert len(stored) == 1
    assert stored[0]["time"] == "2026-11-24T08:57:03+09:00" and stored[0]["code"] == "1"
    assert client.list_punches(start=DAY, end=DAY, employee_keys=[key]) == [registered]


def test_register_punch_sends_plus_0900_for_a_utc_time(sb, client):
    key = employee_keys(sb)[0]
    when = datetime(2026, 11, 24, 0, 1, 0, tzinfo=UTC)  # 09:01 JST

    client.register_punch(employee_key=key, date=DAY, time=when, code=2)

    assert sb.kot.punches_for(key, DAY)[0]["time"] == "2026-11-24T09:01:00+09:00"


def test_register_punch_twice_stores_two_punches(sb, client):
    """KOT does not deduplicate: the client must not post twice, the sandbox stores what it gets."""
    key = employee_keys(sb)[0]
    when = datetime(2026, 11, 24, 8, 57, tzinfo=JST)

    client.register_punch(employee_key=key, date=DAY, time=when, code=1)
    client.register_punch(employee_key=key, date=DAY, time=when, code=1)

    assert len(sb.kot.punches_for(key, DAY)) == 2


# ------------------------------------------------------------------------ forbidden windows


@pytest.mark.parametrize("at", [IN_MORNING_WINDOW, IN_EVENING_WINDOW])
def test_client_refuses_inside_a_window_before_sending(sb, recorder, at):
    sb.clock.set(at)
    client = client_for(sb, recorder, at=at)
    keys = employee_keys(sb)[:1]

    for call in (
        client.list_employees,
        lambda: client.list_punches(start=DAY, end=DAY, employee_keys=keys),
    ):
        with pytest.raises(ForbiddenWindowError) as info:
            call()
        assert not info.value.permanent
        assert info.value.retry_at is not None and info.value.retry_at > at

    assert sb.request_counts() == {}


def test_client_clock_in_utc_is_read_as_tokyo_time(sb, recorder):
    at = datetime(2026, 11, 24, 0, 45, tzinfo=UTC)  # 09:45 JST
    client = client_for(sb, recorder, at=at)

    with pytest.raises(ForbiddenWindowError) as info:
        client.list_employees()

    assert info.value.retry_at == datetime(2026, 11, 24, 10, 0, tzinfo=JST)
    assert sb.request_counts() == {}


def test_server_refuses_when_only_its_clock_is_inside_a_window(sb, client):
    sb.clock.set(IN_MORNING_WINDOW)

    with pytest.raises(ForbiddenWindowError) as info:
        client.list_employees()
    assert not info.value.permanent and info.value.retry_at is not None
    assert "HTTP 403 code 104" in info.value.detail
    with pytest.raises(ForbiddenWindowError):
        client.list_punches(start=DAY, end=DAY, employee_keys=employee_keys(sb)[:1])

    # One request each: the server said no, the client did not retry.
    assert sb.request_counts() == {EMPLOYEES: 1, TIMERECORD: 1}


@pytest.mark.parametrize("at", [IN_MORNING_WINDOW, IN_EVENING_WINDOW])
def test_token_check_and_punch_work_inside_a_window(sb, recorder, at):
    sb.clock.set(at)
    client = client_for(sb, recorder, at=at)
    key = employee_keys(sb)[0]

    assert client.check_token() is True
    client.register_punch(employee_key=key, date=DAY, time=at, code=1)

    assert len(sb.kot.punches_for(key, DAY)) == 1
    assert sb.request_counts() == {TOKEN_CHECK: 1, POST_PUNCH: 1}


# ------------------------------------------------------------------------- transient faults


def test_throttled_then_success_after_one_retry(sb, client, recorder):
    sb.faults.add("kot", "throttle", path="/employees", times=1)

    employees = client.list_employees()

    assert employees
    assert sb.request_counts() == {EMPLOYEES: 2}
    assert recorder.sleeps and recorder.sleeps[0] == pytest.approx(1.0)  # Retry-After: 1


def test_throttled_every_time_gives_up_with_a_throttled_error(sb, recorder):
    sb.faults.add("kot", "throttle", path="/employees", times=None)
    client = client_for(sb, recorder, throttle_retries=2)

    with pytest.raises(ThrottledError) as info:
        client.list_employees()

    assert info.value.code == "kot_throttled" and info.value.retry_after == 1.0
    assert sb.request_counts() == {EMPLOYEES: 3}


def test_throttle_budget_counts_the_wait_too(sb, recorder):
    sb.faults.add("kot", "throttle", path="/employees", times=None)
    client = client_for(sb, recorder, throttle_retries=100, throttle_max_wait=3.5)

    with pytest.raises(ThrottledError):
        client.list_employees()

    assert sb.request_counts() == {EMPLOYEES: 4}  # Retry-After 1 s three times, then out


def test_maintenance_then_success(sb, client):
    sb.faults.add("kot", "maintenance", path="timerecord", times=2)

    assert client.list_punches(start=DAY, end=DAY, employee_keys=employee_keys(sb)[:1]) == []
    assert sb.request_counts() == {TIMERECORD: 3}


def test_html_500_is_a_server_error_after_bounded_retries(sb, recorder):
    sb.faults.add("kot", "http500_html", path="/employees", times=None)
    client = client_for(sb, recorder, max_retries=3)

    with pytest.raises(ServerError) as info:
        client.list_employees()

    assert "HTML" in info.value.detail and not info.value.permanent
    assert sb.request_counts() == {EMPLOYEES: 4}  # 1 + max_retries
    assert len(recorder.sleeps) == 3


def test_html_500_on_a_punch_post_is_not_retried(sb, client):
    sb.faults.add("kot", "http500_html", path="timerecord/", times=None)
    key = employee_keys(sb)[0]

    with pytest.raises(ServerError):
        client.register_punch(employee_key=key, date=DAY, time=NOON, code=1)

    assert sb.request_counts() == {POST_PUNCH: 1}


def test_read_timeout_is_a_request_timeout(sb, recorder):
    sb.faults.add("kot", "timeout", path="/employees", times=None, delay=2)
    client = client_for(sb, recorder, timeout=(2.0, 0.5), max_retries=1)

    with pytest.raises(RequestTimeout) as info:
        client.list_employees()

    assert not info.value.may_have_landed  # a read, nothing to land
    assert sb.request_counts() == {EMPLOYEES: 2}  # a read is retried, boundedly


def test_timeout_once_then_success(sb, recorder):
    sb.faults.add("kot", "timeout", path="/employees", times=1, delay=2)
    client = client_for(sb, recorder, timeout=(2.0, 0.5))

    assert client.list_employees()
    assert sb.request_counts() == {EMPLOYEES: 2}


def test_punch_post_that_timed_out_is_sent_exactly_once(sb, recorder):
    sb.faults.add("kot", "timeout_after_store", path="timerecord/", method="POST", delay=2)
    client = client_for(sb, recorder, timeout=(2.0, 0.5), max_retries=5)
    key = employee_keys(sb)[0]
    when = datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST)

    with pytest.raises(RequestTimeout) as info:
        client.register_punch(employee_key=key, date=DAY, time=when, code=1)

    assert info.value.may_have_landed  # the caller must read the day back before re-posting
    assert sb.request_counts() == {POST_PUNCH: 1}
    assert len(sb.kot.punches_for(key, DAY)) == 1
    # Reading the day back shows the punch landed.
    assert client.list_punches(start=DAY, end=DAY, employee_keys=[key]) == [
        KotPunch(key, DAY, when, 1)
    ]
    assert len(sb.kot.punches_for(key, DAY)) == 1


def test_punch_post_with_a_reset_connection_is_not_retried(sb, client):
    sb.faults.add("kot", "reset", path="timerecord/", method="POST", times=None)
    key = employee_keys(sb)[0]

    with pytest.raises(NetworkError):
        client.register_punch(employee_key=key, date=DAY, time=NOON, code=1)

    assert sb.request_counts() == {POST_PUNCH: 1}
    assert sb.kot.punches_for(key, DAY) == []


def test_reset_connection_on_a_read_is_retried(sb, client):
    sb.faults.add("kot", "reset", path="/employees", times=1)

    assert client.list_employees()
    assert sb.request_counts() == {EMPLOYEES: 2}


def test_signature_fault_is_a_permanent_authentication_error(sb, client):
    sb.faults.add("kot", "signature", path="/employees")

    with pytest.raises(AuthenticationError) as info:
        client.list_employees()

    assert info.value.permanent
    assert sb.request_counts() == {EMPLOYEES: 1}


def test_caller_ip_not_allowed_is_an_authentication_error(sb, client):
    sb.kot.allowed_ips = {"203.0.113.7"}

    with pytest.raises(AuthenticationError):
        client.check_token()


# ------------------------------------------------------------------ malformed and wrong types


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type"])
def test_unreadable_employees_are_response_format_errors(sb, client, kind):
    sb.faults.add("kot", kind, path="/employees")

    with pytest.raises(ResponseFormatError) as info:
        client.list_employees()

    assert not isinstance(info.value, (KeyError, TypeError))
    assert sb.request_counts() == {EMPLOYEES: 1}  # not retried: same answer next time


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type"])
def test_unreadable_punches_are_response_format_errors(sb, client, kind):
    key = employee_keys(sb)[0]
    sb.kot.add_punch(key, DAY, NOON, 1)
    sb.faults.add("kot", kind, path="timerecord")

    with pytest.raises(ResponseFormatError):
        client.list_punches(start=DAY, end=DAY, employee_keys=[key])


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type", "empty"])
def test_unreadable_token_check_is_a_response_format_error(sb, client, kind):
    sb.faults.add("kot", kind, path="/tokens/")

    with pytest.raises(ResponseFormatError):
        client.check_token()


def test_empty_answers_are_empty_lists(sb, client):
    sb.faults.add("kot", "empty", path="/employees")
    sb.faults.add("kot", "empty", path="timerecord")

    assert client.list_employees() == []
    assert client.list_punches(start=DAY, end=DAY, employee_keys=employee_keys(sb)[:1]) == []


@pytest.mark.parametrize("kind", ["malformed_json", "wrong_type"])
def test_punch_stored_with_an_unreadable_answer_is_not_an_error(sb, client, kind):
    """The 201 came: the punch landed. An odd body must not make the caller post it again."""
    key = employee_keys(sb)[0]
    when = datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST)
    if kind == "malformed_json":  # this fault answers without storing: pre-store like KOT would
        sb.kot.add_punch(key, DAY, when, 1)
    sb.faults.add("kot", kind, path="timerecord/", method="POST")

    registered = client.register_punch(employee_key=key, date=DAY, time=when, code=1)

    assert registered == KotPunch(key, DAY, when, 1)
    assert sb.request_counts() == {POST_PUNCH: 1}
    assert len(sb.kot.punches_for(key, DAY)) == 1


def test_no_connector_call_raises_anything_but_connector_errors(sb, client):
    """Every fault kind on every endpoint: a result or a ConnectorError, never KeyError/TypeError."""
    key = employee_keys(sb)[0]
    calls = {
        "/tokens/": client.check_token,
        "/employees": client.list_employees,
        "timerecord$": lambda: client.list_punches(start=DAY, end=DAY, employee_keys=[key]),
        "timerecord/": lambda: client.register_punch(employee_key=key, date=DAY, time=NOON, code=1),
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
    for path, call in calls.items():
        for kind in kinds:
            sb.faults.clear()
            sb.faults.add("kot", kind, path=path, times=None)
            try:
                call()
                outcomes.append("ok")
            except ConnectorError as exc:  # anything else (KeyError, TypeError...) fails the test
                outcomes.append(type(exc).__name__)
    sb.faults.clear()
    assert "ResponseFormatError" in outcomes and "ServerError" in outcomes
