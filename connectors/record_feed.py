"""The records added to a day's SenseLink record list since the last read, whatever its order.

No public source settles the list's order: ``order=1`` (by id) is not in JCV's manual, whose
documented default is newest first, and a server listing by sign time puts a terminal's late
upload of an old recognition mid-list, shifting the records after it. What holds in every
reading is that ids grow with insertion: a record is new when its id is above ``high``, the
highest id already handed out. Every read checks the order it meets:

* **newest first** (ids descending): pages from 1 until one holds an id not above ``high``;
* **any other order**: from the page of the *anchor* — the record before which nothing is unread
  — after checking it is still at its position (nothing was added before it, which would have
  moved it); what follows it is new or already handed out.

When a check fails, when the list moved during a read, and at least every ``WHOLE_READ_EVERY``,
the day is read whole from page 1 (bounded by the client's ``max_pages``) and its order observed
again. A read that finds nothing costs one call in every order. Records stamped beyond the
``horizon`` are not handed out yet and ``high`` stays below them: the records after them are
handed out again, so a caller must tolerate repeats (the real-time poll's punch ledger does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from connectors.errors import ResponseFormatError
from connectors.senselink import RecordPage, SlRecord

NEWEST_FIRST = "newest_first"  # ids descending: JCV's documented default (insert time)
ID_ASCENDING = "id_ascending"  # order=1 honoured, or by sign time with no late upload
OTHER = "other"  # e.g. by sign time, with late uploads mid-list
ORDERS = (NEWEST_FIRST, ID_ASCENDING, OTHER)
# A read that trusts the last one's picture of the list reads the day whole at least this often:
# the one order no cheap check can tell from newest first (by sign time, newest first, where a
# late upload of an old recognition lands deep in the list) waits at most this long.
WHOLE_READ_EVERY = timedelta(hours=1)


class RecordSource(Protocol):
    """What the reader needs of a client (connectors.senselink.SenseLinkClient)."""

    max_pages: int

    def record_page(self, *, day: date, page: int, user_type: int = 1) -> RecordPage: ...


@dataclass
class FeedCursor:
    """Where the last read of one JST day's record list left off (stored as JSON)."""

    day: date | None = None
    #: Every record of the list with an id up to this one has been handed out.
    high: int = 0
    #: The order the last whole read observed ("" while fewer than two records were listed).
    order: str = ""
    #: The position (0-based) and id of the record before which nothing is unread; -1: none.
    anchor: int = -1
    anchor_id: int = 0
    #: The page length the anchor's position is counted in (the server's echoed page_size).
    page_size: int = 0
    read_whole_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "high": self.high,
            "order": self.order,
            "anchor": self.anchor,
            "anchor_id": self.anchor_id,
            "page_size": self.page_size,
            "read_whole_at": self.read_whole_at.isoformat() if self.read_whole_at else None,
        }

    @classmethod
    def from_json(cls, value: Any) -> FeedCursor:
        """The stored cursor; anything unreadable is a fresh one (the day is read whole again,
        and what it hands out again the caller tolerates)."""
        if not isinstance(value, dict) or not value.get("day"):
            return cls()
        defaults = {"high": 0, "anchor": -1, "anchor_id": 0, "page_size": 0}
        numbers = {name: value.get(name, default) for name, default in defaults.items()}
        if any(type(number) is not int for number in numbers.values()):
            return cls()
        try:
            order = value.get("order") or ""
            if order not in ORDERS:
                order = ""
            whole_at = value.get("read_whole_at")
            whole_at = datetime.fromisoformat(whole_at) if whole_at else None
            return cls(
                day=date.fromisoformat(value["day"]),
                order=order,
                read_whole_at=whole_at if whole_at and whole_at.tzinfo else None,
                **numbers,
            )
        except (TypeError, ValueError):
            return cls()


@dataclass
class FeedRead:
    """What one read found: the new records (stamped up to the horizon), the cursor to store,
    the calls it made, and whether it read the day whole."""

    records: list[SlRecord]
    cursor: FeedCursor
    calls: int
    whole: bool


def observed_order(ids: Sequence[int]) -> str:
    """The order of a list's ids as listed ("" for fewer than two)."""
    if len(ids) < 2:
        return ""
    pairs = list(zip(ids, ids[1:], strict=False))
    if all(a > b for a, b in pairs):
        return NEWEST_FIRST
    if all(a < b for a, b in pairs):
        return ID_ASCENDING
    return OTHER


def read_new(
    client: RecordSource,
    cursor: FeedCursor,
    *,
    day: date,
    now: datetime,
    horizon: datetime | None = None,
    user_type: int = 1,
) -> FeedRead:
    """The records of ``day``'s list added since ``cursor`` (a cursor of another day starts
    the day afresh), by id; records stamped after ``horizon`` are left for a later read."""
    if cursor.day != day:
        cursor = FeedCursor(day=day)
    pages = _Pages(client, day, user_type)
    span: _Span | None = None
    due = cursor.read_whole_at is None or now - cursor.read_whole_at >= WHOLE_READ_EVERY
    if not due:
        if cursor.order == NEWEST_FIRST:
            span = _from_top(pages, cursor.high)
        elif cursor.anchor >= 0 and cursor.page_size > 0:
            span = _from_anchor(pages, cursor)
    whole = span is None
    if span is None:
        span = _whole(pages)

    new = [record for _position, record in span.items if record.id > cursor.high]
    later = [r.id for r in new if horizon is not None and r.sign_time > horizon]
    ready = [r for r in new if horizon is None or r.sign_time <= horizon]
    high = min(later) - 1 if later else max([cursor.high, *(r.id for r in new)])
    order = (span.order or cursor.order) if whole else cursor.order
    following = FeedCursor(
        day=day,
        high=high,
        order=order,
        page_size=span.size,
        read_whole_at=now if whole else cursor.read_whole_at,
    )
    if order != NEWEST_FIRST and not span.shifted:
        # The anchor moves on over the records handed out, up to the first one that is not.
        anchor, anchor_id = (-1, 0) if whole else (cursor.anchor, cursor.anchor_id)
        for position, record in span.items:
            if record.id > high:
                break
            anchor, anchor_id = position, record.id
        following.anchor, following.anchor_id = anchor, anchor_id
    ready.sort(key=lambda record: record.id)
    return FeedRead(records=ready, cursor=following, calls=pages.calls, whole=whole)


