"""A fake KING OF TIME Web API (base path /v1.0), as described in shared/api/kot.md.

Readings of the [U] points, kept here in one place:
- Bad parameters and unknown employees answer 400 with error code 200 (KOT's code is undocumented).
- ``GET /employees`` without ``includeResigner=true`` leaves out employees whose
  ``resignationDate`` is before ``date`` (the resignation day itself still counts as employed).
  Unknown ``additionalFields`` names are ignored.
- ``GET /daily-workings/timerecord``: at most 62 calendar days, both ends included; an unknown
  employee key answers 400; punches come back in the order they were stored; URLs longer than
  ``KotState.max_url_length`` get a gateway's 414 (so clients must chunk ``employeeKeys``).
- ``POST /daily-workings/timerecord/{key}``: the time must carry a UTC offset and is stored
  normalised to +09:00; without ``code`` KOT's choice is imitated (1 for the day's first punch,
  else 2). Nothing is deduplicated.

Other readings of KOT's open points (``KOT_READINGS``; ``KotState.configure``; ``manage.py
sandbox --kot-minutes-only --kot-throttle-rate R --kot-throttle-style 303|429``):
- ``minutes_only``: KOT keeps punches at the minute (its screens show HH:MM): the seconds sent
  are dropped when stored.
- ``throttle_rate`` R: a token bucket of R calls per second (burst: one second's worth) in front
  of every call; a call over it is refused before processing, as ``throttle_style`` "303" (HTTP
  429 with KOT's top-level ``{"code": "303"}`` body, no Retry-After) or "429" (a bare 429 with
  Retry-After, whole seconds).
- ``requests``: when a list (``record_requests=True``), every request reaching KOT is recorded
  (method, route template, query, JSON body) for the request-schema test.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time as _time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from connectors.clock import JST

from . import data
from .server import App, Request, Response, html_response

BASE = "/v1.0"
BASE_FIELDS = (
    "key",
    "code",
    "lastName",
    "firstName",
    "divisionCode",
    "divisionName",
    "gender",
    "typeCode",
    "typeName",
    "employeeGroups",
)
ADDITIONAL_FIELDS = (
    "hiredDate",
    "birthDate",
    "resignationDate",
    "emailAddresses",
    "lastNamePhonetics",
    "firstNamePhonetics",
)
PUNCH_NAMES = {"1": "出勤", "2": "退勤", "3": "休憩開始", "4": "休憩終了"}
FORBIDDEN_WINDOWS = ((time(8, 30), time(10, 0)), (time(17, 30), time(18, 30)))
MAX_SPAN_DAYS = 62

AUTH_FAILED = (403, 100, "認証に失敗しました")
FORBIDDEN_WINDOW = (
    403,
    104,
    "次の時間帯(JST)はAPIへのアクセスが禁止されています [08:30 ~ 10:00, 17:30 ~ 18:30]",
)
BAD_REQUEST_CODE = 200
SERVER_ERROR = (500, 300, "Resource Server Error.")
THROTTLED_BODY = {"code": "303", "message": "Too Many Requests"}
THROTTLE_STYLES = ("303", "429")


@dataclass(frozen=True)
class KotReading:
    description: str
    switches: dict[str, Any]


# Readings of KOT's [U] points the portal must survive (shared/api/kot.md).
KOT_READINGS = {
    "as-documented": KotReading("punches stored with the seconds sent; no throttling", {}),
    "minutes-only": KotReading(
        "KOT stores punch times at the minute (the seconds sent are dropped)",
        {"minutes_only": True},
    ),
    "throttle-303": KotReading(
        'KOT throttles at 2 calls/s: HTTP 429 with the top-level "303" body, no Retry-After',
        {"throttle_rate": 2.0, "throttle_style": "303"},
    ),
    "throttle-429": KotReading(
        "KOT throttles at 2 calls/s: a bare HTTP 429 with Retry-After",
        {"throttle_rate": 2.0, "throttle_style": "429"},
    ),
    "minutes-only-throttle-303": KotReading(
        'both: minutes only, and throttled at 2 calls/s with the "303" body',
        {"minutes_only": True, "throttle_rate": 2.0, "throttle_style": "303"},
    ),
}


def errors(status: int, code: int, message: str) -> Response:
    return Response(status, {"errors": [{"message": message, "code": code}]})


def bad_request(message: str) -> Response:
    return errors(400, BAD_REQUEST_CODE, message)


def in_forbidden_window(moment: datetime) -> bool:
    local = moment.astimezone(JST).time()
    return any(start <= local < end for start, end in FORBIDDEN_WINDOWS)


class SandboxClock:
    """KOT's clock for the forbidden windows: real time (plus an offset) unless pinned."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._base = now or (lambda: datetime.now(JST))
        self._pinned: datetime | None = None
        self.offset = timedelta()

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("pin the clock with an aware datetime")
        self._pinned = moment

    def clear(self) -> None:
        self._pinned = None
        self.offset = timedelta()

    def now(self) -> datetime:
        if self._pinned is not None:
            return self._pinned
        moment = self._base()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=JST)
        return moment + self.offset

    def today(self) -> date:
        return self.now().astimezone(JST).date()


