"""Property-based tests of the KOT and SenseLink response parsers (issue 8, "bad input").

Random JSON shapes — anything at all, and near-miss shapes with the right field names and wrong
values — are fed to the parse helpers directly and through the real clients against
``responses``-mocked endpoints. A parser either succeeds or raises a
``connectors.errors.ConnectorError`` (ResponseFormatError and friends), whose message the run can
show; it never lets a KeyError, TypeError, AttributeError, ValueError or OverflowError escape.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime

import pytest
import responses
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.kot import KotClient, KotEmployee, KotPunch
from connectors.senselink import PersonData, SenseLinkClient, SlPerson, SlRecord
from connectors.text import has_control
from connectors.throttle import AdaptiveLimiter
from tests.conftest import examples

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)
KOT_URL = "https://kot.invalid/v1.0"
SL_URL = "https://link.invalid/"

EXAMPLES = settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ------------------------------------------------------------------------------ strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values that look almost right: dates, times and codes at and beyond the edges.
iso_times = st.builds(
    lambda moment, offset: moment.isoformat() + offset,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from(["", "+09:00", "-12:00", "+14:00", "Z"]),
)
near_miss = st.one_of(
    scalars,
    iso_times,
    st.dates().map(date.isoformat),
    st.sampled_from(
        [
            "2026-11-24",
            "2026-02-30",
            "0042",
            "A0004",
            "",
            " ",
            "1",
            "2",
            "303",
            "１２",
            "nan",
            "1e400",
            "1763942223",
            "1763942223000",
            "00\x0042",  # control characters: a key refused, a text cleaned (issue 18 item 7)
            "\x00",
            "A\x1f",
        ]
    ),
    st.lists(scalars, max_size=3),
)


def shaped(fields: list[str], value=near_miss) -> st.SearchStrategy:
    """Dicts with (some of) these field names and near-miss values, plus stray keys."""
    return st.dictionaries(
        st.sampled_from(fields) | st.text(max_size=5), value, max_size=len(fields) + 1
    )


KOT_EMPLOYEE_FIELDS = [
    "key",
    "code",
    "lastName",
    "firstName",
    "birthDate",
    "hiredDate",
    "resignationDate",
    "emailAddresses",
    "divisionCode",
]
kot_employee = shaped(KOT_EMPLOYEE_FIELDS)
kot_employees_body = st.one_of(json_values, st.lists(kot_employee, max_size=4))
kot_time_record = shaped(["time", "code", "name", "divisionCode"])
kot_working = shaped(["date", "employeeKey"]).flatmap(
    lambda base: st.one_of(near_miss, st.lists(kot_time_record, max_size=3)).map(
        lambda records: {**base, "timeRecord": records}
    )
)
kot_day = shaped(["date"]).flatmap(
    lambda base: st.one_of(near_miss, st.lists(kot_working, max_size=3)).map(
        lambda workings: {**base, "dailyWorkings": workings}
    )
)
kot_timerecord_body = st.one_of(json_values, st.lists(kot_day, max_size=3))
kot_punch_answer = st.one_of(
    json_values,
    shaped(["date", "employeeKey"]).flatmap(
        lambda base: st.one_of(near_miss, kot_time_record).map(
            lambda record: {**base, "timeRecord": record}
        )
    ),
)

SL_PERSON_FIELDS = [
    "id",
    "name",
    "job_number",
    "jobNumber",
    "birthday",
    "entry_time",
    "entryTime",
    "mail",
    "email",
]
SL_RECORD_FIELDS = ["id", "sign_time", "job_number", "jobNumber", "user_type", "user_name"]
sl_person = shaped(SL_PERSON_FIELDS)
sl_record = shaped(SL_RECORD_FIELDS)


def sl_page(items: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        json_values,
        st.lists(items, max_size=4),
        shaped(["page_num", "page_size", "total"]).flatmap(
            lambda base: st.one_of(near_miss, st.lists(items, max_size=4)).map(
                lambda listed: {**base, "list": listed}
            )
        ),
    )


def envelope(data: st.SearchStrategy) -> st.SearchStrategy:
    """SenseLink's envelope with random code/message, or any JSON at all."""
    return st.one_of(
        json_values,
        st.builds(
            lambda code, message, payload: {"code": code, "message": message, "data": payload},
            st.one_of(st.just(200), st.just("200"), near_miss),
            near_miss,
            data,
        ),
    )


statuses = st.sampled_from([200, 200, 200, 201, 400, 403, 404, 429, 500, 503])
retry_after = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.sampled_from(["1", "0", "-5", "1e400", "nan", "inf", "99999999999999", "1e20"]),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"]),
)


