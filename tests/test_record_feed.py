"""The record feed (connectors/record_feed.py) against the sandbox over loopback HTTP: every
record added to a day's list is handed out by the next read — whether the list comes newest
first, by sign time, or by id — and a read that finds nothing costs one call."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest

from connectors.errors import ResponseFormatError
from connectors.record_feed import (
    ID_ASCENDING,
    NEWEST_FIRST,
    OTHER,
    WHOLE_READ_EVERY,
    FeedCursor,
    read_new,
)
from connectors.senselink import SenseLinkClient
from tests.conftest import JST

DAY = date(2026, 11, 24)
ORDERS = ["asked", "newest_first", "oldest_first"]  # the sandbox's record_order switch
PAGE = 10


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=JST)


class Feed:
    """One tenant's feed of DAY: the sandbox's list, a client, the stored cursor."""

    def __init__(self, sandbox, client_class=SenseLinkClient, **client_kwargs):
        self.state = sandbox.senselink
        self.client = client_class(
            base_url=sandbox.senselink_url,
            app_key=sandbox.app_key,
            app_secret=sandbox.app_secret,
            allow_private_hosts=True,
            **client_kwargs,
        )
        self.cursor = FeedCursor()
        self.handed: list[int] = []

    def add(self, when: datetime, code: str = "0001") -> int:
        return self.state.add_record(when=when, job_number=code)["id"]

    def read(self, now: datetime, *, skew: timedelta | None = None):
        horizon = now + skew if skew is not None else None
        read = read_new(self.client, self.cursor, day=DAY, now=now, horizon=horizon)
        # The stored form is what the next read starts from.
        self.cursor = FeedCursor.from_json(read.cursor.to_json())
        self.handed += [record.id for record in read.records]
        return read


@pytest.fixture
def feed(sandbox):
    for day in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)):
        sandbox.senselink.set_records(day, [])
    sandbox.senselink.configure(page_size_cap=PAGE)
    feed = Feed(sandbox)
    yield feed
    feed.client.close()


@pytest.mark.parametrize("order", ORDERS)
def test_every_record_is_handed_out_once_by_the_next_read_and_a_quiet_read_costs_one_call(
    feed, order
):
    feed.state.configure(record_order=order)
    rng = random.Random(f"feed:{order}")
    added: list[int] = []
    now = at(7, 0)
    quiet_calls = []
    for _round in range(40):
        now += timedelta(minutes=1)
        for _ in range(rng.choice((0, 0, 1, 3, 12))):
            late = rng.random() < 0.2  # a terminal's late upload of an old recognition
            stamp = now - timedelta(minutes=rng.randint(30, 90) if late else rng.randint(0, 1))
            added.append(feed.add(stamp, code=f"{rng.randint(1, 60):04d}"))
        before = len(feed.handed)
        read = feed.read(now)
        if len(feed.handed) == before:
            quiet_calls.append(read.calls)
        assert sorted(feed.handed) == sorted(added)  # each record, by the next read
    assert len(feed.handed) == len(set(feed.handed))  # once
    assert len(added) > 3 * PAGE
    assert quiet_calls and set(quiet_calls) == {1}


@pytest.mark.parametrize(
    ("order", "seen"),
    [("asked", ID_ASCENDING), ("newest_first", NEWEST_FIRST), ("oldest_first", OTHER)],
)
def test_each_read_checks_the_order_and_a_late_upload_mid_list_is_found(feed, order, seen):
    feed.state.configure(record_order=order)
    first = [feed.add(at(8, minute)) for minute in range(25)]  # three pages
    feed.read(at(8, 30))
    late = feed.add(at(7, 40), code="0099")  # by sign time: on page 1, shifting the rest
    new = feed.add(at(8, 31))
    read = feed.read(at(8, 32))
    assert sorted(r.id for r in read.records) == [late, new]
    assert feed.cursor.order == seen
    assert sorted(feed.handed) == sorted([*first, late, new])
    # By sign time the late upload moved the anchor: the day was read again from page 1.
    assert read.whole is (order == "oldest_first")
    assert read.calls == (3 if order == "oldest_first" else 1)


@pytest.mark.parametrize("order", ORDERS)
def test_a_quiet_read_of_a_list_of_whole_pages_costs_one_call(feed, order):
    feed.state.configure(record_order=order)
    for minute in range(2 * PAGE):
        feed.add(at(8, minute))
    assert feed.read(at(8, 30)).calls == 3  # two full pages and the empty third
    assert feed.read(at(8, 35)).calls == 1
    feed.add(at(8, 36))
    read = feed.read(at(8, 37))
    assert len(read.records) == 1
    assert feed.read(at(8, 40)).calls == 1


@pytest.mark.parametrize("order", ORDERS)
def test_a_record_stamped_beyond_the_horizon_waits_for_its_time_and_is_not_lost(feed, order):
    feed.state.configure(record_order=order)
    early = feed.add(at(8, 0))
    ahead = feed.add(at(8, 20))  # a terminal's clock 20 minutes fast
    after = feed.add(at(8, 1))
    skew = timedelta(minutes=5)
    read = feed.read(at(8, 2), skew=skew)
    assert sorted(r.id for r in read.records) == [early, after]
    assert feed.cursor.high == ahead - 1
    read = feed.read(at(8, 16), skew=skew)
    assert ahead in [r.id for r in read.records]
    assert feed.handed.count(ahead) == 1  # handed out once, when its time came
    assert feed.read(at(8, 17), skew=skew).records == []


class RacingClient(SenseLinkClient):
    """Runs ``race`` (a terminal uploading) right after the first page of a read is fetched."""

    race = None

    def record_page(self, **kwargs):
        page = super().record_page(**kwargs)
        if kwargs["page"] == 1 and self.race is not None:
            race, self.race = self.race, None
            race()
        return page


@pytest.mark.parametrize("order", ORDERS)
def test_a_record_added_while_a_read_pages_through_the_list_is_found_by_the_next_read(
    sandbox, feed, order
):
    feed.state.configure(record_order=order)
    racing = Feed(sandbox, client_class=RacingClient)
    added = [feed.add(at(8, minute)) for minute in range(25)]
    racing.client.race = lambda: added.append(feed.add(at(7, 0), code="0099"))
    racing.read(at(8, 30))
    racing.read(at(8, 31))
    assert sorted(racing.handed) == sorted(added)
    assert len(racing.handed) == len(set(racing.handed))
    assert racing.read(at(8, 32)).calls == 1
    racing.client.close()


def test_the_order_changing_between_reads_loses_nothing(feed):
    added = []
    for minute, order in enumerate(ORDERS * 3):
        feed.state.configure(record_order=order)
        added += [feed.add(at(8, minute, second)) for second in range(0, 60, 4)]
        added.append(feed.add(at(7, minute)))  # late
        feed.read(at(8, minute, 59))
        assert sorted(feed.handed) == sorted(added)
    assert len(feed.handed) == len(set(feed.handed))


def test_a_page_length_changing_between_reads_loses_nothing(feed):
    added = [feed.add(at(8, minute)) for minute in range(25)]
    feed.read(at(8, 30))
    feed.state.configure(page_size_cap=7, record_order="oldest_first")
    added.append(feed.add(at(7, 0)))
    read = feed.read(at(8, 31))
    assert read.whole and [r.id for r in read.records] == added[-1:]
    assert feed.cursor.page_size == 7
    assert feed.read(at(8, 32)).calls == 1


def test_the_day_is_read_whole_at_least_every_hour(feed):
    for minute in range(25):
        feed.add(at(8, minute))
    assert feed.read(at(8, 30)).whole
    assert feed.read(at(8, 30) + WHOLE_READ_EVERY - timedelta(seconds=1)).calls == 1
    read = feed.read(at(8, 30) + WHOLE_READ_EVERY)
    assert read.whole and read.calls == 3 and read.records == []


def test_another_day_starts_afresh(feed):
    feed.add(at(8, 0))
    feed.read(at(8, 1))
    tomorrow = DAY + timedelta(days=1)
    read = read_new(feed.client, feed.cursor, day=tomorrow, now=at(8, 2))
    assert read.cursor.day == tomorrow and read.whole


def test_a_server_ignoring_page_is_an_error_not_a_loop(feed):
    feed.state.configure(paging="ignored")
    for minute in range(15):
        feed.add(at(8, minute))
    with pytest.raises(ResponseFormatError) as raised:
        feed.read(at(8, 30))
    assert raised.value.code == "senselink_paging"
    assert feed.cursor == FeedCursor()  # nothing stored: the next poll tries again


def test_a_day_longer_than_max_pages_is_an_error(sandbox, feed):
    short = Feed(sandbox, max_pages=2)
    for minute in range(25):
        feed.add(at(8, minute))
    with pytest.raises(ResponseFormatError, match="2ページを超えた"):
        short.read(at(8, 30))
    short.client.close()


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        "x",
        {"day": "2026-13-01"},
        {"day": "2026-11-24", "high": "12"},
        {"day": "2026-11-24", "high": True},
        {"day": 20261124},
    ],
)
def test_an_unreadable_stored_cursor_is_a_fresh_one(stored):
    assert FeedCursor.from_json(stored) == FeedCursor()


def test_a_cursor_survives_its_json():
    cursor = FeedCursor(
        day=DAY,
        high=9_500_000_123,
        order=OTHER,
        anchor=57,
        anchor_id=9_500_000_101,
        page_size=50,
        read_whole_at=at(8, 0),
    )
    assert FeedCursor.from_json(cursor.to_json()) == cursor
    assert FeedCursor.from_json({**cursor.to_json(), "order": "sideways"}).order == ""
