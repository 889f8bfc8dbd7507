"""A fake SenseLink Cloud open-platform API, as described in shared/api/senselink.md.

Every call must be signed (query ``app_key``, ``timestamp`` in ms, ``sign`` = md5 of
``timestamp#secret``). Failures answer HTTP 200 with an error envelope; the codes are ours
(SenseLink's are undocumented), checked in this order:

=====  ======================  =============================================================
10006  "ip not allowed"        caller IP not in ``SenseLinkState.allowed_ips`` (when set)
10004  "app key not exist"     missing or unknown ``app_key``
10005  "timestamp expired"     missing, non-numeric or outside ``timestamp_window_ms``
10003  "sign error"            missing or wrong ``sign`` (lowercase hex only)
10010  "api no permission"     the App Key is limited to other APIs (``allowed_apis``)
30001  "Param Invalid"         bad parameters or person fields (the one documented code)
30002  "job number exists"     create/update with another person's ``jobNumber``
30004  "user not exist"        update/delete of an unknown person id
=====  ======================  =============================================================

Person create/update accept only multipart/form-data (camelCase fields); ``""`` clears a field on
update. Records are generated per day on demand from (seed, day) and the KOT employees of the
moment; a record's ``user_id`` is the SenseLink person's id when one with that number exists.

The public contract leaves many points open; ``READINGS`` names the other readings the sandbox
can take (``SenseLinkState.configure`` or ``start_sandbox(senselink=...)``, ``manage.py sandbox
--senselink-reading``): page sizes clamped, lists without ``total`` or as bare arrays, persons
without a job-number field, create answers without the person, an update that replaces the
whole record or does not exist, strict field rules, a server that ignores ``page``, and a record
list that ignores ``order=1`` (newest first, or by sign time).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from connectors.clock import JST

from . import data
from .server import App, Request, Response
from .subscription import Subscription

VERSION = "5.6.1"
IP_NOT_ALLOWED = (10006, "ip not allowed")
APP_KEY_UNKNOWN = (10004, "app key not exist")
TIMESTAMP_EXPIRED = (10005, "timestamp expired")
SIGN_ERROR = (10003, "sign error")
PARAM_INVALID = (30001, "Param Invalid")
JOB_NUMBER_EXISTS = (30002, "job number exists")
USER_NOT_EXIST = (30004, "user not exist")
API_NOT_ALLOWED = (10010, "api no permission")

# form field -> (person field, max length or None)
PERSON_FIELDS = {
    "name": ("name", 64),
    "jobNumber": ("job_number", 45),
    "birthday": ("birthday", None),
    "entryTime": ("entry_time", None),
    "mail": ("mail", 45),
    "mobile": ("mobile", 20),
    "icNumber": ("ic_number", 20),
    "remark": ("remark", 255),
    "gender": ("gender", None),
    "departmentId": ("department_id", None),
    "groups": ("groups", None),
}
# The manual allows "" only for these (v2.3.1p 2.4.1); strict mode refuses it elsewhere.
EMPTY_ALLOWED = {"jobNumber", "icNumber", "mobile", "remark"}
# Data fields an update in "replace" mode clears unless sent (the photo included).
REPLACED_FIELDS = (
    "name",
    "job_number",
    "birthday",
    "entry_time",
    "mail",
    "mobile",
    "ic_number",
    "remark",
    "gender",
    "department_id",
    "groups",
    "avatar",
)
CAMEL_CASE = {
    "job_number": "jobNumber",
    "entry_time": "entryTime",
    "ic_number": "icNumber",
    "department_id": "departmentId",
}
INITIAL_GROUPS: list[dict[str, Any]] = [
    {"id": 1, "name": "社員", "type": 1},
    {"id": 2, "name": "来訪者", "type": 2},
    {"id": 3, "name": "本社入口", "type": 1},
]
RECORD_TYPES = {1, 2, 3, 5}
MAX_RECORD_PAGE_SIZE = 100
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def envelope(
    data_: Any = None, code: int = 200, message: str = "OK", status: int = 200
) -> Response:
    return Response(status, {"code": code, "message": message, "data": data_})


def failure(error: tuple[int, str]) -> Response:
    return envelope(None, *error)


def sign(timestamp: str, secret: str) -> str:
    return hashlib.md5(f"{timestamp}#{secret}".encode()).hexdigest()  # noqa: S324 - SenseLink's scheme


class _DayIndex:
    """One day's records sorted by (sign_time, id), with bisectable time columns per type."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = sorted(records, key=lambda r: (r["sign_time"], r["id"]))
        self.max_id = max((r["id"] for r in self.records), default=0)
        self.times = [r["sign_time"] for r in self.records]
        self.by_type: dict[int, tuple[list[dict[str, Any]], list[int]]] = {}
        for record in self.records:
            rows, times = self.by_type.setdefault(record["user_type"], ([], []))
            rows.append(record)
            times.append(record["sign_time"])

    def select(self, user_type: int | None) -> tuple[list[dict[str, Any]], list[int]]:
        if user_type is None:
            return self.records, self.times
        return self.by_type.get(user_type, ([], []))


