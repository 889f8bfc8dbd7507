"""SenseLink Cloud open-platform client (see shared/api/senselink.md).

Every call is signed with app_key, timestamp (ms) and sign = md5(timestamp#secret), afresh for
every attempt. The secret and the sign never reach a message, a detail or a log line.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import requests

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

JST = ZoneInfo("Asia/Tokyo")
MAX_PAGE_SIZE = 100
HOST_CHECK_TTL = 5.0  # seconds a successful URL/DNS check is trusted (DNS rebinding)
PARAM_INVALID = 30001

# Envelope messages that point at the signature, the key or the caller IP (SenseLink has no
# documented code for these).
_AUTH_HINT = re.compile(r"sign|app[\s_-]?key|auth|\bip\b|white ?list|签名|认证", re.IGNORECASE)
_HEX32 = re.compile(r"\b[0-9a-fA-F]{32}\b")
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")

AUTH_MESSAGE = (
    "SenseLinkの署名認証に失敗しました。Appキー・Appシークレット、"
    "およびアプリケーションドメインへのIP登録をご確認ください。"
)


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
class SlRecord:
    id: int
    sign_time: datetime  # aware, JST
    job_number: str | None
    user_type: int
    user_name: str = ""


class SenseLinkClient(HttpClient):
    """SenseLink: persons (registrants) and recognition records."""

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

    # ------------------------------------------------------------------------ public calls

    def server_version(self) -> str:
        """The server's version string (a cheap signed call for the connection test)."""
        data = self._call("GET", "v3/server/version")
        if isinstance(data, dict):
            data = data.get("version", data.get("server_version"))
        if data is None or isinstance(data, (dict, list)):
            raise self._format_error("server version: no version in data")
        return str(data)

    def iter_persons(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[SlPerson]:
        """Every registrant (type 1), page by page."""
        page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        seen: set[int] = set()
        page = 1
        while True:
            data = self._call(
                "GET", "v1/user/list", params={"type": 1, "page": page, "size": page_size}
            )
            if isinstance(data, list):  # the whole list at once
                yield from self._new_persons(data, seen)
                return
            items, total = self._page(data, "user list")
            new = list(self._new_persons(items, seen))
            yield from new
            if len(items) < page_size or not new:  # short page, or the server ignores paging
                return
            if total is not None and len(seen) >= total:
                return
            page += 1

    def list_persons(self) -> list[SlPerson]:
        return list(self.iter_persons())

    def create_person(self, person: PersonData) -> SlPerson:
        """Create a person, sent exactly once; a read timeout may have created it."""
        fields = {
            "name": person.name,
            "jobNumber": person.job_number,
            "birthday": person.birthday.isoformat() if person.birthday else None,
            "entryTime": person.entry_time.isoformat() if person.entry_time else None,
            "mail": person.mail,
        }
        data = self._call("POST", "v1/user", files=_multipart(fields, omit_none=True), retry=False)
        try:
            return self._parse_person(data)
        except ResponseFormatError as exc:
            exc.may_have_landed = True
            raise

    def update_person(self, person_id: int, person: PersonData) -> None:
        """Overwrite a person's mapped fields; None fields are sent empty, clearing them."""
        fields = {
            "name": person.name,
            "jobNumber": person.job_number,
            "birthday": person.birthday.isoformat() if person.birthday else "",
            "entryTime": person.entry_time.isoformat() if person.entry_time else "",
            "mail": person.mail or "",
        }
        self._call(
            "POST",
            f"v1/user/update/{int(person_id)}",
            files=_multipart(fields, omit_none=False),
            endpoint="/api/v1/user/update/{id}",
        )

    def delete_person(self, person_id: int) -> None:
        self._call(
            "GET",
            f"v1/user/delete/{int(person_id)}",
            endpoint="/api/v1/user/delete/{id}",
            write=True,  # SenseLink deletes with a GET
        )

    def iter_records(
        self, *, day: date, user_type: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[SlRecord]:
        """Recognition records of one local day, fetched and yielded one page at a time."""
        page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        page = 1
        previous_ids: list[int] | None = None
        while True:
            data = self._call(
                "GET",
                "v5/record/list",
                params={
                    "date_time_from": f"{day:%Y-%m-%d} 00:00:00",
                    "date_time_to": f"{day:%Y-%m-%d} 23:59:59",
                    "page": page,
                    "size": page_size,
                    "type": user_type,
                },
            )
            if isinstance(data, list):
                items = data
            else:
                items, _total = self._page(data, "record list")
            records = [self._parse_record(item, user_type) for item in items]
            ids = [r.id for r in records]
            if ids and ids == previous_ids:
                raise self._format_error(f"record list: page {page} repeats page {page - 1}")
            yield from records
            if isinstance(data, list) or len(items) < page_size:
                return
            previous_ids = ids
            page += 1

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
                check_senselink_url(
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
        remote_message = self.redact(str(body.get("message") or ""))[:300]
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

    def _format_error(self, detail: str) -> ResponseFormatError:
        return ResponseFormatError(
            "SenseLinkの応答の形式が想定と異なります。",
            service=self.service,
            detail=self.redact(detail),
        )

    def _page(self, data: Any, what: str) -> tuple[list[Any], int | None]:
        if not isinstance(data, dict):
            raise self._format_error(f"{what}: data is {type(data).__name__}, not a page")
        items = data.get("list")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise self._format_error(f"{what}: 'list' is not a list")
        total = data.get("total")
        try:
            total = int(total) if total is not None else None
        except (TypeError, ValueError, OverflowError):
            total = None
        return items, total

    def _new_persons(self, items: list[Any], seen: set[int]) -> Iterator[SlPerson]:
        for item in items:
            person = self._parse_person(item)
            if person.id not in seen:
                seen.add(person.id)
                yield person

    def _parse_person(self, item: Any) -> SlPerson:
        if not isinstance(item, dict):
            raise self._format_error("person: not an object")
        try:
            person_id = _int(item.get("id"))
        except (TypeError, ValueError):
            raise self._format_error("person: missing or invalid 'id'") from None
        job_number = _first(item, "job_number", "jobNumber")
        mail = _first(item, "mail", "email")
        return SlPerson(
            id=person_id,
            name=str(item.get("name") or ""),
            job_number=_optional_text(job_number),
            birthday=_lenient_date(item.get("birthday")),
            entry_time=_lenient_date(_first(item, "entry_time", "entryTime")),
            mail=_optional_text(mail),
        )

    def _parse_record(self, item: Any, user_type: int) -> SlRecord:
        if not isinstance(item, dict):
            raise self._format_error("record: not an object")
        try:
            record_id = _int(item.get("id"))
        except (TypeError, ValueError):
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
        job_number = _first(item, "job_number", "jobNumber")
        try:
            kind = _int(item.get("user_type", user_type))
        except (TypeError, ValueError):
            raise self._format_error(f"record {record_id}: invalid 'user_type'") from None
        return SlRecord(
            id=record_id,
            sign_time=sign_time,
            job_number=_optional_text(job_number),
            user_type=kind,
            user_name=str(item.get("user_name") or ""),
        )


def _api_root(base_url: str) -> str:
    """The tenant URL without query or fragment, plus "api/"."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/") + "/api/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _multipart(fields: Mapping[str, str | None], *, omit_none: bool) -> list[tuple[str, Any]]:
    """Form fields as real multipart/form-data parts (no file name)."""
    return [
        (name, (None, "" if value is None else str(value)))
        for name, value in fields.items()
        if not (omit_none and value is None)
    ]


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


def _int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise TypeError("not an integer")
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
