"""Paging that does not trust one assumption (issue 12 item 5, issue 13): the echoed page size,
``total`` when present, an empty page, a repeated page as an error, a page cap, each id once;
the record window widened and filtered by sign_time in JST. Client against the sandbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import responses

from connectors.clock import JST
from connectors.errors import ResponseFormatError
from connectors.sandbox.data import finish_record
from connectors.senselink import SenseLinkClient
from tests.conftest import Recorder

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=JST)
PERSONS = "GET /api/v1/user/list"
RECORDS = "GET /api/v5/record/list"


@pytest.fixture
def sb(make_sandbox):
    return make_sandbox(day=DAY, now=lambda: NOON)


def client_for(sb, **kwargs) -> SenseLinkClient:
    recorder = Recorder()
    return SenseLinkClient(
        base_url=sb.senselink_url,
        app_key=sb.app_key,
        app_secret=sb.app_secret,
        allow_private_hosts=True,
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
        **kwargs,
    )


def add_persons(sb, n: int) -> None:
    for i in range(n):
        sb.senselink.add_person(name=f"試験　{i}", job_number=f"P{i:04d}", groups=[1])


def day_records(n: int, day: date = DAY) -> list[dict]:
    start = int(datetime(day.year, day.month, day.day, 7, 0, tzinfo=JST).timestamp())
    return [
        finish_record(
            day.toordinal() * 1000 + i,
            start + i * 30,
            {"user_type": 1, "job_number": f"{i % 40:04d}", "user_id": 5000 + i},
        )
        for i in range(n)
    ]


# ------------------------------------------------------------------------------ persons


def test_a_clamped_page_size_is_followed_as_echoed(sb):
    add_persons(sb, 247)  # 250 with the 3 hand-registered
    sb.senselink.configure(page_size_cap=50)

    persons = client_for(sb).list_persons()

    assert len(persons) == 250 and len({p.id for p in persons}) == 250
    assert sb.request_counts() == {PERSONS: 5}  # the total ends it: no empty sixth page


@pytest.mark.parametrize(("extra", "calls"), [(96, 1), (197, 3), (247, 3)])
def test_without_total_a_short_or_empty_page_ends_the_list(sb, extra, calls):
    add_persons(sb, extra)  # 99, 200 (two full pages, then an empty one), 250
    sb.senselink.configure(person_list_shape="page_no_total")

    persons = client_for(sb).list_persons()

    assert len(persons) == extra + 3
    assert sb.request_counts() == {PERSONS: calls}


def test_clamped_and_without_total_still_reads_everything(sb):
    add_persons(sb, 120)
    sb.senselink.configure(page_size_cap=30, person_list_shape="page_no_total")
    assert len(client_for(sb).list_persons()) == 123
    assert sb.request_counts() == {PERSONS: 5}  # 30, 30, 30, 30, 3


def test_a_server_that_ignores_page_and_shuffles_stops_at_the_second_page(sb):
    add_persons(sb, 300)
    sb.senselink.configure(paging="ignored")

    with pytest.raises(ResponseFormatError) as info:
        client_for(sb).list_persons()

    assert info.value.code == "senselink_paging" and "同じページ" in info.value.message
    assert sb.request_counts() == {PERSONS: 2}


def test_the_page_cap_is_an_error_not_a_loop(sb):
    add_persons(sb, 497)
    sb.senselink.configure(page_size_cap=20, person_list_shape="page_no_total")

    with pytest.raises(ResponseFormatError) as info:
        client_for(sb, max_pages=10).list_persons()

    assert "10ページを超えた" in info.value.message
    assert sb.request_counts() == {PERSONS: 10}


@responses.activate
def test_a_page_overlapping_the_last_one_yields_each_person_once():
    url = "https://link.example.jp/api/v1/user/list"
    pages = [[1, 2, 3], [3, 4, 5], [6]]  # someone registered a person between two pages
    for ids in pages:
        responses.get(url, json={"code": 200, "data": {"list": [{"id": i} for i in ids]}})
    client = SenseLinkClient(
        base_url="https://link.example.jp/",
        app_key="k",
        app_secret="s",
        resolve=lambda host: ["52.68.10.20"],
    )
    assert [p.id for p in client.iter_persons(page_size=3)] == [1, 2, 3, 4, 5, 6]
    assert len(responses.calls) == 3


# ------------------------------------------------------------------------------ records


def test_records_follow_a_clamped_page_size(sb):
    sb.senselink.set_records(DAY, day_records(130))
    sb.senselink.configure(page_size_cap=40)

    records = list(client_for(sb).iter_records(day=DAY))

    assert len(records) == 130 and len({r.id for r in records}) == 130
    assert sb.request_counts() == {RECORDS: 4}  # 40, 40, 40, 10


def test_records_from_a_server_that_ignores_page_stop_with_an_error(sb):
    sb.senselink.set_records(DAY, day_records(250))
    sb.senselink.configure(paging="ignored")
    seen = []

    with pytest.raises(ResponseFormatError) as info:
        seen.extend(client_for(sb).iter_records(day=DAY))

    assert info.value.code == "senselink_paging"
    assert len(seen) == 100  # the first page, once; nothing twice
    assert sb.request_counts() == {RECORDS: 2}


def test_the_record_window_is_widened_and_filtered_by_sign_time_in_jst(sb):
    state = sb.senselink
    for day in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)):
        state.set_records(day, [])
    inside = [
        state.add_record(when=datetime(2026, 11, 24, 0, 0, 0, tzinfo=JST), job_number="0001"),
        state.add_record(when=datetime(2026, 11, 24, 23, 59, 59, tzinfo=JST), job_number="0002"),
    ]
    state.add_record(when=datetime(2026, 11, 23, 23, 59, 59, tzinfo=JST), job_number="0003")
    state.add_record(when=datetime(2026, 11, 25, 0, 0, 0, tzinfo=JST), job_number="0004")

    records = list(client_for(sb).iter_records(day=DAY))

    assert sorted(r.id for r in records) == sorted(r["id"] for r in inside)


@pytest.mark.parametrize("zone", [8, 10, 12])
def test_a_server_reading_the_query_in_another_zone_still_gives_the_whole_day(sb, zone):
    """The query's local times are the tenant's SenseLink's: within the margin (3 hours) of JST
    the day is complete, and never a record of another day."""
    state = sb.senselink
    state.configure(record_zone_hours=zone)
    for day in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)):
        state.set_records(day, [])
    first = state.add_record(when=datetime(2026, 11, 24, 0, 5, tzinfo=JST), job_number="0001")
    last = state.add_record(when=datetime(2026, 11, 24, 23, 55, tzinfo=JST), job_number="0001")
    state.add_record(when=datetime(2026, 11, 23, 23, 55, tzinfo=JST), job_number="0001")

    records = list(client_for(sb).iter_records(day=DAY))

    assert sorted(r.id for r in records) == sorted([first["id"], last["id"]])