class SenseLinkState:
    """SenseLink's data: persons by id and recognition records by day; switches for tests."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        seed: int,
        employees: Callable[[], list[dict[str, Any]]],
        recognitions_per_employee: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.app_key = app_key
        self.app_secret = app_secret
        self.seed = seed
        self.recognitions_per_employee = recognitions_per_employee
        self.allowed_ips: set[str] | None = None
        self.timestamp_window_ms = 300_000
        self.clock: Callable[[], float] = time.time  # seconds; for the timestamp window
        # The readings of what the public contract leaves open (see READINGS / configure).
        self.person_list_shape = "page"  # "page" (with total) | "page_no_total" | "array"
        # How persons are listed: "snake_case" | "camelCase" | "no_job_number" | "no_avatar" |
        # "encrypted_contacts" (mail and mobile as AES-like ciphertext, as some servers answer)
        self.person_fields = "snake_case"
        self.page_size_cap: int | None = None  # lists answer at most this many, and say so
        self.paging = "normal"  # or "ignored": every page is the first one, shuffled
        # The record list's order: "asked" (``order=1`` honoured: id ascending; otherwise by sign
        # time), or whatever is asked "newest_first" (id descending, JCV's documented default)
        # or "oldest_first" (by sign time: a late upload of an old recognition lands mid-list).
        self.record_order = "asked"
        self.create_answer = "person"  # "person" | "id" | "null" | "true"
        self.update_mode = "merge"  # "merge" | "replace" | "unsupported"
        self.strict_fields = False  # refuse "" where the manual does not allow it
        # The zone (hours east of UTC) the record query's local times are read in: the tenant's
        # SenseLink's, which need not be JST.
        self.record_zone_hours = 9
        # Job numbers KOT does not know, recognised once a day on top of the generated records
        # (the sandbox's "overlong" mode puts a very long one here).
        self.extra_job_numbers: tuple[str, ...] = ()
        # An App Key limited to chosen APIs: route templates it may call (None: every one).
        self.allowed_apis: frozenset[str] | None = None
        self.groups: dict[int, dict[str, Any]] = {g["id"]: dict(g) for g in INITIAL_GROUPS}
        # Every person form received, as sent: ("create" | "update", [(field, value), ...]).
        self.received_forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._shuffle = random.Random(seed)
        self.persons: dict[int, dict[str, Any]] = {p["id"]: p for p in data.initial_persons()}
        self._number_index: dict[str, int] = {}
        self._sorted_ids: tuple[tuple, list[int]] = ((), [])
        self._indexed_count = -1
        self._reindex()
        self.next_person_id = 10001
        self._employees = employees
        self._days: dict[date, _DayIndex] = {}
        # The event subscription (push): new records added with add_record are pushed.
        self.subscription = Subscription(clock=lambda: self.clock())

    def configure(self, **switches: Any) -> None:
        """Set reading switches by name (see READINGS), refusing unknown names and values."""
        with self.lock:
            for name, value in switches.items():
                allowed = SWITCHES.get(name)
                if allowed is None:
                    raise ValueError(f"unknown SenseLink sandbox switch {name!r}")
                if allowed is not None and not allowed(value):
                    raise ValueError(f"bad value {value!r} for SenseLink sandbox switch {name!r}")
                setattr(self, name, value)

    def apply_reading(self, name: str) -> None:
        """Take one of the named readings (READINGS)."""
        if name not in READINGS:
            raise ValueError(
                f"unknown SenseLink reading {name!r}; expected one of {sorted(READINGS)}"
            )
        self.configure(**READINGS[name].switches)

    def page_size(self, asked: int) -> int:
        return min(asked, self.page_size_cap) if self.page_size_cap else asked

    def shuffled(self, rows: Iterable[Any]) -> list[Any]:
        rows = list(rows)
        self._shuffle.shuffle(rows)
        return rows

    def listed(self, person: dict[str, Any]) -> dict[str, Any]:
        """A person as the person list shows it, in the configured spelling."""
        person = dict(person)
        if self.person_fields == "no_job_number":
            person.pop("job_number", None)
        elif self.person_fields == "no_avatar":
            person.pop("avatar", None)
        elif self.person_fields == "encrypted_contacts":
            for name in ("mail", "mobile"):
                if person.get(name):
                    digest = hashlib.sha256(f"aes:{person[name]}".encode()).digest()
                    person[name] = base64.b64encode(digest).decode()
        elif self.person_fields == "camelCase":
            person = {CAMEL_CASE.get(k, k): v for k, v in person.items()}
        return person

    # --- persons ---------------------------------------------------------------------------
    def persons_by_job_number(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {p["job_number"]: p for p in self.persons.values() if p.get("job_number")}

    def owner_of(self, job_number: str) -> dict[str, Any] | None:
        """The person holding a job number, through an index kept in step with the endpoints;
        rebuilt when ``persons`` was edited directly (tests do), so 10,000 creates stay linear."""
        with self.lock:
            person = self.persons.get(self._number_index.get(job_number, -1))
            if person is not None and person.get("job_number") == job_number:
                return person
            if len(self.persons) != self._indexed_count or person is not None:
                self._reindex()
                return self.persons.get(self._number_index.get(job_number, -1))
            return None

    def sorted_person_ids(self, user_type: int | None) -> list[int]:
        """Person ids in order, cached between pages (a 10,000-person list is paged 100 times)."""
        key = (len(self.persons), self.next_person_id, user_type)
        if self._sorted_ids[0] != key:
            ids = sorted(
                pid
                for pid, p in self.persons.items()
                if user_type is None or p.get("type") == user_type
            )
            self._sorted_ids = (key, ids)
        return self._sorted_ids[1]

    def _reindex(self) -> None:
        self._number_index = {
            p["job_number"]: pid for pid, p in self.persons.items() if p.get("job_number")
        }
        self._indexed_count = len(self.persons)

    def _index_person(self, person: dict[str, Any], *, added: bool) -> None:
        if self._indexed_count != len(self.persons) - (1 if added else 0):
            self._reindex()
        elif person.get("job_number"):
            self._number_index[person["job_number"]] = person["id"]
            self._indexed_count = len(self.persons)

    def add_person(self, **fields: Any) -> dict[str, Any]:
        """Register a person directly (snake_case fields), as someone in SenseLink's screen would."""
        with self.lock:
            person = data.make_person(self.next_person_id, **fields)
            self.persons[person["id"]] = person
            self._index_person(person, added=True)
            self.next_person_id += 1
            return person

    # --- records ---------------------------------------------------------------------------
    def _day(self, day: date) -> _DayIndex:
        index = self._days.get(day)
        if index is None:
            ids = {p["job_number"]: p["id"] for p in self.persons.values() if p.get("job_number")}
            records = data.generate_records(
                seed=self.seed,
                day=day,
                employees=self._employees(),
                per_employee=self.recognitions_per_employee,
                person_ids=ids,
                extra_job_numbers=self.extra_job_numbers,
            )
            index = self._days[day] = _DayIndex(records)
        return index

    def records_for(self, day: date) -> list[dict[str, Any]]:
        """The day's records, ordered; change them through set_records / add_record."""
        with self.lock:
            return list(self._day(day).records)

    def set_records(self, day: date, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self._days[day] = _DayIndex(records)

    def add_record(
        self,
        *,
        when: datetime,
        job_number: str | None = None,
        user_type: int = 1,
        user_name: str | None = None,
        user_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add one recognition at `when` (aware, or naive JST) and return the full record.

        The day's generated records stay; call ``set_records(day, [])`` first for a day of your own.
        """
        if when.tzinfo is None:
            when = when.replace(tzinfo=JST)
        day = when.astimezone(JST).date()
        with self.lock:
            index = self._day(day)
            person = self.persons_by_job_number().get(job_number) if job_number else None
            # Ids grow with insertion across days, as SenseLink's do: a record added now is
            # above every record listed so far, whatever its day (the record feed relies on it).
            record_id = max(
                (day - data.RECORD_ID_EPOCH).days * 1_000_000,
                *(days.max_id for days in self._days.values()),
            )
            essentials = {
                "user_type": user_type,
                "job_number": job_number,
                "user_id": user_id if user_id is not None else (person["id"] if person else 0),
                "user_name": user_name
                if user_name is not None
                else (person["name"] if person else ""),
                "group_id": 1 if user_type == 1 else 2,
                "group_name": "社員" if user_type == 1 else "来訪者",
                **fields,
            }
            record = data.finish_record(record_id + 1, int(when.timestamp()), essentials)
            self._days[day] = _DayIndex([*index.records, record])
        self.subscription.publish(record)
        return record

    def query_records(
        self,
        start: int,
        end: int,
        user_type: int | None,
        offset: int,
        limit: int,
        *,
        order: str = "time",
    ) -> list[dict[str, Any]]:
        """Records with start <= sign_time <= end, in ``order``, sliced [offset:offset+limit].

        ``order`` "time": by sign time, so a record added later (a terminal's late upload of an
        old recognition) lands among the records of its time and shifts the ones after it;
        "id" (the API's ``order=1``): a record added later comes after every record added
        before it; "id_desc" (newest first): it comes before them.
        """
        first = datetime.fromtimestamp(start, JST).date()
        last = datetime.fromtimestamp(end, JST).date()
        page: list[dict[str, Any]] = []
        if order in ("id", "id_desc"):
            with self.lock:
                day = first
                rows_in_range: list[dict[str, Any]] = []
                while day <= last:
                    rows, times = self._day(day).select(user_type)
                    lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
                    rows_in_range.extend(rows[lo:hi])
                    day += timedelta(days=1)
                rows_in_range.sort(key=lambda r: r["id"], reverse=order == "id_desc")
                return [dict(r) for r in rows_in_range[offset : offset + limit]]
        with self.lock:
            day = first
            while day <= last and len(page) < limit:
                rows, times = self._day(day).select(user_type)
                lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
                if offset >= hi - lo:
                    offset -= hi - lo
                else:
                    take = rows[lo + offset : min(hi, lo + offset + limit - len(page))]
                    page.extend(dict(r) for r in take)
                    offset = 0
                day += timedelta(days=1)
        return page

    def record_order_for(self, asked: str | None) -> str:
        """The order the record list answers in, given the request's ``order`` parameter."""
        if self.record_order == "newest_first":
            return "id_desc"
        if self.record_order == "oldest_first":
            return "time"
        return "id" if asked == "1" else "time"


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_PART_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)
_PART_FILENAME = re.compile(rb'\bfilename="([^"]*)"', re.IGNORECASE)
_PART_CHARSET = re.compile(rb"charset=\"?([\w-]+)", re.IGNORECASE)


def parse_form(request: Request) -> dict[str, list[str]] | None:
    """The fields of a multipart/form-data body (files become their file name), or None.

    A small parser of its own: the e-mail package's takes milliseconds per request, which a
    benchmark of 10,000 person creates would measure instead of the client.
    """
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    found = _BOUNDARY.search(content_type)
    if found is None:
        return None
    delimiter = b"--" + found.group(1).encode("latin-1")
    chunks = request.body.split(delimiter)
    if len(chunks) < 3:
        return None
    fields: dict[str, list[str]] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, payload = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            return None
        payload = payload.removesuffix(b"\r\n")
        disposition = next(
            (
                line
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-disposition:")
            ),
            b"",
        )
        name = _PART_NAME.search(disposition)
        if name is None or not name.group(1):
            continue
        key = name.group(1).decode("utf-8", "replace")
        filename = _PART_FILENAME.search(disposition)
        if filename is not None:
            fields.setdefault(key, []).append(filename.group(1).decode("utf-8", "replace"))
            continue
        charset = _PART_CHARSET.search(head)
        try:
            value = payload.decode(charset.group(1).decode() if charset else "utf-8")
        except (LookupError, UnicodeDecodeError):
            return None
        fields.setdefault(key, []).append(value)
    return fields


def _valid_date(value: str) -> bool:
    try:
        return len(value) == 10 and date.fromisoformat(value) is not None
    except ValueError:
        return False


def _too_long(value: str, limit: int | None) -> bool:
    return limit is not None and len(value) > limit


def person_changes(form: dict[str, list[str]]) -> dict[str, Any] | None:
    """Validated person fields from a form ("" clears), or None when a value is invalid."""
    changes: dict[str, Any] = {}
    for form_name, (field, limit) in PERSON_FIELDS.items():
        if form_name not in form:
            continue
        values = form[form_name]
        if field == "groups":
            ids = [v.strip() for value in values for v in value.split(",") if v.strip()]
            if not all(v.isdigit() for v in ids):
                return None
            changes["groups"] = [int(v) for v in ids]
            continue
        value = values[-1].strip()
        if value == "":
            changes[field] = None
        elif _too_long(value, limit) or (
            field in ("birthday", "entry_time") and not _valid_date(value)
        ):
            return None
        elif field == "gender":
            if value not in ("1", "2"):
                return None
            changes[field] = int(value)
        elif field == "department_id":
            if not value.isdigit():
                return None
            changes[field] = int(value)
        else:
            changes[field] = value
    if "avatarFile" in form:
        changes["avatar"] = (
            f"/static/avatar/{hashlib.md5(form['avatarFile'][-1].encode()).hexdigest()}.jpg"  # noqa: S324
        )
    return changes


class SenseLinkApp(App):
    service = "senselink"

    def __init__(self, state: SenseLinkState) -> None:
        super().__init__()
        self.state = state
        self.add_route("GET", "/api/v3/server/version", self.version)
        self.add_route("GET", "/api/v1/user/list", self.list_persons)
        self.add_route("POST", "/api/v1/user", self.create_person)
        self.add_route("POST", "/api/v2/user", self.create_person)
        self.add_route("POST", "/api/v1/user/update/{id}", self.update_person)
        self.add_route("GET", "/api/v1/user/delete/{id}", self.delete_person)
        self.add_route("GET", "/api/v5/record/list", self.list_records)
        self.add_route("GET", "/api/v1/group", self.list_groups)
        self.add_route("POST", "/api/v3/event/updateSub", self.update_subscription)

    def handle(self, route: Any, request: Request) -> Response:
        rejection = self.check_signature(request)
        if rejection is None:
            allowed = self.state.allowed_apis
            if allowed is not None and route.template not in allowed:
                rejection = failure(API_NOT_ALLOWED)
        return rejection or route.func(request)

    def check_signature(self, request: Request) -> Response | None:
        state, query = self.state, request.query
        with state.lock:
            allowed, key, secret = state.allowed_ips, state.app_key, state.app_secret
            window, now_ms = state.timestamp_window_ms, state.clock() * 1000
        if allowed is not None and request.client_ip not in allowed:
            return failure(IP_NOT_ALLOWED)
        if query.get("app_key") != key:
            return failure(APP_KEY_UNKNOWN)
        timestamp = query.get("timestamp", "")
        if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > window:
            return failure(TIMESTAMP_EXPIRED)
        if query.get("sign") != sign(timestamp, secret):
            return failure(SIGN_ERROR)
        return None

    def not_found(self, request: Request) -> Response:
        return envelope(None, 404, "Not Found", status=404)

    # --- endpoints ---------------------------------------------------------------------------
    def version(self, request: Request) -> Response:
        return envelope(VERSION)

    @staticmethod
    def _int(query: dict[str, str], name: str, default: int) -> int:
        value = query.get(name)
        if value is None or value == "":
            return default
        return int(value) if value.isdigit() else -1

    @classmethod
    def _optional_int(cls, query: dict[str, str], name: str) -> int | None:
        return cls._int(query, name, -2) if query.get(name) else None

    def list_persons(self, request: Request) -> Response:
        page = self._int(request.query, "page", 1)
        size = self._int(request.query, "size", 20)
        user_type = self._optional_int(request.query, "type")
        if page < 1 or size < 1 or user_type == -1:
            return failure(PARAM_INVALID)
        state = self.state
        with state.lock:
            ids = state.sorted_person_ids(user_type)
            if state.person_list_shape == "array":
                return envelope([state.listed(state.persons[pid]) for pid in ids])
            size = state.page_size(size)
            if state.paging == "ignored":
                chosen = state.shuffled(state.listed(state.persons[pid]) for pid in ids[:size])
            else:
                start = (page - 1) * size
                chosen = [state.listed(state.persons[pid]) for pid in ids[start : start + size]]
            body: dict[str, Any] = {"list": chosen, "page_num": page, "page_size": size}
            if state.person_list_shape == "page":
                body["total"] = len(ids)
        return envelope(body)

    def list_groups(self, request: Request) -> Response:
        page = self._int(request.query, "page", 1)
        size = self._int(request.query, "size", 20)
        if page < 1 or size < 1:
            return failure(PARAM_INVALID)
        with self.state.lock:
            groups = sorted(self.state.groups.values(), key=lambda g: -g["id"])  # id descending
            size = self.state.page_size(size)
            chosen = [dict(g) for g in groups[(page - 1) * size : page * size]]
        return envelope({"data": chosen, "page_num": page, "page_size": size, "total": len(groups)})

    def _keep(self, action: str, form: dict[str, list[str]] | None) -> None:
        if form is not None:
            with self.state.lock:
                if len(self.state.received_forms) < 100_000:
                    parts = [(name, value) for name, values in form.items() for value in values]
                    self.state.received_forms.append((action, parts))

    def create_person(self, request: Request) -> Response:
        form = parse_form(request)
        self._keep("create", form)
        changes = self._changes(form)
        if changes is None or not changes.get("name"):
            return failure(PARAM_INVALID)
        with self.state.lock:
            if any(g not in self.state.groups for g in changes.get("groups") or []):
                return failure(PARAM_INVALID)
            number = changes.get("job_number")
            if number and self.state.owner_of(number) is not None:
                return failure(JOB_NUMBER_EXISTS)
            changes.setdefault("groups", [])
            person = self.state.add_person(**changes)
            answer = self.state.create_answer
        if answer == "id":
            return envelope(person["id"])
        if answer == "null":
            return envelope(None)
        if answer == "true":
            return envelope(True)
        return envelope(dict(person))

    def _changes(self, form: dict[str, list[str]] | None) -> dict[str, Any] | None:
        """Validated person fields of a form, or None; strict mode also refuses "" where the
        manual does not allow it and any field the manual does not name."""
        if form is None:
            return None
        if self.state.strict_fields:
            for name, values in form.items():
                if name not in PERSON_FIELDS and name != "avatarFile":
                    return None
                if name not in EMPTY_ALLOWED and name != "groups" and "" in values:
                    return None
        return person_changes(form)

    def _person_id(self, request: Request) -> int:
        raw = request.params["id"]
        return int(raw) if raw.isdigit() else -1  # no person has a negative id

    def update_person(self, request: Request) -> Response:
        if self.state.update_mode == "unsupported":
            return self.not_found(request)
        form = parse_form(request)
        self._keep("update", form)
        changes = self._changes(form)
        if changes is None or ("name" in changes and not changes["name"]):
            return failure(PARAM_INVALID)
        if changes.get("groups") is None and "groups" in changes:
            changes["groups"] = []
        with self.state.lock:
            person = self.state.persons.get(self._person_id(request))
            if person is None:
                return failure(USER_NOT_EXIST)
            number = changes.get("job_number")
            owner = self.state.owner_of(number) if number else None
            if owner is not None and owner["id"] != person["id"]:
                return failure(JOB_NUMBER_EXISTS)
            if self.state.update_mode == "replace":
                # The whole record is replaced by what was sent: the rest is cleared.
                for name in REPLACED_FIELDS:
                    person[name] = [] if name == "groups" else ("" if name == "name" else None)
            person.update(changes)
            self.state._index_person(person, added=False)
            return envelope(dict(person))

    def delete_person(self, request: Request) -> Response:
        with self.state.lock:
            person = self.state.persons.pop(self._person_id(request), None)
        if person is None:
            return failure(USER_NOT_EXIST)
        return envelope(None)

    def update_subscription(self, request: Request) -> Response:
        """Register or restore the event subscription: JSON or form ``url`` (the receiver)."""
        url = ""
        if request.headers.get("Content-Type", "").lower().startswith("application/json"):
            try:
                payload = json.loads(request.body or b"{}")
            except ValueError:
                return failure(PARAM_INVALID)
            if isinstance(payload, dict) and isinstance(payload.get("url"), str):
                url = payload["url"]
        else:
            form = parse_form(request) or {}
            url = (form.get("url") or [""])[-1]
        if not url.startswith(("http://", "https://")) or len(url) > 500:
            return failure(PARAM_INVALID)
        self.state.subscription.register(url)
        return envelope(self.state.subscription.describe())

    def list_records(self, request: Request) -> Response:
        query = request.query
        page = self._int(query, "page", 1)
        size = self._int(query, "size", 20)
        user_type = self._optional_int(query, "type")
        zone = timezone(timedelta(hours=self.state.record_zone_hours))
        try:
            start = datetime.strptime(query.get("date_time_from", ""), TIME_FORMAT).replace(
                tzinfo=zone
            )
            end = datetime.strptime(query.get("date_time_to", ""), TIME_FORMAT).replace(tzinfo=zone)
        except ValueError:
            return failure(PARAM_INVALID)
        if page < 1 or not 1 <= size <= MAX_RECORD_PAGE_SIZE or end < start:
            return failure(PARAM_INVALID)
        if user_type is not None and user_type not in RECORD_TYPES:
            return failure(PARAM_INVALID)
        size = self.state.page_size(size)
        ignored = self.state.paging == "ignored"
        rows = self.state.query_records(
            int(start.timestamp()),
            int(end.timestamp()),
            user_type,
            0 if ignored else (page - 1) * size,
            size,
            order=self.state.record_order_for(query.get("order")),
        )
        if ignored:
            rows = self.state.shuffled(rows)
        return envelope({"list": rows, "page_num": page, "page_size": size})

    # --- faults ------------------------------------------------------------------------------
    def fault_response(self, kind: str, request: Request) -> Response:
        if kind == "maintenance":
            return envelope(None, 500, "Internal Server Error", status=500)
        if kind == "throttle":
            response = envelope(None, 429, "Too Many Requests", status=429)
            response.headers["Retry-After"] = "1"
            return response
        if kind == "malformed_json":
            return Response(
                200, body=b'{"code": 200, "message": "OK", "data": {"list": [{"id": 1, "sign_'
            )
        if kind == "empty":
            return envelope([])
        if kind == "signature":
            return failure(SIGN_ERROR)
        raise ValueError(kind)

    def reshape(self, template: str, response: Response) -> Response:
        payload = response.payload
        body = payload.get("data")
        if payload.get("code") != 200:
            return response  # an error envelope stays as it is
        if template == "/api/v5/record/list":
            for record in body["list"]:
                record["sign_time"] = datetime.fromtimestamp(record["sign_time"], JST).strftime(
                    TIME_FORMAT
                )
            return response
        if template == "/api/v1/user/list":
            items = body if isinstance(body, list) else body["list"]
            payload["data"] = {
                "list": {str(p["id"]): p for p in items},
                "page_num": "1",
                "total": "many",
            }
            return response
        if template == "/api/v3/server/version":
            payload["data"] = {"version": [5, 6, 1]}
            return response
        if isinstance(body, dict):
            payload["data"] = [body]  # a person arrives as a list
            body["id"] = str(body["id"])
            return response
        payload["code"] = "200"
        return response


# ---------------------------------------------------------------------------------- readings


def _one_of(*values: Any) -> Callable[[Any], bool]:
    return lambda value: value in values


SWITCHES: dict[str, Callable[[Any], bool]] = {
    "person_list_shape": _one_of("page", "page_no_total", "array"),
    "person_fields": _one_of(
        "snake_case", "camelCase", "no_job_number", "no_avatar", "encrypted_contacts"
    ),
    "page_size_cap": lambda v: v is None or (isinstance(v, int) and 1 <= v <= 100),
    "paging": _one_of("normal", "ignored"),
    "record_order": _one_of("asked", "newest_first", "oldest_first"),
    "create_answer": _one_of("person", "id", "null", "true"),
    "update_mode": _one_of("merge", "replace", "unsupported"),
    "strict_fields": _one_of(True, False),
    "allowed_apis": lambda v: v is None or isinstance(v, (set, frozenset)),
    "record_zone_hours": lambda v: isinstance(v, int) and -12 <= v <= 14,
}
# What a key limited to the sync's own APIs may call (no version, no group list).
SYNC_APIS = frozenset(
    {
        "/api/v1/user/list",
        "/api/v1/user",
        "/api/v1/user/update/{id}",
        "/api/v1/user/delete/{id}",
        "/api/v5/record/list",
    }
)


class Reading:
    """One reading of an open point of the contract: the switches and what they mean."""

    def __init__(self, description: str, **switches: Any) -> None:
        self.description = description
        self.switches = switches


READINGS: dict[str, Reading] = {
    "documented": Reading("our reading: pages of what was asked with a total, snake_case, merge"),
    "clamped-pages": Reading(
        "every list answers at most 50 per page (asked 100) and echoes page_size 50",
        page_size_cap=50,
    ),
    "persons-without-total": Reading(
        "the person list is a page object without total", person_list_shape="page_no_total"
    ),
    "persons-bare-array": Reading(
        "the person list is a bare array of every person", person_list_shape="array"
    ),
    "persons-camelcase": Reading(
        "persons listed in camelCase (jobNumber, entryTime)", person_fields="camelCase"
    ),
    "persons-without-job-number": Reading(
        "persons listed without any job-number field", person_fields="no_job_number"
    ),
    "persons-without-photo": Reading(
        "persons listed without the photo field (avatar)", person_fields="no_avatar"
    ),
    "persons-encrypted-contacts": Reading(
        "persons listed with mail and mobile encrypted (a v3 decrypt API exists for them)",
        person_fields="encrypted_contacts",
    ),
    "create-answers-id": Reading("a create answers data = the new id", create_answer="id"),
    "create-answers-null": Reading("a create answers data = null", create_answer="null"),
    "create-answers-true": Reading("a create answers data = true", create_answer="true"),
    "update-replaces": Reading(
        "an update replaces the whole record: fields not sent are cleared, the photo included",
        update_mode="replace",
    ),
    "update-unsupported": Reading(
        "the update endpoint does not exist (HTTP 404)", update_mode="unsupported"
    ),
    "strict-fields": Reading(
        'the manual\'s field rules to the letter: "" only for icNumber, jobNumber, mobile, '
        "remark; unknown fields refused",
        strict_fields=True,
    ),
    "records-local-time-utc8": Reading(
        "the record query's local times are read as UTC+8 (a server set to China time)",
        record_zone_hours=8,
    ),
    "key-limited": Reading(
        "the App Key may call only the sync's APIs (no version, no group list)",
        allowed_apis=SYNC_APIS,
    ),
    "pages-ignored": Reading(
        "every list ignores page and answers its first page, shuffled", paging="ignored"
    ),
    "records-newest-first": Reading(
        "the record list ignores order=1 and lists the newest first (id descending, JCV's "
        "documented default)",
        record_order="newest_first",
    ),
    "records-oldest-first": Reading(
        "the record list ignores order=1 and lists by sign time (a late upload of an old "
        "recognition lands mid-list and shifts the records after it)",
        record_order="oldest_first",
    ),
}
