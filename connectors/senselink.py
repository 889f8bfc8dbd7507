"""SenseLink Cloud open-platform client (see shared/api/senselink.md).

Every call is signed with app_key, timestamp (ms) and sign = md5(timestamp#secret), afresh for
every attempt. The secret and the sign never reach a message, a detail or a log line.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from connectors import transport
from connectors.clock import JST
from connectors.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NetworkError,
    ResponseFormatError,
)
from connectors.http import SAFE_METHODS, HttpClient
from connectors.netcheck import UnsafeUrlError, check_senselink_url
from connectors.text import clean, has_control, shown

MAX_PAGE_SIZE = 100
DEFAULT_MAX_PAGES = 1000  # 100,000 persons or records of one day: far beyond any tenant
DEFAULT_RECORD_MARGIN = timedelta(hours=3)
HOST_CHECK_TTL = 5.0  # seconds a successful URL/DNS check is trusted (DNS rebinding)
PARAM_INVALID = 30001

# Envelope messages that point at the signature, the key or the caller IP (SenseLink has no
# documented code for these).
_AUTH_HINT = re.compile(r"sign|app[\s_-]?key|auth|\bip\b|white ?list|签名|认证", re.IGNORECASE)
# Envelope messages of an API path the server does not know (an update endpoint that is not
# there). "user not exist" / "user not found" are about the person, not the path: not these.
_UNKNOWN_PATH_HINT = re.compile(
    r"no (?:handler|route|mapping) found|(?:unknown|invalid) (?:path|api|url|uri)"
    r"|(?:path|api|url|uri|interface|method) not (?:found|exist|supported|allowed)"
    r"|不存在的接口|接口不存在",
    re.IGNORECASE,
)
_HEX32 = re.compile(r"\b[0-9a-fA-F]{32}\b")
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

AUTH_MESSAGE = (
    "SenseLinkの署名認証に失敗しました。Appキー・Appシークレット、"
    "およびアプリケーションドメインへのIP登録をご確認ください。"
)


# ------------------------------------------------------------------- the request schema
#
# The person form fields as JCV's manual documents them (v2.3.1p "2.4 登録者の API" §2.4.1,
# 従業員の追加 POST /api/v1/user, form-data). Every person request the client builds is checked
# against this table before it leaves: lengths, the few fields where "" is allowed, formats.


@dataclass(frozen=True)
class FieldRule:
    """One documented form field: its limit, whether "" may be sent, and its kind."""

    max_length: int | None = None
    empty_allowed: bool = False
    kind: str = "text"  # text | date (YYYY-MM-DD) | int | ids (list<long>) | file
    choices: tuple[int, ...] = ()
    required: bool = False


PERSON_FIELDS: dict[str, FieldRule] = {
    "name": FieldRule(required=True),  # no documented length limit
    "jobNumber": FieldRule(max_length=45, empty_allowed=True),
    "icNumber": FieldRule(max_length=20, empty_allowed=True),
    "mobile": FieldRule(max_length=20, empty_allowed=True),
    "remark": FieldRule(max_length=255, empty_allowed=True),
    "mail": FieldRule(max_length=45),
    "position": FieldRule(max_length=45),
    "location": FieldRule(max_length=45),
    "areaCode": FieldRule(),
    "prompt": FieldRule(),
    "birthday": FieldRule(kind="date"),
    "entryTime": FieldRule(kind="date"),
    "gender": FieldRule(kind="int", choices=(1, 2)),
    "departmentId": FieldRule(kind="int"),
    "force": FieldRule(kind="int", choices=(0, 1)),
    "groups": FieldRule(kind="ids"),
    "avatarFile": FieldRule(kind="file"),  # the face photo: this portal never sends it
}
# What the portal itself may send (the photo never, groups only on create).
CREATE_FIELDS = ("name", "jobNumber", "birthday", "entryTime", "mail", "groups")
UPDATE_FIELDS = ("name", "birthday", "entryTime", "mail")
MAIL_MAX_LENGTH = PERSON_FIELDS["mail"].max_length
JOB_NUMBER_MAX_LENGTH = PERSON_FIELDS["jobNumber"].max_length


def person_form_problems(parts: list[tuple[str, str]], *, allowed: tuple[str, ...]) -> list[str]:
    """What in a person form breaks the manual's rules (an empty list: it may be sent).

    ``allowed`` is the request's own field list (CREATE_FIELDS or UPDATE_FIELDS); a create must
    carry every required field.
    """
    problems = []
    names = [name for name, _value in parts]
    for name, value in parts:
        rule = PERSON_FIELDS.get(name)
        if rule is None or name not in allowed:
            problems.append(f"{name}: not a field this request may send")
        elif rule.kind == "file":
            problems.append(f"{name}: the portal never sends a file")
        elif value == "" and not rule.empty_allowed:
            problems.append(f"{name}: empty string not allowed")
        elif rule.max_length is not None and len(value) > rule.max_length:
            problems.append(f"{name}: longer than {rule.max_length}")
        elif rule.kind == "date" and not _valid_iso_date(value):
            problems.append(f"{name}: not YYYY-MM-DD")
        elif rule.kind in ("int", "ids") and not (value.isascii() and value.isdigit()):
            problems.append(f"{name}: not a number")
        elif rule.choices and int(value) not in rule.choices:
            problems.append(f"{name}: not one of {rule.choices}")
        elif rule.kind != "ids" and names.count(name) > 1:
            problems.append(f"{name}: sent more than once")
    if allowed == CREATE_FIELDS:
        for name, rule in PERSON_FIELDS.items():
            if rule.required and name not in names:
                problems.append(f"{name}: required")
    return list(dict.fromkeys(problems))


def _valid_iso_date(value: str) -> bool:
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PersonData:
    """What we send for a person; None means "leave empty"."""

    job_number: str
    name: str
    birthday: date | None
    entry_time: date | None
    mail: str | None


@dataclass(frozen=True)
class SlPerson:
    id: int
    name: str
    job_number: str | None
    birthday: date | None
    entry_time: date | None
    mail: str | None
    #: Whether the listing carried a job-number field at all (in any spelling), even empty.
    has_job_number_field: bool = field(default=True, compare=False)
    #: The listing entry as SenseLink sent it: the canary compares it before and after an update.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The list page it was seen on (a hint for reading it back).
    page: int | None = field(default=None, compare=False)
    #: Set when the job number holds a control character (connectors/text.py): the number as
    #: people may read it (escaped); ``job_number`` is then None, as for a person without one.
    problem: str | None = None

    def data(self) -> PersonData:
        """The comparable data of this person (only for persons with a job number)."""
        if self.job_number is None:
            raise ValueError(f"SenseLink person {self.id} has no job number")
        return PersonData(
            job_number=self.job_number,
            name=self.name,
            birthday=self.birthday,
            entry_time=self.entry_time,
            mail=self.mail,
        )


@dataclass(frozen=True)
class SlGroup:
    """A SenseLink person group (登録者グループ)."""

    id: int
    name: str
    type: int | None = None


@dataclass(frozen=True)
class SlRecord:
    id: int
    sign_time: datetime  # aware, JST
    job_number: str | None
    user_type: int
    user_name: str = ""
    #: Set when the job number holds a control character (connectors/text.py): the number as
    #: people may read it (escaped); ``job_number`` is then None and the record names no one.
    problem: str | None = None


@dataclass(frozen=True)
class RecordPage:
    """One page of a day's record list, as listed: its records, the page length the server
    echoed (positions are counted in it), and whether it is the list's last page."""

    records: list[SlRecord]
    size: int
    last: bool