def encode(body) -> str:
    # Python's json module (what requests decodes with) accepts NaN and Infinity: so may a server.
    return json.dumps(body, ensure_ascii=False)


def respond(mock, method, url, body, status=200, retry_after_value=None):
    headers = {"Retry-After": retry_after_value} if retry_after_value is not None else {}
    mock.add(
        method,
        url,
        body=encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def kot_client() -> KotClient:
    # One answer per call: no retry, no throttled resend, and no pace learned by an earlier
    # example (a limiter of its own).
    return KotClient(
        base_url=KOT_URL,
        token="prop-token",
        clock=lambda: NOON,
        max_retries=0,
        throttle_retries=0,
        limiter=AdaptiveLimiter(),
    )


def sl_client() -> SenseLinkClient:
    return SenseLinkClient(
        base_url=SL_URL,
        app_key="prop-key",
        app_secret="prop-secret",
        allow_private_hosts=True,
        max_retries=0,
    )


def only_connector_errors(call):
    """Run ``call``: its result, or None when it raised a ConnectorError (anything else fails).

    Whatever it returns or raises holds no control character in any text (issue 18 item 7:
    PostgreSQL refuses NUL), except a parsed item's ``raw`` (SenseLink's answer, kept as sent).
    """
    try:
        result = call()
    except ConnectorError as exc:
        assert isinstance(exc.message, str) and exc.message
        assert not has_control(exc.message) and not has_control(exc.detail)
        return None
    assert_no_control(result)
    return result


def assert_no_control(value) -> None:
    """No control character in a parsed string or a parsed item's text fields (a page's raw
    JSON items are not parsed yet)."""
    if isinstance(value, str):
        assert not has_control(value), value
    elif isinstance(value, list):
        for item in value:
            if dataclasses.is_dataclass(item):
                assert_no_control(item)
    elif dataclasses.is_dataclass(value):
        for each in dataclasses.fields(value):
            if each.name != "raw" and isinstance(getattr(value, each.name), str):
                assert_no_control(getattr(value, each.name))


# ------------------------------------------------------------------------- KOT helpers


@EXAMPLES
@given(item=st.one_of(json_values, kot_employee))
def test_kot_employee_parser(item):
    employee = only_connector_errors(lambda: kot_client()._parse_employee(item, 0))
    if employee is not None:
        assert isinstance(employee, KotEmployee)
        # A code or key with a control character is refused: flagged, neither usable.
        assert (employee.key and employee.code) or (employee.problem and not employee.code)


def _one_punch(time, code):
    return [
        {
            "date": "2026-11-24",
            "dailyWorkings": [{"employeeKey": "k", "timeRecord": [{"time": time, "code": code}]}],
        }
    ]


@EXAMPLES
@given(body=kot_timerecord_body)
@example(body=_one_punch("2026-11-24T08:00:00+09:00", float("inf")))  # int(inf): OverflowError
@example(body=_one_punch("0001-01-01T00:00:00+14:00", 1))  # to JST: before year 1
def test_kot_timerecord_parser(body):
    punches = only_connector_errors(lambda: kot_client()._parse_timerecords(body))
    if punches is not None:
        for punch in punches:
            assert isinstance(punch, KotPunch)
            assert punch.time.tzinfo is not None


# --------------------------------------------------------------- KOT through the client


@EXAMPLES
@given(body=kot_employees_body, status=statuses, hint=retry_after)
def test_kot_list_employees_end_to_end(body, status, hint):
    with responses.RequestsMock() as mock:
        respond(mock, "GET", f"{KOT_URL}/employees", body, status, hint)
        employees = only_connector_errors(lambda: kot_client().list_employees(on=NOON.date()))
    if employees is not None:
        assert all(isinstance(e, KotEmployee) for e in employees)


@EXAMPLES
@given(body=kot_timerecord_body, status=statuses)
def test_kot_list_punches_end_to_end(body, status):
    with responses.RequestsMock() as mock:
        respond(mock, "GET", f"{KOT_URL}/daily-workings/timerecord", body, status)
        punches = only_connector_errors(
            lambda: kot_client().list_punches(
                start=date(2026, 11, 24), end=date(2026, 11, 24), employee_keys=["k1", "k2"]
            )
        )
    if punches is not None:
        assert all(isinstance(p, KotPunch) for p in punches)


@EXAMPLES
@given(body=kot_punch_answer, status=statuses, hint=retry_after)
@example(
    body={"timeRecord": {"time": "0001-01-01T00:00:00+14:00", "code": 1}}, status=201, hint=None
)
@example(
    body={"timeRecord": {"time": "2026-11-24T08:57:03+09:00", "code": float("inf")}},
    status=201,
    hint=None,
)
@example(body=[], status=429, hint="1E20")  # Retry-After overflowing a timedelta
def test_kot_register_punch_answer(body, status, hint):
    """A 2xx means KOT stored the punch: whatever its body, the client reports it stored."""
    sent = datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST)
    with responses.RequestsMock() as mock:
        respond(mock, "POST", f"{KOT_URL}/daily-workings/timerecord/k1", body, status, hint)
        punch = only_connector_errors(
            lambda: kot_client().register_punch(
                employee_key="k1", date=date(2026, 11, 24), time=sent, code=1
            )
        )
    if 200 <= status < 300 and not (isinstance(body, dict) and str(body.get("code")) == "303"):
        assert isinstance(punch, KotPunch)


