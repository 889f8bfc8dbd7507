"""KING OF TIME Web API client (see docs in shared/api/kot.md).

The token is sent as a bearer header and, for the token check, in the path: it is redacted from
every message, detail and log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import requests

from connectors.clock import JST
from connectors.errors import (
    ApiError,
    AuthenticationError,
    ConnectorError,
    ForbiddenWindowError,
    ResponseFormatError,
    ServerError,
    ThrottledError,
)
from connectors.http import HttpClient
from connectors.text import clean, has_control, shown
from connectors.throttle import AdaptiveLimiter, Ticket, limiter_for

# KOT refuses most calls inside these windows (JST, [start, end)).
FORBIDDEN_WINDOWS = ((time(8, 30), time(10, 0)), (time(17, 30), time(18, 30)))

MAX_SPAN_DAYS = 62  # KOT's limit for one timerecord read, both ends included
MAX_KEYS_PER_CALL = 100
MAX_KEYS_PARAM_CHARS = (
    3600  # URL-encoded length of employeeKeys: 100 keys of 32 chars fit, URL < ~4000
)
EMPLOYEE_FIELDS = "hiredDate,birthDate,emailAddresses,resignationDate"
PUNCH_CODES = (1, 2, 3, 4)

# Calls KOT allows inside the forbidden windows (labels as passed to `request`).
_WINDOW_EXEMPT = frozenset(
    {"GET /tokens/{token}/available", "POST /daily-workings/timerecord/{key}"}
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BORDER = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")
MAX_DIVISIONS = 10_000
MAX_DIVISION_CODE_CHARS = 64  # KotDivision.code
MAX_DIVISION_NAME_CHARS = 200  # KotDivision.name


def _window_text() -> str:
    return "、".join(f"{s:%H:%M}〜{e:%H:%M}" for s, e in FORBIDDEN_WINDOWS)


def forbidden_window_end(at: datetime) -> datetime | None:
    """End (aware, JST) of the KOT forbidden window containing ``at``, or None outside."""
    if at.tzinfo is None:
        raise ValueError("forbidden_window_end needs an aware datetime")
    local = at.astimezone(JST)
    for start, end in FORBIDDEN_WINDOWS:
        if start <= local.time() < end:
            return datetime.combine(local.date(), end, tzinfo=JST)
    return None


def next_window_start(at: datetime) -> datetime:
    """Start (aware, JST) of the first forbidden window starting at or after ``at``."""
    if at.tzinfo is None:
        raise ValueError("next_window_start needs an aware datetime")
    local = at.astimezone(JST)
    for days in (0, 1):
        day = local.date() + timedelta(days=days)
        for start, _end in FORBIDDEN_WINDOWS:
            candidate = datetime.combine(day, start, tzinfo=JST)
            if candidate >= local:
                return candidate
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class KotEmployee:
    key: str
    code: str
    last_name: str
    first_name: str
    birth_date: date | None
    hired_date: date | None
    resignation_date: date | None
    email: str | None
    division_code: str | None = None
    #: Set when KOT's code or key holds a control character (connectors/text.py): the code as
    #: people may read it (escaped). ``code`` and ``key`` are then "" and must not be used.
    problem: str | None = None

    @property
    def full_name(self) -> str:
        """Family and given name joined by an ideographic space (either may be empty)."""
        return "\u3000".join(part for part in (self.last_name, self.first_name) if part)


@dataclass(frozen=True)
class KotDivisionInfo:
    code: str
    name: str
    day_border: time  # 日付変更時刻: a working day starts at this JST time


@dataclass(frozen=True)
class KotPunch:
    employee_key: str
    date: date
    time: datetime  # aware, JST
    code: int  # 1 clock-in, 2 clock-out, 3 break start, 4 break end


class KotClient(HttpClient):
    """KING OF TIME: employees, punches read and punch registration."""

    service = "kot"
    display_name = "KING OF TIME"
    auth_code = "kot_auth"
    # A 429 / "303" was refused before processing: resent (punch POSTs too), within a budget.
    resend_throttled = True

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        clock: Callable[[], datetime] | None = None,
        limiter: AdaptiveLimiter | None = None,
        max_concurrency: int = 8,
        throttle_retries: int | None = None,
        throttle_max_wait: float | None = None,
        **http_kwargs: Any,
    ) -> None:
        rate = http_kwargs.pop("rate", None)
        super().__init__(base_url, **http_kwargs)
        self._token = token
        self._clock = clock or (lambda: datetime.now(JST))
        if throttle_retries is not None:
            self.throttle_retries = max(0, int(throttle_retries))
        if throttle_max_wait is not None:
            self.throttle_max_wait = max(0.0, float(throttle_max_wait))
        # Rate and concurrency are learned per token and shared by every client of it in this
        # process (connectors/throttle.py); ``rate`` (KOT_RATE_LIMIT) is only a ceiling.
        self.limiter = limiter or limiter_for(
            base_url,
            token,
            max_concurrency=max_concurrency,
            max_rate=rate,
            monotonic=self._monotonic,
            sleep=self._sleep,
        )

    # ------------------------------------------------------------------------ public calls

    def check_token(self) -> bool:
        """KOT's `available` flag for the token; AuthenticationError if KOT refuses it or our IP.

        Allowed inside the forbidden windows.
        """
        response = self.request(
            "GET",
            f"/tokens/{quote(self._token, safe='')}/available",
            endpoint="/tokens/{token}/available",
        )
        body = self._json(response)
        if not isinstance(body, dict) or "available" not in body:
            raise self._format_error("token check: no 'available' in the response")
        available = body["available"]
        if isinstance(available, str) and available.lower() in ("true", "false"):
            available = available.lower() == "true"  # tolerated: a boolean sent as a string
        if not isinstance(available, bool):
            raise self._format_error("token check: 'available' is not a boolean")
        return available

    def list_employees(
        self, *, on: date | None = None, include_resigned: bool = False
    ) -> list[KotEmployee]:
        """Employees as of ``on`` (KOT's default: today), resigned ones only if asked."""
        params: dict[str, str] = {"additionalFields": EMPLOYEE_FIELDS}
        if on is not None:
            params["date"] = on.isoformat()
        if include_resigned:
            params["includeResigner"] = "true"
        body = self._json(self.request("GET", "/employees", params=params, endpoint="/employees"))
        if not isinstance(body, list):
            raise self._format_error(f"employees: expected a list, got {type(body).__name__}")
        return [self._parse_employee(item, index) for index, item in enumerate(body)]

    def list_divisions(self) -> list[KotDivisionInfo]:
        """Divisions (所属) and their day borders (``dayBorderTime``, "00:00" when absent)."""
        body = self._json(self.request("GET", "/divisions", endpoint="/divisions"))
        if not isinstance(body, list):
            raise self._format_error(f"divisions: expected a list, got {type(body).__name__}")
        if len(body) > MAX_DIVISIONS:
            raise self._format_error(f"divisions: {len(body)} divisions, more than {MAX_DIVISIONS}")
        divisions = [self._parse_division(item, index) for index, item in enumerate(body)]
        return [division for division in divisions if division is not None]

    def list_punches(
        self, *, start: date, end: date, employee_keys: Sequence[str]
    ) -> list[KotPunch]:
        """Every punch of these employees between ``start`` and ``end`` (inclusive), sorted.

        Splits the range at 62 days and the keys into URL-sized chunks.
        """
        if end < start:
            raise ValueError("end is before start")
        keys = list(dict.fromkeys(str(k) for k in employee_keys if k))
        punches: list[KotPunch] = []
        for span_start, span_end in _spans(start, end):
            for chunk in _key_chunks(keys):
                response = self.request(
                    "GET",
                    "/daily-workings/timerecord",
                    params={
                        "start": span_start.isoformat(),
                        "end": span_end.isoformat(),
                        "employeeKeys": ",".join(chunk),
                    },
                    endpoint="/daily-workings/timerecord",
                )
                punches.extend(self._parse_timerecords(self._json(response)))
        punches.sort(key=lambda p: (p.time, p.employee_key, p.code))
        return punches

    def register_punch(
        self, *, employee_key: str, date: date, time: datetime, code: int
    ) -> KotPunch:
        """Register one punch, sent exactly once (punches are not idempotent).

        A read timeout raises RequestTimeout(may_have_landed=True): read the day back first. A
        throttled answer (429 / "303") was refused before processing and is sent again.
        """
        if time.tzinfo is None:
            raise ValueError("register_punch needs an aware datetime")
        if int(code) not in PUNCH_CODES:
            raise ValueError(f"unknown punch code {code!r}")
        local = time.astimezone(JST).replace(microsecond=0)
        payload = {
            "date": date.isoformat(),
            "time": local.strftime("%Y-%m-%dT%H:%M:%S+09:00"),
            "code": str(int(code)),  # the reference types it as a string enum ("1".."4")
        }
        response = self.request(
            "POST",
            f"/daily-workings/timerecord/{quote(employee_key, safe='')}",
            json=payload,
            retry=False,
            endpoint="/daily-workings/timerecord/{key}",
        )
        sent = KotPunch(employee_key=employee_key, date=date, time=local, code=int(code))
        # The punch is stored once KOT answered 2xx: never turn an odd body into a failure that
        # would make the caller post it again.
        try:
            body = self._json(response, required=False)
            record = body.get("timeRecord") if isinstance(body, dict) else None
            if not isinstance(record, dict):
                raise ValueError("no timeRecord object")
            answered = str(body.get("employeeKey") or employee_key)
            return KotPunch(
                employee_key=employee_key if has_control(answered) else answered,
                date=_parse_date(body.get("date")) or date,
                time=_parse_time(record.get("time")),
                code=int(_any(record.get("code"))),
            )
        except (ConnectorError, ValueError, TypeError, OverflowError) as exc:
            self.log.warning(
                "punch registered but response unreadable (%s); using the sent values",
                type(exc).__name__,
            )
            return sent

    # --------------------------------------------------------------------- hooks / errors

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _acquire(self) -> Ticket:
        return self.limiter.acquire()

    def _release(self, ticket: Ticket, answer: Any) -> None:
        self.limiter.release(
            ticket, throttled=isinstance(answer, ThrottledError), success=answer is None
        )

    def _secrets(self) -> tuple[str, ...]:
        return (self._token, quote(self._token, safe=""))

    def _before_send(self, method: str, endpoint: str) -> None:
        if endpoint in _WINDOW_EXEMPT:
            return
        end = forbidden_window_end(self._now())
        if end is not None:
            raise self._window_error(end, detail=f"refused locally before {endpoint}")

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=JST)

    def _window_error(self, end: datetime, *, detail: str) -> ForbiddenWindowError:
        return ForbiddenWindowError(
            f"KING OF TIMEのAPI利用禁止時間帯({_window_text()})のため、"
            f"{end:%H:%M}以降に再開します。",
            retry_at=end,
            detail=detail,
        )

    def _classify(self, response: requests.Response) -> ConnectorError | None:
        error = self._classify_answer(response)
        if error is not None and _is_write(response) and not _kot_refusal(response, error):
            # Not an answer in which KOT says it refused the write (its error JSON, a 429): the
            # write may have been stored (a gateway's page after KOT processed it).
            error.may_have_landed = True
        return error

    def _classify_answer(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        try:
            body = self._json(response, required=False)
        except ResponseFormatError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        codes = {clean(str(e.get("code")))[:20] for e in errors}
        if isinstance(body, dict) and str(body.get("code", "")) == "303" or "303" in codes:
            return self._throttled(response, code="kot_throttled")
        if status == 429:
            return self._throttled(response, code="kot_throttled")
        if 200 <= status < 300:
            return None

        remote_message = self.redact(
            " / ".join(str(e.get("message", "")) for e in errors if e.get("message"))
        )[:500]
        remote_code = ",".join(sorted(codes)) or None
        detail = f"HTTP {status}" + (f" code {remote_code}" if remote_code else "")

        if "104" in codes:
            end = forbidden_window_end(self._now()) or self._now() + timedelta(minutes=10)
            return self._window_error(end, detail=detail)
        if "100" in codes or status in (401, 403):
            return AuthenticationError(
                "KING OF TIMEの認証に失敗しました。アクセストークンが正しいか、"
                "トークンの許可IPアドレスにポータルの送信元IPが登録されているか、"
                "トークンに必要な権限(従業員・勤怠)があるかをご確認ください。",
                service=self.service,
                code="kot_auth",
                detail=detail,
            )
        if status >= 500:
            if "300" in codes:
                message = (
                    "KING OF TIMEがメンテナンス中または障害中です(Resource Server Error)。"
                    "時間をおいて再度お試しください。"
                )
            else:
                message = (
                    f"KING OF TIMEでサーバーエラーが発生しました(HTTP {status})。"
                    "時間をおいて再度お試しください。"
                )
            if body is None and response.content.strip()[:1] == b"<":
                detail += " HTML body"
            return ServerError(
                message, service=self.service, code="kot_server_error", detail=detail
            )
        if 300 <= status < 400:
            return super()._classify(response)
        text = f"(KING OF TIMEのメッセージ: {remote_message})" if remote_message else ""
        return ApiError(
            f"KING OF TIMEがリクエストを受け付けませんでした(HTTP {status}){text}。"
            "設定と対象の従業員をご確認ください。",
            service=self.service,
            code="kot_bad_request",
            permanent=True,
            remote_code=remote_code,
            remote_message=remote_message,
            detail=detail,
        )

    # ---------------------------------------------------------------------------- parsing

    def _parse_employee(self, item: Any, index: int) -> KotEmployee:
        if not isinstance(item, dict):
            raise self._format_error(f"employee #{index}: not an object")
        key, code = item.get("key"), item.get("code")
        if key in (None, "") or isinstance(key, (dict, list, bool)):
            raise self._format_error(f"employee #{index}: missing or invalid 'key'")
        if code in (None, "") or isinstance(code, (dict, list, bool)):
            raise self._format_error(f"employee #{index}: missing or invalid 'code'")
        key, code = str(key), str(code)
        # A key is refused, never cleaned: the employee is kept, flagged, with no usable key.
        problem = shown(code) if has_control(code) or has_control(key) else None
        who = f"employee code {shown(code)}"

        def text(field: str) -> str:
            value = item.get(field)
            if value is None:
                return ""
            if not isinstance(value, (str, int)):
                raise self._format_error(f"{who}: '{field}' is not a string")
            return clean(str(value)).strip()

        def day(field: str) -> date | None:
            value = item.get(field)
            try:
                return _parse_date(value)
            except ValueError:
                raise self._format_error(f"{who}: '{field}' is not a YYYY-MM-DD date") from None

        emails = item.get("emailAddresses")
        if isinstance(emails, str):
            emails = [emails]
        email = None
        if isinstance(emails, list):
            email = next(
                (clean(e).strip() for e in emails if isinstance(e, str) and clean(e).strip()),
                None,
            )
        division = item.get("divisionCode")
        return KotEmployee(
            key="" if problem else key,
            code="" if problem else code,
            last_name=text("lastName"),
            first_name=text("firstName"),
            birth_date=day("birthDate"),
            hired_date=day("hiredDate"),
            resignation_date=day("resignationDate"),
            email=email,
            division_code=_division_code(division),
            problem=problem,
        )

    def _parse_division(self, item: Any, index: int) -> KotDivisionInfo | None:
        """A division; None for one whose code holds a control character (its employees take
        the earliest day border, as with a malformed divisionCode)."""
        if not isinstance(item, dict):
            raise self._format_error(f"division #{index}: not an object")
        code, name = item.get("code"), item.get("name")
        if code in (None, "") or not isinstance(code, (str, int)) or isinstance(code, bool):
            raise self._format_error(f"division #{index}: missing or invalid 'code'")
        code = str(code).strip()
        if not code or len(code) > MAX_DIVISION_CODE_CHARS:
            raise self._format_error(f"division #{index}: 'code' is empty or too long")
        if has_control(code):
            self.log.warning(
                "division #%s: code %s has a control character: left out", index, shown(code, 70)
            )
            return None
        if name is not None and not isinstance(name, (str, int)):
            raise self._format_error(f"division {code}: 'name' is not a string")
        border = item.get("dayBorderTime")
        parsed = _parse_border(border)
        if parsed is None:
            raise self._format_error(f"division {code}: 'dayBorderTime' is not HH:MM")
        return KotDivisionInfo(
            code=code,
            name=clean(str(name or "")).strip()[:MAX_DIVISION_NAME_CHARS],
            day_border=parsed,
        )

    def _parse_timerecords(self, body: Any) -> list[KotPunch]:
        if not isinstance(body, list):
            raise self._format_error(f"timerecord: expected a list, got {type(body).__name__}")
        punches = []
        for day_entry in body:
            if not isinstance(day_entry, dict):
                raise self._format_error("timerecord: a day is not an object")
            workings = day_entry.get("dailyWorkings") or []
            if not isinstance(workings, list):
                raise self._format_error("timerecord: 'dailyWorkings' is not a list")
            for working in workings:
                if not isinstance(working, dict):
                    raise self._format_error("timerecord: a daily working is not an object")
                key = working.get("employeeKey")
                if key in (None, ""):
                    raise self._format_error("timerecord: missing 'employeeKey'")
                if has_control(str(key)):
                    continue  # no key the portal asks for holds one (KotEmployee.problem)
                try:
                    day = _parse_date(working.get("date") or day_entry.get("date"))
                except ValueError:
                    day = None
                if day is None:
                    raise self._format_error(f"timerecord of {key}: missing or invalid 'date'")
                records = working.get("timeRecord") or []
                if not isinstance(records, list):
                    raise self._format_error(f"timerecord of {key}: 'timeRecord' is not a list")
                for record in records:
                    try:
                        punches.append(
                            KotPunch(
                                employee_key=str(key),
                                date=day,
                                time=_parse_time(record.get("time")),
                                code=int(_any(record.get("code"))),
                            )
                        )
                    except (AttributeError, TypeError, ValueError, OverflowError):
                        raise self._format_error(
                            f"timerecord of {key} on {day}: invalid punch 'time' or 'code'"
                        ) from None
        return punches


def _division_code(value: Any) -> str | None:
    """An employee's divisionCode, or None when absent or not a usable code (the employee then
    takes the earliest day border: a malformed division must not fail the employee)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    code = str(value).strip()
    usable = code and len(code) <= MAX_DIVISION_CODE_CHARS and not has_control(code)
    return code if usable else None


def _parse_border(value: Any) -> time | None:
    """KOT's dayBorderTime ("05:00", also "5:00" or "05:00:00") as a time; absent → 00:00."""
    if value in (None, ""):
        return time(0, 0)
    if not isinstance(value, str):
        return None
    match = _BORDER.match(value.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _parse_date(value: Any) -> date | None:
    """A YYYY-MM-DD string as a date; None/"" as None; anything else raises ValueError."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(value)


def _parse_time(value: Any) -> datetime:
    """An ISO 8601 time with offset as an aware JST datetime; naive times are taken as JST."""
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=JST)
    return parsed.astimezone(JST)


def _spans(start: date, end: date) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive inclusive spans of at most MAX_SPAN_DAYS days."""
    spans = []
    current = start
    while current <= end:
        last = min(current + timedelta(days=MAX_SPAN_DAYS - 1), end)
        spans.append((current, last))
        current = last + timedelta(days=1)
    return spans


def _key_chunks(keys: list[str]) -> list[list[str]]:
    """Keys grouped so each call has at most MAX_KEYS_PER_CALL keys and a bounded URL."""
    chunks: list[list[str]] = []
    current: list[str] = []
    length = 0
    for key in keys:
        cost = len(quote(key, safe="")) + 3  # the encoded comma
        if current and (len(current) >= MAX_KEYS_PER_CALL or length + cost > MAX_KEYS_PARAM_CHARS):
            chunks.append(current)
            current, length = [], 0
        current.append(key)
        length += cost
    if current:
        chunks.append(current)
    return chunks


def _any(value: Any) -> Any:
    """An untyped JSON value, handed to int()/float() inside the caller's try (for mypy)."""
    return value


def _is_write(response: requests.Response) -> bool:
    request = getattr(response, "request", None)
    return (getattr(request, "method", None) or "GET").upper() not in ("GET", "HEAD", "OPTIONS")


def _kot_refusal(response: requests.Response, error: ConnectorError) -> bool:
    """Whether an error answer is one in which KOT says it refused the request before storing
    anything: a 4xx carrying KOT's error JSON (``errors[]`` or the ``"303"`` body), or a 429.
    Anything else — a 5xx, an HTML or empty page, a 2xx or 5xx carrying a "303" — is not."""
    status = response.status_code
    if status == 429:
        return True
    if not 400 <= status < 500:
        return False
    body = getattr(response, "_connector_json", None)
    if not isinstance(body, dict):
        return False
    return str(body.get("code", "")) == "303" or isinstance(body.get("errors"), list)