# --- the three reads --------------------------------------------------------------------------


@dataclass
class _Span:
    """Records of consecutive positions as listed (each once), the page length they are
    counted in, whether one was seen twice (the list moved during the read), and the order."""

    size: int
    items: list[tuple[int, SlRecord]] = field(default_factory=list)
    shifted: bool = False
    order: str = ""

    def add(self, number: int, page: RecordPage, seen: set[int], *, skip: int = 0) -> int:
        """Take a page's records after the first ``skip``; returns how many were not seen."""
        fresh = 0
        for index, record in enumerate(page.records):
            if index < skip:
                continue
            if record.id in seen:
                self.shifted = True
                continue
            seen.add(record.id)
            fresh += 1
            self.items.append(((number - 1) * self.size + index, record))
        return fresh


class _Pages:
    """The pages one read fetched (none twice), bounded by the client's ``max_pages``."""

    def __init__(self, client: RecordSource, day: date, user_type: int) -> None:
        self.client = client
        self.day = day
        self.user_type = user_type
        self.fetched: dict[int, RecordPage] = {}
        self.calls = 0

    def get(self, number: int) -> RecordPage:
        if number not in self.fetched:
            if number > self.client.max_pages:
                raise _paging_error(
                    f"SenseLinkの一覧が{self.client.max_pages}ページを超えたため、"
                    "読み込みを中止しました。SenseLinkの応答を確認するため、"
                    "サポートにお問い合わせください。",
                    f"record list of {self.day}: more than {self.client.max_pages} pages",
                )
            self.calls += 1
            self.fetched[number] = self.client.record_page(
                day=self.day, page=number, user_type=self.user_type
            )
        return self.fetched[number]

    def check_progress(self, number: int, page: RecordPage, fresh: int) -> None:
        """A later page with nothing new: the server ignores ``page`` (never a loop)."""
        if number > 1 and page.records and not fresh:
            raise _paging_error(
                "SenseLinkが既に読み込んだ内容と同じページを返しました(ページ指定が無視されて"
                "いる可能性があります)。読み込みを中止し、何も変更していません。"
                "解決しない場合はサポートにお問い合わせください。",
                f"record list of {self.day}: page {number} has only records of earlier pages",
            )


def _whole(pages: _Pages) -> _Span:
    """The day's whole list from page 1, and its order."""
    number = 1
    seen: set[int] = set()
    span = _Span(size=pages.get(1).size)
    while True:
        page = pages.get(number)
        if page.size != span.size:
            span.shifted = True  # positions counted in another page length: no anchor
        pages.check_progress(number, page, span.add(number, page, seen))
        if page.last:
            break
        number += 1
    span.order = observed_order([record.id for _position, record in span.items])
    return span


def _from_top(pages: _Pages, high: int) -> _Span | None:
    """Newest first: pages from 1 until one holds an id not above ``high``; None when what
    was read is not in descending id order."""
    number = 1
    seen: set[int] = set()
    span = _Span(size=pages.get(1).size)
    while True:
        page = pages.get(number)
        pages.check_progress(number, page, span.add(number, page, seen))
        if page.last or any(record.id <= high for record in page.records):
            break
        number += 1
    if observed_order([record.id for _position, record in span.items]) not in ("", NEWEST_FIRST):
        return None
    # Records added while reading pushed earlier ones down a page (seen twice): harmless here.
    span.shifted = False
    return span


def _from_anchor(pages: _Pages, cursor: FeedCursor) -> _Span | None:
    """From the anchor's page on; None when the anchor is not where it was (something was
    added or removed before it) or the page length changed."""
    size, anchor = cursor.page_size, cursor.anchor
    number, offset = anchor // size + 1, anchor % size
    span = _Span(size=size)
    if offset == size - 1:
        # The anchor ends its page: an empty next page proves the list did not grow, so nothing
        # was added before the anchor either, in one call.
        following = pages.get(number + 1)
        if not following.records and following.size == size:
            return span
    page = pages.get(number)
    if (
        page.size != size
        or len(page.records) <= offset
        or page.records[offset].id != cursor.anchor_id
    ):
        return None
    seen = {record.id for record in page.records[: offset + 1]}
    span.add(number, page, seen, skip=offset + 1)
    while not page.last:
        number += 1
        page = pages.get(number)
        if page.size != size:
            return None
        pages.check_progress(number, page, span.add(number, page, seen))
    return span


def _paging_error(message: str, detail: str) -> ResponseFormatError:
    return ResponseFormatError(message, service="senselink", code="senselink_paging", detail=detail)