@dataclass(frozen=True)
class PersonProbe:
    """What the first page of the person list says (for the connection test)."""

    persons: int  # on the first page
    total: int | None
    job_number_field: bool  # any person carries a job-number field


class UpdateUnsupported(ApiError):
    """The server does not know the update endpoint (HTTP 404/405/501 or an unknown path)."""


class SenseLinkClient(HttpClient):
    """SenseLink: persons (registrants), person groups and recognition records."""

    service = "senselink"
    display_name = "SenseLink"
    auth_code = "senselink_auth"

    def __init__(
        self,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        allow_private_hosts: bool = False,
        now_ms: Callable[[], int] | None = None,
        resolve: Callable[[str], list[str]] | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        record_margin: timedelta = DEFAULT_RECORD_MARGIN,
        **http_kwargs: Any,
    ) -> None:
        super().__init__(_api_root(base_url), **http_kwargs)
        self.url = base_url
        self._app_key = app_key
        self._app_secret = app_secret
        self._allow_private_hosts = allow_private_hosts
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._resolve = resolve
        self._host_checked_until = float("-inf")
        self._host_lock = threading.Lock()
        self.max_pages = max(1, int(max_pages))
        self.record_margin = record_margin

    # ------------------------------------------------------------------------ public calls

    def server_version(self) -> str:
        """The server's version string (a cheap signed call for the connection test)."""
        data = self._call("GET", "v3/server/version")
        if isinstance(data, dict):
            data = data.get("version", data.get("server_version", data.get("edition")))
        if data is None or isinstance(data, (dict, list)):
            raise self._format_error("server version: no version in data")
        return transport.cut(self.redact(str(data)), 64)  # shown to people: one short line

    def iter_persons(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[SlPerson]:
        """Every registrant (type 1), page by page, each once (see ``_pages``)."""
        for page, item in self._pages(
            "v1/user/list", {"type": 1}, page_size=page_size, what="user list", bare_is_all=True
        ):
            yield self._parse_person(item, page=page)

    def list_persons(self) -> list[SlPerson]:
        return list(self.iter_persons())

    def probe_persons(self) -> PersonProbe:
        """The first page of the person list: is it readable, and are job numbers visible?"""
        data = self._call("GET", "v1/user/list", params={"type": 1, "page": 1, "size": 20})
        total: int | None
        if isinstance(data, list):
            items, total = data, len(data)
        else:
            items, total = self._page(data, "user list")
        persons = [self._parse_person(item) for item in items]
        return PersonProbe(
            persons=len(persons),
            total=total,
            job_number_field=any(p.has_job_number_field for p in persons),
        )

    def find_person(self, person_id: int, *, hint_page: int | None = None) -> SlPerson | None:
        """Read one person back: no public source documents a single-person read, so the page
        it was listed on first, then the whole list (bounded like any listing)."""
        if hint_page is not None:
            data = self._call(
                "GET",
                "v1/user/list",
                params={"type": 1, "page": hint_page, "size": MAX_PAGE_SIZE},
            )
            items = data if isinstance(data, list) else self._page(data, "user list")[0]
            for item in items:
                person = self._parse_person(item, page=hint_page)
                if person.id == person_id:
                    return person
        for person in self.iter_persons():
            if person.id == person_id:
                return person
        return None

    def list_groups(self) -> list[SlGroup]:
        """The person groups (manual 2.5.2 登録者グループリストの表示, GET /api/v1/group).

        The manual's table for the answer is not readable in public copies ("data" with a
        "data.data" list): a page object with ``data`` or ``list``, or a bare array, all taken.
        """
        groups = []
        for _page, item in self._pages(
            "v1/group", {}, page_size=MAX_PAGE_SIZE, what="group list", bare_is_all=True
        ):
            if not isinstance(item, dict):
                raise self._format_error("group: not an object")
            try:
                group_id = _int(item.get("id"))
            except (TypeError, ValueError):
                raise self._format_error("group: missing or invalid 'id'") from None
            try:
                kind = _int(item.get("type")) if item.get("type") is not None else None
            except (TypeError, ValueError):
                kind = None
            name = clean(str(item.get("name") or ""))[:200]
            groups.append(SlGroup(id=group_id, name=name, type=kind))
        return groups

    def create_person(self, person: PersonData, *, groups: tuple[int, ...] = ()) -> int | None:
        """Create a person, sent exactly once; a read timeout may have created it.

        Returns the new person's id when the answer names it. Code 200 with ``data`` null or
        true (no id) is a success too: the next person list reconciles.
        """
        fields: list[tuple[str, str]] = [("name", person.name), ("jobNumber", person.job_number)]
        if person.birthday:
            fields.append(("birthday", person.birthday.isoformat()))
        if person.entry_time:
            fields.append(("entryTime", person.entry_time.isoformat()))
        if person.mail:
            fields.append(("mail", person.mail))
        fields += [("groups", str(int(group))) for group in groups]
        form = self._person_form(fields, allowed=CREATE_FIELDS)
        data = self._call("POST", "v1/user", files=form, retry=False)
        try:
            return self._created_id(data)
        except ResponseFormatError as exc:
            exc.may_have_landed = True
            raise

    def update_person(self, person_id: int, changes: dict[str, str]) -> None:
        """Send only ``changes`` (form names: name, birthday, entryTime, mail), never "".

        No public source documents this endpoint or whether it merges or replaces: the caller
        reads the person back after its first update (the canary). An endpoint the server does
        not know raises UpdateUnsupported.
        """
        fields = list(changes.items())
        form = self._person_form(fields, allowed=UPDATE_FIELDS)
        try:
            self._call(
                "POST",
                f"v1/user/update/{int(person_id)}",
                files=form,
                endpoint="/api/v1/user/update/{id}",
            )
        except UpdateUnsupported:
            raise
        except ConnectorError as exc:
            if _is_unknown_path(exc):
                raise UpdateUnsupported(
                    "SenseLinkが人員の更新API(/api/v1/user/update)に対応していません。"
                    "既存の人員は更新せずに続行しました。サポートにお問い合わせください。",
                    service=self.service,
                    code="senselink_update_unsupported",
                    permanent=True,
                    remote_code=getattr(exc, "remote_code", None),
                    remote_message=getattr(exc, "remote_message", ""),
                    detail=exc.detail,
                ) from None
            raise

    def delete_person(self, person_id: int) -> None:
        self._call(
            "GET",
            f"v1/user/delete/{int(person_id)}",
            endpoint="/api/v1/user/delete/{id}",
            write=True,  # SenseLink deletes with a GET
        )

    def iter_records(
        self,
        *,
        day: date | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        user_type: int = 1,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[SlRecord]:
        """Recognition records with ``start <= sign_time < end`` (or of one JST ``day``),
        fetched and yielded one page at a time, each record once.

        The query's local times are the tenant's SenseLink's, not necessarily JST: the window
        asked for is widened by ``record_margin`` on both sides, and every record is kept or
        dropped by its ``sign_time`` (Unix seconds, zone-free).
        """
        if day is not None:
            start = datetime.combine(day, dt_time.min, tzinfo=JST)
            end = start + timedelta(days=1)
        if start is None or end is None:
            raise ValueError("iter_records needs day, or start and end")
        start, end = start.astimezone(JST), end.astimezone(JST)
        # order=1 (id ascending) may be ignored: the pager reads every page whatever the order,
        # each record once.
        params = {**self._record_window(start, end), "type": user_type, "order": 1}
        for _page, item in self._pages(
            "v5/record/list", params, page_size=page_size, what="record list", bare_is_all=False
        ):
            record = self._parse_record(item, user_type)
            if start <= record.sign_time < end:
                yield record

    def record_page(
        self, *, day: date, page: int, user_type: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> RecordPage:
        """One page of the records listed for one JST ``day`` (the query widened by
        ``record_margin``, so some lie outside it), in the server's order.

        ``order=1`` (id ascending) is asked, but nothing may depend on it being honoured: the
        real-time poll's reader (connectors/record_feed.py) checks the order of every read.
        """
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        start = datetime.combine(day, dt_time.min, tzinfo=JST)
        params = {
            **self._record_window(start, start + timedelta(days=1)),
            "type": user_type,
            "order": 1,
            "page": max(1, int(page)),
            "size": size,
        }
        data = self._call("GET", "v5/record/list", params=params)
        if isinstance(data, list):  # a bare array is the whole list
            return RecordPage([self._parse_record(i, user_type) for i in data], len(data) + 1, True)
        items, _total = self._page(data, "record list")
        echoed = _positive_int(_first(data, "page_size", "pageSize")) or size
        records = [self._parse_record(item, user_type) for item in items]
        return RecordPage(records, echoed, len(records) < echoed)

    def _record_window(self, start: datetime, end: datetime) -> dict[str, str]:
        """The query's local times for ``start <= sign_time < end``, widened by the margin."""
        asked_from = start - self.record_margin
        asked_to = end + self.record_margin - timedelta(seconds=1)
        return {
            "date_time_from": f"{asked_from:%Y-%m-%d %H:%M:%S}",
            "date_time_to": f"{asked_to:%Y-%m-%d %H:%M:%S}",
        }

    # ------------------------------------------------------------------------------ hooks

    def _prepare_params(self, params: Any) -> dict[str, Any]:
        timestamp = str(int(self._now_ms()))
        # MD5 is SenseLink's signing scheme, not our choice.
        digest = hashlib.md5(f"{timestamp}#{self._app_secret}".encode(), usedforsecurity=False)
        sign = digest.hexdigest()
        return {"app_key": self._app_key, "timestamp": timestamp, "sign": sign, **(params or {})}

    def _secrets(self) -> tuple[str, ...]:
        return (self._app_secret,)

    def redact(self, text: str) -> str:
        # A sign is an md5 hex digest: hide any such string a remote message might echo.
        return _HEX32.sub("***", super().redact(text))

    def _before_send(self, method: str, endpoint: str) -> None:
        """Re-check the URL and what its host resolves to now (DNS rebinding), cached briefly."""
        with self._host_lock:
            if self._monotonic() < self._host_checked_until:
                return
            try:
                checked = check_senselink_url(
                    self.url, allow_private_hosts=self._allow_private_hosts, resolve=self._resolve
                )
            except UnsafeUrlError as exc:
                if exc.unresolvable:  # DNS may be down for a moment: not a configuration error
                    raise NetworkError(
                        f"SenseLinkに接続できませんでした。{exc.message}",
                        service=self.service,
                        detail=f"DNS resolution failed before {endpoint}",
                    ) from None
                raise ConfigurationError(
                    f"SenseLinkのURLを使用できません: {exc.message}",
                    service=self.service,
                    code="bad_url",
                    detail=f"URL check failed before {endpoint}",
                ) from None
            # Connect to exactly the addresses just checked: no second resolution.
            self.adapter.pin(urlsplit(self.url).hostname or "", checked)
            self._host_checked_until = self._monotonic() + HOST_CHECK_TTL

    def _classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status in (401, 403):
            return AuthenticationError(
                AUTH_MESSAGE,
                service=self.service,
                code="senselink_auth",
                detail=f"HTTP {status}",
            )
        if status == 429 or status >= 500 or 300 <= status < 400:
            return super()._classify(response)
        try:
            body = self._json(response)
        except ResponseFormatError as exc:
            if 200 <= status < 300 and response.request.method not in SAFE_METHODS:
                exc.may_have_landed = True  # a write answered 2xx: it may have been stored
            if status == 404:
                return ConfigurationError(
                    "SenseLinkのAPIが見つかりませんでした(HTTP 404)。SenseLinkのURLをご確認ください。",
                    service=self.service,
                    code="bad_url",
                    detail="HTTP 404 without JSON",
                )
            return exc
        if not isinstance(body, dict) or "code" not in body:
            return self._format_error(f"HTTP {status}: no envelope 'code'")
        try:
            remote_code = int(body["code"])
        except (TypeError, ValueError, OverflowError):  # Infinity is valid JSON for Python
            return self._format_error(f"HTTP {status}: envelope code is not a number")
        if remote_code == 200 and 200 <= status < 300:
            return None
        remote_message = transport.cut(self.redact(str(body.get("message") or "")), 300)
        detail = f"HTTP {status}, code {remote_code}, message {remote_message!r}"
        if remote_code == PARAM_INVALID:
            return ApiError(
                "SenseLinkがパラメータ不正(30001 Param Invalid)を返しました。"
                "送信した従業員データ(社員番号・氏名・メールアドレスの長さや形式)をご確認ください。",
                service=self.service,
                code="senselink_param_invalid",
                permanent=True,
                remote_code=remote_code,
                remote_message=remote_message,
                detail=detail,
            )
        if _AUTH_HINT.search(str(body.get("message") or "")):
            return AuthenticationError(
                AUTH_MESSAGE, service=self.service, code="senselink_auth", detail=detail
            )
        if remote_code == 200:  # a 4xx with a success envelope: don't trust it
            return super()._classify(response)
        return ApiError(
            f"SenseLinkがエラーを返しました(コード {remote_code}: {remote_message})。"
            "内容をご確認のうえ、解決しない場合はサポートへお問い合わせください。",
            service=self.service,
            code="senselink_error",
            remote_code=remote_code,
            remote_message=remote_message,
            detail=detail,
        )

    # ---------------------------------------------------------------------------- helpers

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        files: Any = None,
        retry: bool = True,
        endpoint: str | None = None,
        write: bool | None = None,
    ) -> Any:
        """The envelope's ``data`` of a successful call."""
        response = self.request(
            method,
            path,
            params=params,
            files=files,
            retry=retry,
            endpoint=endpoint or f"/api/{path}",
            write=write,
        )
        return self._json(response).get("data")

    def _paging_error(self, message: str, detail: str) -> ResponseFormatError:
        return ResponseFormatError(
            message, service=self.service, code="senselink_paging", detail=self.redact(detail)
        )

    def _page(self, data: Any, what: str) -> tuple[list[Any], int | None]:
        """The items and the ``total`` (None when absent) of one page object."""
        if not isinstance(data, dict):
            raise self._format_error(f"{what}: data is {type(data).__name__}, not a page")
        items = data.get("list")
        if items is None and isinstance(data.get("data"), list):
            items = data["data"]  # the group list's "data.data"
        if items is None:
            items = []
        if not isinstance(items, list):
            raise self._format_error(f"{what}: 'list' is not a list")
        return items, _positive_int(data.get("total"), zero_ok=True)

    def _pages(
        self,
        path: str,
        params: dict[str, Any],
        *,
        page_size: int,
        what: str,
        bare_is_all: bool,
        first_page: int = 1,
    ) -> Iterator[tuple[int, Any]]:
        """Every item of a paged list as (page, item), each id once.

        Whatever the server's reading of paging: the page length is the size it echoes
        (``page_size``), not the one asked for; ``total``, when present, ends the listing as soon
        as that many were seen; an empty page ends it; without a total, so does a short page. A
        page with nothing new (the server ignores ``page`` and repeats itself, shuffled or not)
        is an error, and so is a listing longer than ``max_pages``: never a loop, never a
        silent early end. A bare array (no page object) is the whole list.
        """
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        seen: set[int] = set()
        page = max(1, int(first_page))
        while True:
            if page > self.max_pages:
                raise self._paging_error(
                    f"SenseLinkの一覧が{self.max_pages}ページを超えたため、読み込みを中止しました。"
                    "SenseLinkの応答を確認するため、サポートにお問い合わせください。",
                    f"{what}: more than {self.max_pages} pages of {size}",
                )
            data = self._call("GET", path, params={**params, "page": page, "size": size})
            if isinstance(data, list):
                for item in data:
                    item_id = self._item_id(item, what)
                    if item_id not in seen:
                        seen.add(item_id)
                        yield page, item
                return
            items, total = self._page(data, what)
            if not items:
                return
            new = 0
            for item in items:
                item_id = self._item_id(item, what)
                if item_id in seen:
                    continue
                seen.add(item_id)
                new += 1
                yield page, item
            if not new:
                raise self._paging_error(
                    "SenseLinkが既に読み込んだ内容と同じページを返しました(ページ指定が無視されて"
                    "いる可能性があります)。読み込みを中止し、何も変更していません。"
                    "解決しない場合はサポートにお問い合わせください。",
                    f"{what}: page {page} has only items of earlier pages",
                )
            if total is not None:
                if len(seen) >= total:
                    return
            elif len(items) < (_positive_int(_first(data, "page_size", "pageSize")) or size):
                return
            page += 1

    def _item_id(self, item: Any, what: str) -> int:
        if not isinstance(item, dict):
            raise self._format_error(f"{what}: an item is not an object")
        try:
            return _int(item.get("id"))
        except (TypeError, ValueError, OverflowError):
            raise self._format_error(f"{what}: missing or invalid 'id'") from None

    def _parse_person(self, item: Any, *, page: int | None = None) -> SlPerson:
        if not isinstance(item, dict):
            raise self._format_error("person: not an object")
        try:
            person_id = _int(item.get("id"))
        except (TypeError, ValueError, OverflowError):
            raise self._format_error("person: missing or invalid 'id'") from None
        number_keys = [key for key in item if _squash(key) in JOB_NUMBER_KEYS]
        job_number, problem = _key(
            next((item[k] for k in number_keys if item[k] is not None), None)
        )
        mail = _optional_text(_first(item, "mail", "email"))
        mail = _optional_text(clean(mail)) if mail is not None else None
        return SlPerson(
            id=person_id,
            name=clean(str(item.get("name") or "")),
            job_number=job_number,
            birthday=_lenient_date(item.get("birthday")),
            entry_time=_lenient_date(_first(item, "entry_time", "entryTime")),
            mail=mail,
            has_job_number_field=bool(number_keys),
            raw=item,
            page=page,
            problem=problem,
        )

    def _created_id(self, data: Any) -> int | None:
        """The id in a create answer: the person, a bare id, or null/true (no id given)."""
        if data is None or data is True:
            return None
        if isinstance(data, dict):
            return self._parse_person(data).id
        try:
            return _int(data)
        except (TypeError, ValueError, OverflowError):
            raise self._format_error(f"create: data is {type(data).__name__}") from None

    def _person_form(
        self, fields: list[tuple[str, str]], *, allowed: tuple[str, ...]
    ) -> list[tuple[str, Any]]:
        """The multipart parts of a person request, refused before sending if the manual's
        rules (PERSON_FIELDS) forbid any of it."""
        problems = person_form_problems(fields, allowed=allowed)
        if problems:
            raise ApiError(
                "SenseLinkに送信できない値のため、送信しませんでした(項目の長さや形式が"
                "SenseLinkの制限に合いません)。",
                service=self.service,
                code="senselink_field_invalid",
                permanent=True,
                detail="; ".join(problems),
            )
        return [(name, (None, value)) for name, value in fields]

    def _parse_record(self, item: Any, user_type: int) -> SlRecord:
        if not isinstance(item, dict):
            raise self._format_error("record: not an object")
        try:
            record_id = _int(item.get("id"))
        except (TypeError, ValueError, OverflowError):
            raise self._format_error("record: missing or invalid 'id'") from None
        try:
            raw_time: Any = item.get("sign_time")
            seconds = float(raw_time)
            if seconds > 1e11:  # milliseconds, tolerated
                seconds /= 1000
            sign_time = datetime.fromtimestamp(seconds, JST)
        except (TypeError, ValueError, OverflowError, OSError):
            raise self._format_error(
                f"record {record_id}: missing or invalid 'sign_time'"
            ) from None
        job_number, problem = _key(_first(item, "job_number", "jobNumber"))
        try:
            kind = _int(item.get("user_type", user_type))
        except (TypeError, ValueError, OverflowError):
            raise self._format_error(f"record {record_id}: invalid 'user_type'") from None
        return SlRecord(
            id=record_id,
            sign_time=sign_time,
            job_number=job_number,
            user_type=kind,
            user_name=clean(str(item.get("user_name") or "")),
            problem=problem,
        )


JOB_NUMBER_KEYS = frozenset({"jobnumber", "jobno", "jobnum"})


def _squash(key: Any) -> str:
    """A key without case, "_" or "-": job_number, jobNumber and JobNumber are one."""
    return str(key).replace("_", "").replace("-", "").lower()


def _api_root(base_url: str) -> str:
    """The tenant URL without query, fragment or a trailing "/api", plus "api/".

    Customers often paste the API root itself ("https://link.japancv.co.jp/api"): the calls
    must not go to "/api/api/...".
    """
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api"):
        path = path[: -len("/api")]
    return urlunsplit((parts.scheme, parts.netloc, path + "/api/", "", ""))


def _is_unknown_path(exc: ConnectorError) -> bool:
    """Whether an error says the endpoint itself does not exist: a message naming the path, an
    envelope code 404/405/501, or HTTP 404/405/501 without an envelope. HTTP 404 with another
    envelope code is about the person (an unknown id), not the endpoint."""
    if _UNKNOWN_PATH_HINT.search(getattr(exc, "remote_message", "") or ""):
        return True
    remote_code = getattr(exc, "remote_code", None)
    if remote_code is not None:
        return remote_code in (404, 405, 501)
    return bool(re.search(r"HTTP (404|405|501)\b", exc.detail or ""))


def _positive_int(value: Any, *, zero_ok: bool = False) -> int | None:
    """An integer from an int or a numeric string; None for anything else (bools, inf, "")."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value) if not isinstance(value, float) else _int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if number < 0 or (number == 0 and not zero_ok):
        return None
    return number


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _optional_text(value: Any) -> str | None:
    """A stripped string, or None for None and empty strings."""
    if value is None:
        return None
    return str(value).strip() or None


def _key(value: Any) -> tuple[str | None, str | None]:
    """A job number and its problem: (number, None), (None, None) when absent, or (None, the
    number shown) when it holds a control character: refused, never cleaned (connectors/text.py).
    Surrounding whitespace is stripped first, as always."""
    number = _optional_text(value)
    if number is not None and has_control(number):
        return None, shown(number)
    return number, None


def _int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise TypeError("not an integer")
    if isinstance(value, str) and not (
        value.strip().isascii() and value.strip().lstrip("-").isdigit()
    ):
        raise ValueError("not an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not an integer")
    return int(value)


def _lenient_date(value: Any) -> date | None:
    """A date from "YYYY-MM-DD…", a Unix-ms integer, or None for anything else."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            return datetime.fromtimestamp(int(value) / 1000, JST).date()
        if isinstance(value, str):
            match = _DATE_PREFIX.match(value.strip())
            if match:
                return date(*(int(part) for part in match.groups()))
    except (ValueError, OverflowError, OSError):
        return None
    return None