@EXAMPLES
@given(body=json_values, status=statuses)
def test_kot_token_check_answer(body, status):
    with responses.RequestsMock() as mock:
        respond(mock, "GET", f"{KOT_URL}/tokens/prop-token/available", body, status)
        answer = only_connector_errors(lambda: kot_client().check_token())
    assert answer in (None, True, False)


# ------------------------------------------------------------------- SenseLink helpers


@EXAMPLES
@given(item=st.one_of(json_values, sl_person))
def test_senselink_person_parser(item):
    person = only_connector_errors(lambda: sl_client()._parse_person(item))
    if person is not None:
        assert isinstance(person, SlPerson)


@EXAMPLES
@given(item=st.one_of(json_values, sl_record))
def test_senselink_record_parser(item):
    record = only_connector_errors(lambda: sl_client()._parse_record(item, 1))
    if record is not None:
        assert isinstance(record, SlRecord)
        assert record.sign_time.tzinfo is not None


@EXAMPLES
@given(data=st.one_of(json_values, sl_page(sl_record)))
def test_senselink_page_parser(data):
    page = only_connector_errors(lambda: sl_client()._page(data, "record list"))
    if page is not None:
        items, total = page
        assert isinstance(items, list) and (total is None or isinstance(total, int))


# --------------------------------------------------------- SenseLink through the client


@EXAMPLES
@given(body=envelope(sl_page(sl_person)), status=statuses, hint=retry_after)
def test_senselink_list_persons_end_to_end(body, status, hint):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # Every page gets the same answer; the client stops on a short or repeated page.
        respond(mock, "GET", f"{SL_URL}api/v1/user/list", body, status, hint)
        persons = only_connector_errors(lambda: sl_client().list_persons())
    if persons is not None:
        assert all(isinstance(p, SlPerson) for p in persons)


@EXAMPLES
@given(body=envelope(sl_page(sl_record)), status=statuses)
def test_senselink_records_end_to_end(body, status):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        respond(mock, "GET", f"{SL_URL}api/v5/record/list", body, status)
        records = only_connector_errors(
            lambda: list(sl_client().iter_records(day=date(2026, 11, 24)))
        )
    if records is not None:
        assert all(isinstance(r, SlRecord) for r in records)


@EXAMPLES
@given(body=envelope(st.one_of(json_values, sl_person)), status=statuses)
def test_senselink_create_person_answer(body, status):
    person = PersonData(
        job_number="0042", name="山田\u3000太郎", birthday=None, entry_time=None, mail=None
    )
    with responses.RequestsMock() as mock:
        respond(mock, "POST", f"{SL_URL}api/v1/user", body, status)
        created = only_connector_errors(lambda: sl_client().create_person(person))
    assert created is None or (isinstance(created, int) and not isinstance(created, bool))


@EXAMPLES
@given(body=envelope(json_values), status=statuses)
def test_senselink_server_version_answer(body, status):
    with responses.RequestsMock() as mock:
        respond(mock, "GET", f"{SL_URL}api/v3/server/version", body, status)
        version = only_connector_errors(lambda: sl_client().server_version())
    assert version is None or isinstance(version, str)


@pytest.mark.parametrize(
    "body",
    [
        {"code": float("inf"), "message": "x", "data": None},
        {"code": 200, "message": "OK", "data": {"list": [], "total": float("inf")}},
    ],
    ids=["infinite-envelope-code", "infinite-total"],
)
def test_senselink_infinities_are_format_errors(body):
    """Examples hypothesis found once, kept explicit: JSON's Infinity where an int belongs."""
    with responses.RequestsMock() as mock:
        respond(mock, "GET", f"{SL_URL}api/v1/user/list", body)
        only_connector_errors(lambda: sl_client().list_persons())