class KotState:
    """KOT's data: employees (full dicts, every additional field) and punches as POSTed."""

    def __init__(self, employees: list[dict[str, Any]], token: str) -> None:
        self.lock = threading.RLock()
        self.tokens = {token}
        self.allowed_ips: set[str] | None = None  # None: any caller; else others get 403/100
        self.max_url_length = 8190
        self.divisions = [dict(d) for d in data.DIVISIONS]
        self.employees: list[dict[str, Any]] = []
        self.punches: list[dict[str, Any]] = []
        self._by_key: dict[str, dict[str, Any]] = {}
        self._by_code: dict[str, dict[str, Any]] = {}
        self._punch_index: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.minutes_only = False
        self.throttle_rate: float | None = None
        self.throttle_style = "303"
        self.throttled = 0  # calls refused by the throttle
        self._bucket = 0.0
        self._bucket_at = 0.0
        self.requests: list[dict[str, Any]] | None = None
        self.set_employees(employees)

    # --- readings ----------------------------------------------------------------------------
    def configure(
        self,
        *,
        minutes_only: bool | None = None,
        throttle_rate: float | None = None,
        throttle_style: str | None = None,
        record_requests: bool | None = None,
    ) -> None:
        """Switch readings of KOT's open points (see the module docstring)."""
        with self.lock:
            if minutes_only is not None:
                self.minutes_only = minutes_only
            if throttle_style is not None:
                if throttle_style not in THROTTLE_STYLES:
                    raise ValueError(f"throttle_style must be one of {THROTTLE_STYLES}")
                self.throttle_style = throttle_style
            if throttle_rate is not None:
                self.throttle_rate = throttle_rate if throttle_rate > 0 else None
                self._bucket = max(1.0, throttle_rate)
                self._bucket_at = _time.monotonic()
            if record_requests is not None:
                self.requests = [] if record_requests else None

    def apply_reading(self, name: str) -> None:
        self.configure(**KOT_READINGS[name].switches)

    def take_throttle_token(self) -> float | None:
        """None when the call may pass, else the seconds until the bucket holds a token."""
        with self.lock:
            rate = self.throttle_rate
            if not rate:
                return None
            now = _time.monotonic()
            capacity = max(1.0, rate)
            self._bucket = min(capacity, self._bucket + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return None
            self.throttled += 1
            return (1.0 - self._bucket) / rate

    # --- employees -------------------------------------------------------------------------
    def set_employees(self, employees: list[dict[str, Any]]) -> None:
        with self.lock:
            self.employees = [dict(e) for e in employees]
            self._reindex()

    def add_employee(
        self,
        *,
        key: str | None = None,
        code: str,
        last_name: str = "試験",
        first_name: str = "太郎",
        division_code: str = "100",
        **fields: Any,
    ) -> dict[str, Any]:
        """Add one employee; extra camelCase fields (hiredDate, emailAddresses, ...) go in as given."""
        with self.lock:
            division = next(
                (d for d in self.divisions if d["code"] == division_code), self.divisions[0]
            )
            employee = {
                "key": key or hashlib.md5(f"kot-added:{code}".encode()).hexdigest(),  # noqa: S324
                "code": code,
                "lastName": last_name,
                "firstName": first_name,
                "divisionCode": division["code"],
                "divisionName": division["name"],
                "gender": "male",
                "typeCode": "1",
                "typeName": "正社員",
                "employeeGroups": [],
                "hiredDate": "2020-04-01",
                **fields,
            }
            employee = {k: v for k, v in employee.items() if v is not None}
            self.employees.append(employee)
            self._reindex()
            return employee

    # --- divisions ---------------------------------------------------------------------------
    def set_day_border(self, division_code: str, border: str, *, name: str | None = None) -> None:
        """Give a division another 日付変更時刻 ("05:00"); an unknown code adds the division."""
        with self.lock:
            division = next((d for d in self.divisions if d["code"] == division_code), None)
            if division is None:
                division = {"code": division_code, "name": name or f"所属{division_code}"}
                self.divisions.append(division)
            elif name is not None:
                division["name"] = name
            division["dayBorderTime"] = border

    def remove_all_employees(self) -> None:
        self.set_employees([])

    def employee_by_key(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            return self._by_key.get(key)

    def employee_by_code(self, code: str) -> dict[str, Any] | None:
        with self.lock:
            return self._by_code.get(code)

    def _reindex(self) -> None:
        self._by_key = {e["key"]: e for e in self.employees}
        self._by_code = {e["code"]: e for e in self.employees}

    # --- punches ---------------------------------------------------------------------------
    def add_punch(
        self, employee_key: str, day: date | str, moment: datetime | str, code: int | str
    ) -> dict[str, Any]:
        """Store a punch exactly as the POST would (also usable by tests to pre-load KOT)."""
        with self.lock:
            employee = self._by_key[employee_key]
            if isinstance(moment, str):
                moment = datetime.fromisoformat(moment)
            if self.minutes_only:
                moment = moment.replace(second=0, microsecond=0)
            moment = moment.astimezone(JST).isoformat(timespec="seconds")
            punch = {
                "employeeKey": employee_key,
                "date": day.isoformat() if isinstance(day, date) else day,
                "time": moment,
                "code": str(code),
                "name": PUNCH_NAMES[str(code)],
                "divisionCode": employee["divisionCode"],
                "divisionName": employee["divisionName"],
            }
            self.punches.append(punch)
            self._punch_index[(employee_key, punch["date"])].append(punch)
            return punch

    def punches_for(self, employee_key: str, day: date | str) -> list[dict[str, Any]]:
        with self.lock:
            day = day.isoformat() if isinstance(day, date) else day
            return list(self._punch_index.get((employee_key, day), ()))

    def clear_punches(self) -> None:
        with self.lock:
            self.punches.clear()
            self._punch_index.clear()


def _time_record(punch: dict[str, Any]) -> dict[str, Any]:
    return {k: punch[k] for k in ("time", "code", "name", "divisionCode", "divisionName")}


def _parse_date(value: str | None) -> date | None:
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class KotApp(App):
    service = "kot"

    def __init__(self, state: KotState, clock: SandboxClock) -> None:
        super().__init__()
        self.state = state
        self.clock = clock
        self.add_route("GET", BASE + "/tokens/{token}/available", self.token_available)
        self.add_route("GET", BASE + "/employees", self.employees)
        self.add_route("GET", BASE + "/employees/{code}", self.employee)
        self.add_route("GET", BASE + "/divisions", self.divisions)
        self.add_route("GET", BASE + "/daily-workings/timerecord", self.read_punches)
        self.add_route("POST", BASE + "/daily-workings/timerecord/{key}", self.post_punch)

    # --- cross-cutting checks ----------------------------------------------------------------
    def handle(self, route: Any, request: Request) -> Response:
        self._record(route, request)
        wait = self.state.take_throttle_token()
        if wait is not None:
            if self.state.throttle_style == "429":
                after = str(max(1, math.ceil(wait)))
                return Response(429, body=b"", headers={"Retry-After": after})
            return Response(429, dict(THROTTLED_BODY))
        if len(request.raw_target) > self.state.max_url_length:
            return html_response(414, "Request-URI Too Large")
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        with self.state.lock:
            allowed_ips = self.state.allowed_ips
            token_ok = token in self.state.tokens
        if not token_ok or (allowed_ips is not None and request.client_ip not in allowed_ips):
            return errors(*AUTH_FAILED)
        always_open = route.func in (self.token_available, self.post_punch)
        if not always_open and in_forbidden_window(self.clock.now()):
            return errors(*FORBIDDEN_WINDOW)
        return route.func(request)

    def _record(self, route: Any, request: Request) -> None:
        with self.state.lock:
            if self.state.requests is None:
                return
        try:
            body: Any = json.loads(request.body) if request.body else None
        except ValueError:
            body = request.body
        entry = {
            "method": request.method,
            "template": route.template[len(BASE) :],
            "path": request.path,
            "query": dict(request.query),
            "content_type": request.headers.get("Content-Type"),
            "body": body,
        }
        with self.state.lock:
            if self.state.requests is not None:
                self.state.requests.append(entry)

    def not_found(self, request: Request) -> Response:
        return errors(404, 404, "Not Found")

    # --- endpoints ---------------------------------------------------------------------------
    def token_available(self, request: Request) -> Response:
        with self.state.lock:
            return Response(200, {"available": request.params["token"] in self.state.tokens})

    def _select(self, request: Request) -> tuple[date, tuple[str, ...]] | Response:
        as_of = self.clock.today()
        if "date" in request.query:
            chosen = _parse_date(request.query["date"])
            today = self.clock.today()
            if chosen is None or not (
                today - timedelta(days=3 * 366) <= chosen <= today + timedelta(days=366)
            ):
                return bad_request("dateの指定が不正です")
            as_of = chosen
        wanted = {
            f.strip() for f in request.query.get("additionalFields", "").split(",") if f.strip()
        }
        return as_of, BASE_FIELDS + tuple(f for f in ADDITIONAL_FIELDS if f in wanted)

    @staticmethod
    def _render(employee: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        return {f: employee[f] for f in fields if employee.get(f) is not None}

    def employees(self, request: Request) -> Response:
        selected = self._select(request)
        if isinstance(selected, Response):
            return selected
        as_of, fields = selected
        include_resigner = request.query.get("includeResigner", "").lower() == "true"
        division = request.query.get("division")
        cutoff = as_of.isoformat()
        with self.state.lock:
            body = [
                self._render(e, fields)
                for e in self.state.employees
                if (division is None or e.get("divisionCode") == division)
                and (
                    include_resigner
                    or not (e.get("resignationDate") and e["resignationDate"] < cutoff)
                )
            ]
        return Response(200, body)

    def employee(self, request: Request) -> Response:
        selected = self._select(request)
        if isinstance(selected, Response):
            return selected
        employee = self.state.employee_by_code(request.params["code"])
        if employee is None:
            return bad_request("指定された従業員が存在しません")
        return Response(200, self._render(employee, selected[1]))

    def divisions(self, request: Request) -> Response:
        with self.state.lock:
            return Response(200, [dict(d) for d in self.state.divisions])

    def read_punches(self, request: Request) -> Response:
        start = _parse_date(request.query.get("start"))
        end = _parse_date(request.query.get("end"))
        if start is None or end is None or end < start:
            return bad_request("start, endの指定が不正です")
        if (end - start).days + 1 > MAX_SPAN_DAYS:
            return bad_request(f"取得期間は{MAX_SPAN_DAYS}日以内で指定してください")
        keys_param = request.query.get("employeeKeys")
        division = request.query.get("division")
        with self.state.lock:
            if keys_param:
                keys = [k for k in keys_param.split(",") if k]
                unknown = [k for k in keys if k not in self.state._by_key]
                if unknown:
                    return bad_request(f"従業員が存在しません: {unknown[0]}")
            else:
                keys = [
                    e["key"]
                    for e in self.state.employees
                    if division is None or e.get("divisionCode") == division
                ]
            body = []
            day = start
            while day <= end:
                iso = day.isoformat()
                body.append(
                    {
                        "date": iso,
                        "dailyWorkings": [
                            {
                                "date": iso,
                                "employeeKey": key,
                                "timeRecord": [
                                    _time_record(p)
                                    for p in self.state._punch_index.get((key, iso), ())
                                ],
                            }
                            for key in keys
                        ],
                    }
                )
                day += timedelta(days=1)
        return Response(200, body)

    def post_punch(self, request: Request) -> Response:
        key = request.params["key"]
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return bad_request("リクエストボディが不正です")
        if not isinstance(payload, dict):
            return bad_request("リクエストボディが不正です")
        day = _parse_date(payload.get("date")) if isinstance(payload.get("date"), str) else None
        if day is None:
            return bad_request("dateの指定が不正です")
        moment = None
        if isinstance(payload.get("time"), str):
            try:
                moment = datetime.fromisoformat(payload["time"])
            except ValueError:
                moment = None
        if moment is None or moment.tzinfo is None:
            return bad_request("timeの指定が不正です (YYYY-MM-DDTHH:MM:SS+09:00)")
        code = payload.get("code")
        if isinstance(code, bool) or (code is not None and str(code) not in PUNCH_NAMES):
            return bad_request("codeの指定が不正です")
        with self.state.lock:
            if key not in self.state._by_key:
                return bad_request("指定された従業員が存在しません")
            if code is None:
                code = "2" if self.state._punch_index.get((key, day.isoformat())) else "1"
            punch = self.state.add_punch(key, day, moment, code)
        return Response(
            201, {"date": punch["date"], "employeeKey": key, "timeRecord": _time_record(punch)}
        )

    # --- faults ------------------------------------------------------------------------------
    def fault_response(self, kind: str, request: Request) -> Response:
        if kind == "maintenance":
            return errors(*SERVER_ERROR)
        if kind == "throttle":
            return Response(
                429, {"code": "303", "message": "Too Many Requests"}, headers={"Retry-After": "1"}
            )
        if kind == "malformed_json":
            return Response(200, body=b'[{"key": "0a1b", "code": "1001", "lastName": "\xe5\xb1')
        if kind == "empty":
            return Response(200, [])
        if kind == "signature":
            return errors(*AUTH_FAILED)
        raise ValueError(kind)

    def reshape(self, template: str, response: Response) -> Response:
        payload = response.payload
        if template.endswith("/employees") or template.endswith("/divisions"):
            # a list arrives as an object
            return Response(response.status, {str(i): item for i, item in enumerate(payload)})
        if template.endswith("/daily-workings/timerecord"):
            for day in payload:
                for working in day["dailyWorkings"]:
                    working["timeRecord"] = {"time": None, "code": [1]}
            return response
        if template.endswith("/timerecord/{key}"):
            payload["timeRecord"]["code"] = [payload["timeRecord"]["code"]]
            payload["date"] = 20261124
            return response
        if template.endswith("/available"):
            return Response(200, {"available": "yes"})
        if template.endswith("/employees/{code}"):
            return Response(200, [payload])
        return Response(200, "unexpected")
