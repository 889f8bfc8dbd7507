"""The fault matrix (issue 8): every fault × both syncs, against the sandbox's fault switches.

For every cell: the run ends in a clear state with a message a support person can act on, and
after the fault is cleared and the run retried or rerun, every punch is in KOT exactly once and
every person in SenseLink is right. Each cell is its own test id and its row of
docs/RELIABILITY.md: this module's session fixture writes the section (a fragment that
`make reports` puts into the document) at the end of a run of the whole matrix
(tests/fault_matrix_report.py).
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from connectors.kot import KotClient
from connectors.sandbox.data import overlong
from connectors.senselink import SenseLinkClient
from integrations.models import SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from integrations.services.windows import window_end
from tests.conftest import JST
from tests.fault_matrix_report import CellResult, MatrixReport
from tests.hostile_helpers import HostileCost, measure, write_hostile_section
from tests.sync_world import DAY, at, configure, only_records, small_kot

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

HOSTILE_COSTS: dict[str, HostileCost] = {}

EMPLOYEE = SyncRun.Kind.EMPLOYEE
ATTENDANCE = SyncRun.Kind.ATTENDANCE

# ------------------------------------------------------------------------------ the world

EMPLOYEES = [
    {
        "code": "0001",
        "last_name": "山田",
        "first_name": "太郎",
        "birthDate": "1990-04-01",
        "hiredDate": "2015-04-01",
        "emailAddresses": ["yamada@example.jp", "taro@example.jp"],
    },
    {
        "code": "0002",
        "last_name": "佐藤",
        "first_name": "花子",
        "hiredDate": "2020-10-01",
        "emailAddresses": ["sato@example.jp"],
    },
    {
        "code": "A0003",
        "last_name": "鈴木",
        "first_name": "一郎",
        "birthDate": "1985-12-31",
        "hiredDate": "2010-04-01",
    },
    {
        "code": "0004",
        "last_name": "田中",
        "first_name": "美咲",
        "birthDate": "1999-02-28",
        "hiredDate": "2022-04-01",
        "emailAddresses": ["tanaka@example.jp"],
    },
    {"code": "0005", "last_name": "高橋", "first_name": "健", "hiredDate": "2024-07-01"},
    {
        "code": "0006",
        "last_name": "伊藤",
        "first_name": "誠",
        "hiredDate": "2018-04-01",
        "resignationDate": "2026-10-31",
    },
]
ACTIVE = [e for e in EMPLOYEES if "resignationDate" not in e]
RESIGNED = "0006"


def wanted_person(employee: dict) -> dict:
    """The SenseLink person an active KOT employee must end up as (SPEC 4.1 mapping)."""
    emails = employee.get("emailAddresses") or []
    return {
        "name": f"{employee['last_name']}\u3000{employee['first_name']}",
        "birthday": employee.get("birthDate"),
        "entry_time": employee.get("hiredDate"),
        "mail": emails[0] if emails else None,
    }


def recognitions() -> list[tuple]:
    """(job number, time[, user type]) of 2026-11-24: 0001..0004 several times, 0005 once."""
    records = []
    for index, employee in enumerate(ACTIVE, start=1):
        code = employee["code"]
        if code == "0005":
            records.append((code, at(8, 55, 7)))
            continue
        records += [(code, at(12, index)), (code, at(8, 50 + index, 3)), (code, at(18, 10 + index))]
    records += [(None, at(10, 0), 2), (None, at(11, 0), 3)]  # a visitor and a stranger
    return records


def expected_punches(keys: dict[str, str]) -> Counter:
    """Earliest (1) and latest (2, only when later) recognition per known employee."""
    spans: dict[str, list[datetime]] = {}
    for job_number, when, *rest in recognitions():
        if job_number is None or (rest and rest[0] != 1) or job_number not in keys:
            continue
        spans.setdefault(job_number, []).append(when)
    expected = Counter()
    for code, times in spans.items():
        first, last = min(times), max(times)
        expected[(keys[code], DAY.isoformat(), "1", first.isoformat())] += 1
        if last > first:
            expected[(keys[code], DAY.isoformat(), "2", last.isoformat())] += 1
    return expected


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WorkerDied(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the run catches or records it."""


@dataclass
class Ctx:
    world: object
    traveller: object
    monkeypatch: pytest.MonkeyPatch
    settings: object
    sync: str

    @property
    def sandbox(self):
        return self.world.sandbox

    @property
    def tenant(self):
        return self.world.acme

    def key(self, code: str) -> str:
        return self.sandbox.kot.employee_by_code(code)["key"]

    def travel(self, moment: datetime) -> None:
        self.traveller.move_to(moment)


def build_world(ctx: Ctx) -> dict:
    """KOT employees, the day's recognitions and SenseLink persons for one cell.

    Employee cells start with SenseLink out of date (one person to update, one right, three to
    create); attendance cells start with SenseLink right (as after an employee sync).
    """
    sandbox = ctx.sandbox
    small_kot(sandbox, *EMPLOYEES)
    # update_persons: person 0001 is out of date and must be corrected (support's switch).
    configure(
        ctx.tenant, attendance_mode="clock_in_out", resigned_policy="keep", update_persons=True
    )
    only_records(sandbox, DAY, *recognitions())
    sandbox.kot.clear_punches()
    persons = sandbox.senselink
    for employee in EMPLOYEES:
        wanted = wanted_person(employee)
        if ctx.sync == EMPLOYEE and employee["code"] in ("A0003", "0004", "0005"):
            continue  # to be created
        if ctx.sync == EMPLOYEE and employee["code"] == "0001":
            wanted = {**wanted, "mail": "old-address@example.jp", "birthday": None}
        persons.add_person(job_number=employee["code"], groups=[1], **wanted)
    untouchable = {
        pid: dict(p)
        for pid, p in persons.persons.items()
        if p.get("job_number") not in {e["code"] for e in ACTIVE}
    }
    return {"untouchable": untouchable}


def check_world(ctx: Ctx, before: dict) -> str:
    """Every punch in KOT exactly once, every SenseLink person right; a one-line summary."""
    sandbox = ctx.sandbox
    keys = {e["code"]: ctx.key(e["code"]) for e in EMPLOYEES}
    # An employee sync never punches.
    wanted = expected_punches(keys) if ctx.sync == ATTENDANCE else Counter()
    held = Counter((p["employeeKey"], p["date"], p["code"], p["time"]) for p in sandbox.kot.punches)
    duplicates = {k: n for k, n in held.items() if n > 1}
    assert not duplicates, f"punches in KOT more than once: {duplicates}"
    assert held == wanted, (
        f"KOT punches differ: missing {sorted(wanted - held)}, extra {sorted(held - wanted)}"
    )

    by_number: dict[str, list[dict]] = {}
    for person in sandbox.senselink.persons.values():
        if person.get("job_number"):
            by_number.setdefault(person["job_number"], []).append(person)
    right = 0
    for employee in ACTIVE:
        found = by_number.get(employee["code"], [])
        assert len(found) == 1, f"{len(found)} SenseLink persons for {employee['code']}"
        actual = {k: found[0].get(k) or None for k in ("name", "birthday", "entry_time", "mail")}
        assert actual == wanted_person(employee), f"SenseLink person {employee['code']} wrong"
        right += 1
    for pid, person in before["untouchable"].items():
        assert sandbox.senselink.persons.get(pid) == person, f"person {pid} was touched"
    return (
        f"KOT: {sum(held.values())}/{sum(wanted.values())} punches, each once; "
        f"SenseLink: {right}/{len(ACTIVE)} persons right, "
        f"{len(before['untouchable'])} others untouched"
    )


# --------------------------------------------------------------------------- messages

_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_PYTHONIC = re.compile(
    r"\b[A-Z][A-Za-z]+(?:Error|Exception|Exit)\b|Traceback|NoneType|object has no attribute"
    r"|\bself\b|HTTPConnectionPool|Max retries|urllib3|requests\.|\{'|\['"
)
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b", re.IGNORECASE)


def run_messages(run: SyncRun) -> list[str]:
    messages = [e.message for e in run.errors.all()]
    if run.status not in (SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL):
        messages.insert(0, run.message)
    return messages


def check_messages(ctx: Ctx, run: SyncRun, must_contain: str = "") -> str:
    """Each message is an actionable Japanese sentence without internals or secrets."""
    messages = run_messages(run)
    secrets = (ctx.sandbox.kot_token, ctx.sandbox.app_secret, ctx.sandbox.app_key)
    summary = run.message if run.status == SyncRun.Status.PARTIAL else None
    for message in [*messages, *([summary] if summary else [])]:
        assert message and _JAPANESE.search(message), f"not Japanese: {message!r}"
        if message is not summary:  # a partial run's message is its counts; errors say why
            assert message.rstrip().endswith(("。", ")", "）")), f"not a sentence: {message!r}"
        if run.status in SyncRun.FINISHED_STATUSES:
            # Nothing retries a finished run by itself: a message must not promise it.
            assert "自動で再試行" not in message, f"promises an automatic retry: {message!r}"
        assert not _PYTHONIC.search(message), f"internals in the message: {message!r}"
        for secret in secrets:
            assert secret not in message, "a secret in the message"
        assert not _HEX32.search(message), f"a signature-like string: {message!r}"
    if must_contain:
        assert any(must_contain in m for m in messages), (
            f"no message mentions {must_contain!r}: {messages}"
        )
    if run.status == SyncRun.Status.PARTIAL:
        per_item = [e for e in run.errors.all() if e.employee_code]
        assert per_item, "a partial run must name the employees it failed"
        return per_item[0].message
    return messages[0] if messages else run.message


# ------------------------------------------------------------------------------ running


def start(ctx: Ctx, **kwargs) -> SyncRun:
    request = request_run(
        tenant=ctx.tenant,
        kind=ctx.sync,
        target_date=DAY if ctx.sync == ATTENDANCE else None,
        enqueue=False,
        **kwargs,
    )
    assert request.created, request.message
    result = execute_run(run_id=request.run.pk)
    assert result is not None, "the run was not executed"
    return result


def retry_same_run(ctx: Ctx, run: SyncRun) -> SyncRun:
    """What the dispatcher does for a waiting run: once due, execute it again."""
    assert run.status == SyncRun.Status.WAITING and run.not_before is not None
    assert execute_run(run_id=run.pk) is None, "a waiting run must not run before its time"
    ctx.travel(run.not_before + timedelta(seconds=1))
    result = execute_run(run_id=run.pk)
    assert result is not None
    return result


def rerun(ctx: Ctx, run: SyncRun) -> SyncRun:
    """Attendance: the admin/tenant rerun action (only what failed); employee: a new run."""
    if ctx.sync == ATTENDANCE:
        from integrations.services.reruns import rerun as request_rerun

        request = request_rerun(run=run)
        assert request.created, request.message
        result = execute_run(run_id=request.run.pk)
        assert result is not None
        return result
    return start(ctx)


def clear(ctx: Ctx) -> None:
    """Switch every fault off: sandbox faults, URLs, patched functions."""
    ctx.sandbox.faults.clear()
    ctx.settings.KOT_API_BASE_URL = ctx.sandbox.kot_url
    configure(ctx.tenant, senselink_url=ctx.sandbox.senselink_url)
    for undo in getattr(ctx, "undo", []):
        undo()
    ctx.undo = []


def patch(ctx: Ctx, owner, name: str, replacement) -> None:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    ctx.undo = [*getattr(ctx, "undo", []), lambda: setattr(owner, name, original)]


# ----------------------------------------------------------------------------- the cells


@dataclass(frozen=True)
class Cell:
    id: str
    fault: str
    api: str
    sync: str
    expect: str  # success | waiting | partial | configuration | transient | worker_lost | window
    arm: Callable[[Ctx], None]
    mentions: str = ""
    start_at: datetime | None = None
    expected_note: str = ""
    hostile: bool = False  # measured (time, calls, memory) for the "Hostile upstreams" section

    @property
    def expected_text(self) -> str:
        if self.expected_note:
            return self.expected_note
        return {
            "success": "success (client retries absorb it)",
            "success_nothing": "success, nothing to punch",
            "waiting": "waiting, retried",
            "partial": "partial, per-employee errors",
            "configuration": "failure (configuration)",
            "transient": "waiting ×3, then failure (transient)",
            "worker_lost": "running → resumed automatically → success",
            "window": "waiting until the window's end",
            "window_posts": "success (POSTs allowed in a window)",
        }[self.expect]


def fault(service, kind, **kwargs) -> Callable[[Ctx], None]:
    def arm(ctx: Ctx) -> None:
        resolved = dict(kwargs)
        if callable(resolved.get("path")):
            resolved["path"] = resolved["path"](ctx)
        ctx.sandbox.faults.add(service, kind, **resolved)

    return arm


def kot_refused(ctx: Ctx) -> None:
    ctx.settings.KOT_API_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1.0"


def senselink_refused(ctx: Ctx) -> None:
    configure(ctx.tenant, senselink_url=f"http://127.0.0.1:{closed_port()}/")


def short_timeouts(arm: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def wrapped(ctx: Ctx) -> None:
        # Well under the faults' 1 s delay, well over a loaded machine's ordinary answer.
        ctx.settings.READ_TIMEOUT_SECONDS = 0.6
        arm(ctx)

    return wrapped


def kill_after(owner, name: str, calls: int) -> Callable[[Ctx], None]:
    """The worker dies (SIGKILL stand-in) once ``calls`` calls of owner.name went through."""

    def arm(ctx: Ctx) -> None:
        real = getattr(owner, name)
        done = Counter()

        def dying(self, *args, **kwargs):
            if done["n"] >= calls:
                raise WorkerDied()
            done["n"] += 1
            return real(self, *args, **kwargs)

        patch(ctx, owner, name, dying)

    return arm


def window_before(owner, name: str, moment: datetime) -> Callable[[Ctx], None]:
    """The clock reaches ``moment`` (inside a KOT window) just before owner.name runs."""

    def arm(ctx: Ctx) -> None:
        real = getattr(owner, name)

        def late(self, *args, **kwargs):
            ctx.travel(moment)
            return real(self, *args, **kwargs)

        patch(ctx, owner, name, late)

    return arm


def window_after(owner, name: str, moment: datetime) -> Callable[[Ctx], None]:
    """The clock reaches ``moment`` (inside a KOT window) right after owner.name returned."""

    def arm(ctx: Ctx) -> None:
        real = getattr(owner, name)

        def then_late(self, *args, **kwargs):
            result = real(self, *args, **kwargs)
            if hasattr(result, "__next__"):  # a generator: move once it is exhausted
                result = list(result)
            ctx.travel(moment)
            return result

        patch(ctx, owner, name, then_late)

    return arm


def overlong_job_number(length: int) -> Callable[[Ctx], None]:
    """The sandbox's overlong mode: one recognition of a ``length``-character job number KOT
    does not know (issue 13: over 64 characters, saving the errors failed on PostgreSQL)."""

    def arm(ctx: Ctx) -> None:
        ctx.sandbox.senselink.add_record(when=at(9, 1), job_number=overlong("Z", length))
        ctx.undo = [
            *getattr(ctx, "undo", []),
            lambda: only_records(ctx.sandbox, DAY, *recognitions()),
        ]

    return arm


def overlong_code(length: int) -> Callable[[Ctx], None]:
    """The sandbox's overlong mode: one more KOT employee whose code has ``length`` characters
    (longer than SenseLink's 45-character job number, and than the error column)."""

    def arm(ctx: Ctx) -> None:
        code = overlong("L", length)
        ctx.sandbox.kot.add_employee(code=code, last_name="長番", first_name="太郎")
        ctx.undo = [*getattr(ctx, "undo", []), lambda: small_kot(ctx.sandbox, *EMPLOYEES)]

    return arm


CREATE = r"^/api/v1/user$"
USERS = "/api/v1/user/list"
RECORDS = "/api/v5/record/list"
EMPLOYEES_PATH = "/v1.0/employees"
PUNCH_READ = "/v1.0/daily-workings/timerecord$"
JST_DAY = datetime(2026, 11, 25, tzinfo=JST)


def key_of(code: str) -> Callable[[Ctx], str]:
    return lambda ctx: ctx.key(code)


E, A = EMPLOYEE, ATTENDANCE


def day_border(border: str) -> Callable[[Ctx], None]:
    """Every KOT division starts its working day at ``border``."""

    def arm(ctx: Ctx) -> None:
        with ctx.sandbox.kot.lock:
            codes = [d["code"] for d in ctx.sandbox.kot.divisions]
        for code in codes:
            ctx.sandbox.kot.set_day_border(code, border)

    return arm


CELLS = [
    # --- connection refused
    Cell(
        "refused-kot-employee",
        "connection refused",
        "KOT (base URL)",
        E,
        "waiting",
        kot_refused,
        "接続できませんでした",
    ),
    Cell(
        "refused-senselink-employee",
        "connection refused",
        "SenseLink (tenant URL)",
        E,
        "waiting",
        senselink_refused,
        "接続できませんでした",
    ),
    Cell(
        "refused-senselink-attendance",
        "connection refused",
        "SenseLink (tenant URL)",
        A,
        "waiting",
        senselink_refused,
        "接続できませんでした",
    ),
    Cell(
        "refused-kot-attendance",
        "connection refused",
        "KOT (base URL), after the SenseLink reads",
        A,
        "waiting",
        kot_refused,
        "接続できませんでした",
    ),
    Cell(
        "refused-kot-persistent-attendance",
        "connection refused, persistent",
        "KOT (base URL)",
        A,
        "transient",
        kot_refused,
        "回試行しましたが失敗しました",
    ),
    # --- read timeout
    Cell(
        "timeout-once-kot-employees-employee",
        "read timeout, once",
        "KOT GET /employees",
        E,
        "success",
        short_timeouts(fault("kot", "timeout", path=EMPLOYEES_PATH, delay=1)),
    ),
    Cell(
        "timeout-kot-employees-employee",
        "read timeout",
        "KOT GET /employees",
        E,
        "waiting",
        short_timeouts(fault("kot", "timeout", path=EMPLOYEES_PATH, delay=1, times=None)),
        "タイムアウト",
    ),
    Cell(
        "timeout-senselink-create-employee",
        "read timeout (not stored)",
        "SenseLink POST /api/v1/user (one person)",
        E,
        "partial",
        short_timeouts(fault("senselink", "timeout", path=CREATE, method="POST", delay=1)),
        "応答がありませんでした",
    ),
    Cell(
        "timeout-after-store-senselink-create-employee",
        "read timeout (stored)",
        "SenseLink POST /api/v1/user (one person)",
        E,
        "partial",
        short_timeouts(
            fault("senselink", "timeout_after_store", path=CREATE, method="POST", delay=1)
        ),
        "応答がありませんでした",
    ),
    Cell(
        "timeout-senselink-records-attendance",
        "read timeout",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        short_timeouts(fault("senselink", "timeout", path=RECORDS, delay=1, times=None)),
        "タイムアウト",
    ),
    Cell(
        "timeout-kot-punch-read-attendance",
        "read timeout",
        "KOT GET /daily-workings/timerecord",
        A,
        "waiting",
        short_timeouts(fault("kot", "timeout", path=PUNCH_READ, delay=1, times=None)),
        "タイムアウト",
    ),
    Cell(
        "timeout-kot-punch-post-attendance",
        "read timeout (not stored)",
        "KOT POST /daily-workings/timerecord/{key} (0002)",
        A,
        "partial",
        short_timeouts(
            fault("kot", "timeout", path=key_of("0002"), method="POST", delay=1, times=None)
        ),
        "登録されていないことを確認しました",
    ),
    Cell(
        "timeout-after-store-kot-punch-post-attendance",
        "read timeout (stored)",
        "KOT POST /daily-workings/timerecord/{key} (0002)",
        A,
        "success",
        short_timeouts(
            fault(
                "kot",
                "timeout_after_store",
                path=key_of("0002"),
                method="POST",
                delay=1,
                times=None,
            )
        ),
        expected_note="success (read back: stored, not re-sent)",
    ),
    # --- HTTP 500 with an HTML body
    Cell(
        "http500-once-kot-employees-employee",
        "HTTP 500 HTML, once",
        "KOT GET /employees",
        E,
        "success",
        fault("kot", "http500_html", path=EMPLOYEES_PATH),
    ),
    Cell(
        "http500-kot-employees-employee",
        "HTTP 500 HTML",
        "KOT GET /employees",
        E,
        "waiting",
        fault("kot", "http500_html", path=EMPLOYEES_PATH, times=None),
        "サーバーエラー",
    ),
    Cell(
        "http500-senselink-users-employee",
        "HTTP 500 HTML",
        "SenseLink GET /api/v1/user/list",
        E,
        "waiting",
        fault("senselink", "http500_html", path=USERS, times=None),
        "サーバーエラー",
    ),
    Cell(
        "http500-senselink-create-employee",
        "HTTP 500 HTML",
        "SenseLink POST /api/v1/user (one person)",
        E,
        "partial",
        fault("senselink", "http500_html", path=CREATE, method="POST"),
        "サーバーエラー",
    ),
    Cell(
        "http500-once-senselink-records-attendance",
        "HTTP 500 HTML, once",
        "SenseLink GET /api/v5/record/list",
        A,
        "success",
        fault("senselink", "http500_html", path=RECORDS),
    ),
    Cell(
        "http500-senselink-records-attendance",
        "HTTP 500 HTML",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        fault("senselink", "http500_html", path=RECORDS, times=None),
        "サーバーエラー",
    ),
    Cell(
        "http500-kot-punch-read-attendance",
        "HTTP 500 HTML",
        "KOT GET /daily-workings/timerecord",
        A,
        "waiting",
        fault("kot", "http500_html", path=PUNCH_READ, method="GET", times=None),
        "サーバーエラー",
    ),
    Cell(
        "http500-kot-punch-post-attendance",
        "HTTP 500 HTML",
        "KOT POST /daily-workings/timerecord/{key} (A0003)",
        A,
        "partial",
        fault("kot", "http500_html", path=key_of("A0003"), method="POST", times=None),
        "サーバーエラー",
    ),
    Cell(
        "maintenance-kot-employees-attendance",
        "KOT maintenance (500/300)",
        "KOT GET /employees",
        A,
        "waiting",
        fault("kot", "maintenance", path=EMPLOYEES_PATH, times=None),
        "メンテナンス",
    ),
    # --- 429 / KOT "303"
    Cell(
        "throttle-once-kot-employees-employee",
        'KOT 429 + "303", once',
        "KOT GET /employees",
        E,
        "success",
        fault("kot", "throttle", path=EMPLOYEES_PATH),
    ),
    Cell(
        "throttle-kot-employees-persistent-employee",
        'KOT 429 + "303", persistent',
        "KOT GET /employees",
        E,
        "transient",
        fault("kot", "throttle", path=EMPLOYEES_PATH, times=None),
        "アクセスが集中",
    ),
    Cell(
        "throttle-senselink-users-employee",
        "SenseLink 429, persistent",
        "SenseLink GET /api/v1/user/list",
        E,
        "waiting",
        fault("senselink", "throttle", path=USERS, times=None),
        "アクセスが集中",
    ),
    Cell(
        "throttle-once-senselink-records-attendance",
        "SenseLink 429, once",
        "SenseLink GET /api/v5/record/list",
        A,
        "success",
        fault("senselink", "throttle", path=RECORDS),
    ),
    Cell(
        "throttle-once-kot-punch-read-attendance",
        'KOT 429 + "303", once',
        "KOT GET /daily-workings/timerecord",
        A,
        "success",
        fault("kot", "throttle", path=PUNCH_READ, method="GET"),
    ),
    Cell(
        "throttle-kot-punch-read-persistent-attendance",
        'KOT 429 + "303", persistent',
        "KOT GET /daily-workings/timerecord",
        A,
        "transient",
        fault("kot", "throttle", path=PUNCH_READ, method="GET", times=None),
        "アクセスが集中",
    ),
    Cell(
        "throttle-kot-punch-post-attendance",
        'KOT 429 + "303" on a POST',
        "KOT POST /daily-workings/timerecord/{key} (0004)",
        A,
        "success",
        fault("kot", "throttle", path=key_of("0004"), method="POST"),
        expected_note="success (refused before processing: the POST is sent again, lands once)",
    ),
    # --- malformed JSON
    Cell(
        "malformed-kot-employees-employee",
        "malformed JSON",
        "KOT GET /employees",
        E,
        "waiting",
        fault("kot", "malformed_json", path=EMPLOYEES_PATH, times=None),
        "読み取れませんでした",
    ),
    Cell(
        "malformed-senselink-users-employee",
        "malformed JSON",
        "SenseLink GET /api/v1/user/list",
        E,
        "waiting",
        fault("senselink", "malformed_json", path=USERS, times=None),
        "読み取れませんでした",
    ),
    Cell(
        "malformed-senselink-records-attendance",
        "malformed JSON",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        fault("senselink", "malformed_json", path=RECORDS, times=None),
        "読み取れませんでした",
    ),
    Cell(
        "malformed-kot-employees-attendance",
        "malformed JSON",
        "KOT GET /employees",
        A,
        "waiting",
        fault("kot", "malformed_json", path=EMPLOYEES_PATH, times=None),
        "読み取れませんでした",
    ),
    Cell(
        "malformed-kot-punch-read-attendance",
        "malformed JSON",
        "KOT GET /daily-workings/timerecord",
        A,
        "waiting",
        fault("kot", "malformed_json", path=PUNCH_READ, method="GET", times=None),
        "読み取れませんでした",
    ),
    # --- a field of the wrong type
    Cell(
        "wrong-type-kot-employees-employee",
        "wrong types",
        "KOT GET /employees (list as object)",
        E,
        "waiting",
        fault("kot", "wrong_type", path=EMPLOYEES_PATH, times=None),
        "形式が想定と異なります",
    ),
    Cell(
        "wrong-type-senselink-users-employee",
        "wrong types",
        "SenseLink GET /api/v1/user/list",
        E,
        "waiting",
        fault("senselink", "wrong_type", path=USERS, times=None),
        "形式が想定と異なります",
    ),
    Cell(
        "wrong-type-senselink-create-employee",
        "wrong types (stored)",
        "SenseLink POST /api/v1/user answer (one person)",
        E,
        "partial",
        fault("senselink", "wrong_type", path=CREATE, method="POST"),
        "従業員コード",
    ),
    Cell(
        "wrong-type-senselink-records-attendance",
        "wrong types",
        "SenseLink GET /api/v5/record/list (sign_time)",
        A,
        "waiting",
        fault("senselink", "wrong_type", path=RECORDS, times=None),
        "形式が想定と異なります",
    ),
    Cell(
        "wrong-type-kot-punch-read-attendance",
        "wrong types",
        "KOT GET /daily-workings/timerecord",
        A,
        "waiting",
        fault("kot", "wrong_type", path=PUNCH_READ, method="GET", times=None),
        "形式が想定と異なります",
    ),
    Cell(
        "wrong-type-kot-punch-post-attendance",
        "wrong types (stored)",
        "KOT POST /daily-workings/timerecord/{key} answer",
        A,
        "success",
        fault("kot", "wrong_type", method="POST", times=None),
        expected_note="success (2xx = stored, not re-sent)",
    ),
    # --- empty answers
    Cell(
        "empty-kot-employees-employee",
        "empty employee list",
        "KOT GET /employees",
        E,
        "configuration",
        fault("kot", "empty", path=EMPLOYEES_PATH, times=None),
        "1件も返されませんでした",
    ),
    Cell(
        "empty-kot-employees-attendance",
        "empty employee list",
        "KOT GET /employees",
        A,
        "configuration",
        fault("kot", "empty", path=EMPLOYEES_PATH, times=None),
        "1件も返されませんでした",
    ),
    Cell(
        "empty-senselink-users-employee",
        "empty person list",
        "SenseLink GET /api/v1/user/list",
        E,
        "partial",
        fault("senselink", "empty", path=USERS, times=None),
        "従業員コード",
    ),
    Cell(
        "empty-senselink-records-attendance",
        "empty record list",
        "SenseLink GET /api/v5/record/list",
        A,
        "success_nothing",
        fault("senselink", "empty", path=RECORDS, times=None),
    ),
    # --- signature / authentication rejected
    Cell(
        "signature-senselink-users-employee",
        "signature rejected",
        "SenseLink GET /api/v1/user/list",
        E,
        "configuration",
        fault("senselink", "signature", path=USERS, times=None),
        "署名認証に失敗しました",
    ),
    Cell(
        "signature-senselink-create-midrun-employee",
        "signature rejected mid-run",
        "SenseLink POST /api/v1/user (after the 1st)",
        E,
        "configuration",
        fault("senselink", "signature", path=CREATE, method="POST", after=1, times=None),
        "署名認証に失敗しました",
    ),
    Cell(
        "signature-senselink-records-attendance",
        "signature rejected",
        "SenseLink GET /api/v5/record/list",
        A,
        "configuration",
        fault("senselink", "signature", path=RECORDS, times=None),
        "署名認証に失敗しました",
    ),
    Cell(
        "auth-kot-employees-employee",
        "KOT token rejected (403/100)",
        "KOT GET /employees",
        E,
        "configuration",
        fault("kot", "signature", path=EMPLOYEES_PATH, times=None),
        "アクセストークン",
    ),
    Cell(
        "auth-kot-punch-post-midrun-attendance",
        "KOT token rejected mid-run (403/100)",
        "KOT POST /daily-workings/timerecord/{key} (after 2)",
        A,
        "configuration",
        fault("kot", "signature", method="POST", after=2, times=None),
        "アクセストークン",
    ),
    # --- KOT's forbidden window reached mid-run
    Cell(
        "window-before-kot-read-employee",
        "KOT window reached mid-run",
        "08:30 reached before KOT GET /employees",
        E,
        "window",
        window_before(KotClient, "list_employees", datetime(2026, 11, 25, 8, 30, tzinfo=JST)),
        "10:00に自動で再開します",
        start_at=datetime(2026, 11, 25, 8, 29, 55, tzinfo=JST),
    ),
    Cell(
        "window-after-senselink-reads-attendance",
        "KOT window reached mid-run",
        "17:30 reached between the SenseLink and the KOT reads",
        A,
        "window",
        window_after(SenseLinkClient, "iter_records", datetime(2026, 11, 25, 17, 30, tzinfo=JST)),
        "18:30に自動で再開します",
        start_at=datetime(2026, 11, 25, 17, 29, 55, tzinfo=JST),
    ),
    Cell(
        "window-during-posts-attendance",
        "KOT window reached mid-run",
        "17:30 reached after the KOT reads, before the POSTs",
        A,
        "window_posts",
        window_after(KotClient, "list_punches", datetime(2026, 11, 25, 17, 30, tzinfo=JST)),
        start_at=datetime(2026, 11, 25, 17, 29, 55, tzinfo=JST),
    ),
    # --- the worker killed mid-run
    Cell(
        "killed-after-some-creates-employee",
        "worker killed mid-run",
        "after 1 SenseLink person create",
        E,
        "worker_lost",
        kill_after(SenseLinkClient, "create_person", 1),
        "ワーカーが停止",
    ),
    Cell(
        "killed-after-some-posts-attendance",
        "worker killed mid-run",
        "after 4 KOT punch POSTs",
        A,
        "worker_lost",
        kill_after(KotClient, "register_punch", 4),
        "ワーカーが停止",
    ),
    # --- the working day (日付変更時刻, issue 15 item 6)
    Cell(
        "divisions-refused-attendance",
        "division read refused (token without the permission)",
        "KOT GET /divisions",
        A,
        "success",
        fault("kot", "signature", path="/divisions", times=None),
        expected_note="success, with a warning naming day_change_time (borders fall back)",
    ),
    Cell(
        "divisions-maintenance-attendance",
        "KOT 500 on the division read, persistent for one attempt",
        "KOT GET /divisions",
        A,
        "waiting",
        fault("kot", "maintenance", path="/divisions", times=None),
        "メンテナンス",
    ),
    Cell(
        "day-not-ended-attendance",
        "working day not ended (05:00 border, run at 03:00)",
        "KOT GET /divisions → 05:00",
        A,
        "window",
        day_border("05:00"),
        "05:00以降に自動で実行します",
        start_at=datetime(2026, 11, 25, 3, 0, tzinfo=JST),
        expected_note="waiting until the border (05:00), no record read, then success",
    ),
    # --- overlong strings (the sandbox's overlong mode)
    *(
        Cell(
            f"overlong-{length}-job-number-attendance",
            "overlong strings",
            f"SenseLink job number of {length:,} characters, unknown to KOT",
            A,
            "partial",
            overlong_job_number(length),
            "KING OF TIME従業員が見つかりません",
        )
        for length in (65, 1000)
    ),
    *(
        Cell(
            f"overlong-{length}-code-employee",
            "overlong strings",
            f"KOT employee code of {length:,} characters",
            E,
            "partial",
            overlong_code(length),
        )
        for length in (65, 1000)
    ),
]


# --- hostile upstreams (issue 13): every answer a broken or malicious server can give
HOSTILE_DEADLINE = 1.0  # seconds per call in these cells (production: 60)
HOSTILE_DRIP = 0.05  # seconds between two bytes of a dripping server


def hostile(arm: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    """A short overall deadline per call, then the fault; the gzip bomb built beforehand."""

    def wrapped(ctx: Ctx) -> None:
        from connectors.sandbox.server import gzip_bomb

        gzip_bomb()  # the sandbox shares this process: not part of the measured cost
        ctx.settings.UPSTREAM_CALL_DEADLINE_SECONDS = HOSTILE_DEADLINE
        arm(ctx)

    return wrapped


def shuffled_pages(path: str) -> Callable[[Ctx], None]:
    """SenseLink answers 3 per page, ignores `page` and shuffles the first page."""

    def arm(ctx: Ctx) -> None:
        patch(ctx, ctx.sandbox.senselink, "page_size_cap", 3)
        ctx.sandbox.faults.add("senselink", "page_ignored_shuffled", path=path, times=None)

    return arm


def _hostile(id, kind, api, sync, expect, arm, mentions="", **kwargs) -> Cell:
    return Cell(
        f"hostile-{id}", kind, api, sync, expect, hostile(arm), mentions, hostile=True, **kwargs
    )


HOSTILE_CELLS = [
    _hostile(
        "deep-nesting-kot-employees-employee",
        "JSON nested 200,000 deep",
        "KOT GET /employees",
        E,
        "waiting",
        fault("kot", "deep_nesting", path=EMPLOYEES_PATH, times=None),
        "入れ子が深すぎます",
    ),
    _hostile(
        "deep-nesting-senselink-records-attendance",
        "JSON nested 200,000 deep",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        fault("senselink", "deep_nesting", path=RECORDS, times=None),
        "入れ子が深すぎます",
    ),
    _hostile(
        "gzip-bomb-senselink-users-employee",
        "gzip bomb (0.5 MB → 512 MB)",
        "SenseLink GET /api/v1/user/list",
        E,
        "waiting",
        fault("senselink", "gzip_bomb", path=USERS, times=None),
        "大きすぎるため",
    ),
    _hostile(
        "gzip-bomb-kot-punch-read-attendance",
        "gzip bomb (0.5 MB → 512 MB)",
        "KOT GET /daily-workings/timerecord",
        A,
        "waiting",
        fault("kot", "gzip_bomb", path=PUNCH_READ, method="GET", times=None),
        "大きすぎるため",
    ),
    _hostile(
        "oversized-body-senselink-records-attendance",
        "64 MB body, no Content-Length",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        fault("senselink", "oversized_body", path=RECORDS, times=None),
        "大きすぎるため",
    ),
    _hostile(
        "slow-body-kot-employees-employee",
        "body dripped 1 byte / 0.05 s",
        "KOT GET /employees",
        E,
        "waiting",
        fault("kot", "slow_body", path=EMPLOYEES_PATH, times=None, delay=HOSTILE_DRIP),
        "タイムアウト",
    ),
    _hostile(
        "slow-headers-senselink-records-attendance",
        "headers dripped 1 byte / 0.05 s",
        "SenseLink GET /api/v5/record/list",
        A,
        "waiting",
        fault("senselink", "slow_headers", path=RECORDS, times=None, delay=HOSTILE_DRIP),
        "タイムアウト",
    ),
    _hostile(
        "slow-body-kot-punch-post-attendance",
        "answer dripped after storing",
        "KOT POST /daily-workings/timerecord/{key} (0002)",
        A,
        "success",
        fault(
            "kot",
            "slow_body",
            path=key_of("0002"),
            method="POST",
            times=None,
            delay=HOSTILE_DRIP,
        ),
        expected_note="success (cut at the deadline, read back: stored, not re-sent)",
    ),
    _hostile(
        "page-shuffled-senselink-users-employee",
        "`page` ignored, first page shuffled",
        "SenseLink GET /api/v1/user/list (3 per page)",
        E,
        "waiting",
        shuffled_pages(USERS),
        "同じページを返しました",
    ),
    _hostile(
        "page-shuffled-senselink-records-attendance",
        "`page` ignored, first page shuffled",
        "SenseLink GET /api/v5/record/list (3 per page)",
        A,
        "waiting",
        shuffled_pages(RECORDS),
        "同じページを返しました",
    ),
]
HOSTILE_IDS = [cell.id for cell in HOSTILE_CELLS]
CELLS = CELLS + HOSTILE_CELLS

# --- real-time clock-in (issue 15): faults met by a poll at 08:58, inside KOT's window -------

REALTIME = "realtime"
REALTIME_SYNC = "リアルタイム出勤 (ポーリング)"


def realtime_killed(ctx: Ctx) -> None:
    """The poll's worker dies after its POSTs, before the ledger records their answers."""
    from integrations.services import ledger

    def die(**kwargs):
        raise WorkerDied()

    patch(ctx, ledger, "finish", die)


POST_PATH = "timerecord/"
RECORDS = "/api/v5/record/list"
REALTIME_CELLS = [
    Cell(
        "realtime-lost-answer",
        "answer lost after KOT stored the punches (read timeout)",
        "KOT POST /daily-workings/timerecord/{key}",
        REALTIME,
        "realtime",
        short_timeouts(
            fault("kot", "timeout_after_store", path=POST_PATH, method="POST", delay=1, times=None)
        ),
        expected_note="ledger unknown, nothing resent in the window; settled by a KOT read after it",
    ),
    Cell(
        "realtime-kot-maintenance",
        "KOT maintenance (500/300) on every POST",
        "KOT POST /daily-workings/timerecord/{key}",
        REALTIME,
        "realtime",
        fault("kot", "maintenance", path=POST_PATH, method="POST", times=None),
        expected_note="rows given back (not processed); the next poll posts",
    ),
    Cell(
        "realtime-kot-throttled",
        "KOT throttling (429 + 303) on every POST",
        "KOT POST /daily-workings/timerecord/{key}",
        REALTIME,
        "realtime",
        fault("kot", "throttle", path=POST_PATH, method="POST", times=None),
        expected_note="rows given back (not processed); the next poll posts",
    ),
    Cell(
        "realtime-kot-reset",
        "connection reset on every POST",
        "KOT POST /daily-workings/timerecord/{key}",
        REALTIME,
        "realtime",
        fault("kot", "reset", path=POST_PATH, method="POST", times=None),
        expected_note="unknown or given back; settled or posted after the window, once",
    ),
    Cell(
        "realtime-senselink-500",
        "HTTP 500 page, persistent",
        "SenseLink record list",
        REALTIME,
        "realtime",
        fault("senselink", "http500_html", path=RECORDS, times=None),
        expected_note="poll failed, cursor kept; the next poll posts",
    ),
    Cell(
        "realtime-senselink-malformed",
        "truncated JSON, persistent",
        "SenseLink record list",
        REALTIME,
        "realtime",
        fault("senselink", "malformed_json", path=RECORDS, times=None),
        expected_note="poll failed, cursor kept; the next poll posts",
    ),
    Cell(
        "realtime-worker-killed",
        "worker killed between the POSTs and the bookkeeping",
        "the poll's worker",
        REALTIME,
        "realtime",
        realtime_killed,
        expected_note="rows left sending → unknown after the lease; settled after the window",
    ),
]
REALTIME_IDS = [cell.id for cell in REALTIME_CELLS]
CELLS = CELLS + REALTIME_CELLS
CELL_IDS = [cell.id for cell in CELLS]
assert len(set(CELL_IDS)) == len(CELL_IDS)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def fault_matrix_report():
    """Collects every cell; writes docs/RELIABILITY.md when the whole matrix ran."""
    report = MatrixReport(expected_ids=CELL_IDS)
    yield report
    report.finish()
    write_hostile_section(report, HOSTILE_IDS, HOSTILE_COSTS)


def database_label() -> str:
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    return connection.vendor


# ------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_fault_cell(cell, world, noon, monkeypatch, settings, fast_retries, fault_matrix_report):
    result = CellResult(
        id=cell.id,
        fault=cell.fault,
        api=cell.api,
        sync=REALTIME_SYNC
        if cell.sync == REALTIME
        else "社員情報連携 (KOT→SenseLink)"
        if cell.sync == EMPLOYEE
        else "勤怠連携 (SenseLink→KOT)",
        expected=cell.expected_text,
    )
    fault_matrix_report.database = database_label()
    fault_matrix_report.record(result)
    ctx = Ctx(
        world=world, traveller=noon, monkeypatch=monkeypatch, settings=settings, sync=cell.sync
    )
    try:
        exercise(cell, ctx, result)
    except BaseException as exc:
        result.fail(exc)
        raise
    finally:
        clear(ctx)
    result.passed = True


def exercise_realtime(cell: Cell, ctx: Ctx, result: CellResult) -> None:
    """A poll at 08:58 (KOT in its window) meets the fault; after it is cleared, the poll at
    10:05 (outside) settles what it left: every clock-in in KOT exactly once, at its time."""
    from integrations.models import PunchLedger
    from integrations.services import realtime

    build_world(ctx)
    setting = configure(
        ctx.tenant, realtime_clock_in=True, attendance_trigger="scheduled", attendance_hour=3
    )
    ctx.sandbox.clock.clear()
    ctx.travel(at(8, 0))
    realtime.poll(setting_id=setting.pk)  # the keys, read before the window
    cell.arm(ctx)
    ctx.travel(at(8, 58))
    try:
        report = realtime.poll(setting_id=setting.pk)
        first = f"poll {report.status}"
    except WorkerDied:
        first = "poll killed"
        from integrations.models import RealtimeState

        RealtimeState.objects.update(poll_lease_until=None)  # what the lease's end does
    states = Counter(PunchLedger.objects.values_list("state", flat=True))
    result.end_state = (
        first
        + ", ledger "
        + (", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "empty")
    )
    clear(ctx)
    ctx.travel(at(10, 5))
    report = realtime.poll(setting_id=setting.pk)
    assert report.status == "done", report
    keys = {e["code"]: ctx.key(e["code"]) for e in ACTIVE}
    firsts: dict[str, datetime] = {}
    for job_number, when, *rest in recognitions():
        if job_number in keys and not rest and when <= at(10, 5):
            firsts[job_number] = min(when, firsts.get(job_number, when))
    for code, when in firsts.items():
        held = [(p["code"], p["time"]) for p in ctx.sandbox.kot.punches_for(keys[code], DAY)]
        assert held == [("1", when.strftime("%Y-%m-%dT%H:%M:%S+09:00"))], (code, held)
    assert set(PunchLedger.objects.values_list("state", flat=True)) == {"posted"}
    result.after_rerun = f"poll at 10:05: {len(firsts)} clock-ins in KOT, each once (ledger posted)"
    result.message = "—"


def exercise(cell: Cell, ctx: Ctx, result: CellResult) -> None:
    if cell.sync == REALTIME:
        exercise_realtime(cell, ctx, result)
        return
    before = build_world(ctx)
    world = ctx.world
    if cell.start_at is not None:
        world.sandbox.clock.clear()
        ctx.travel(cell.start_at)
    cell.arm(ctx)
    states: list[str] = []

    if cell.expect == "worker_lost":
        from integrations.services.dispatch import reap_dead_runs

        request = request_run(
            tenant=ctx.tenant,
            kind=ctx.sync,
            target_date=DAY if ctx.sync == ATTENDANCE else None,
            enqueue=False,
        )
        with pytest.raises(WorkerDied):
            execute_run(run_id=request.run.pk)
        run = SyncRun.objects.get(pk=request.run.pk)
        assert run.status == SyncRun.Status.RUNNING  # the process died: nothing recorded
        states.append("running (killed)")
        clear(ctx)
        ctx.travel(timezone.now() + timedelta(seconds=ctx.settings.SYNC_RUN_LEASE_SECONDS + 5))
        assert reap_dead_runs(now=timezone.now()) == 1
        run.refresh_from_db()
        # Resumed, not failed: the same row is queued again and the next worker finishes it.
        assert run.status == SyncRun.Status.QUEUED and run.resumes == 1, run.status
        result.message = check_messages(ctx, run, cell.mentions)
        states.append("queued (resumed automatically)")
        resumed = execute_run(run_id=run.pk)
        assert resumed is not None
        run = resumed
    elif cell.hostile:
        ctx.sandbox.reset_counts()
        with measure() as cost:
            run = start(ctx)
        HOSTILE_COSTS[cell.id] = HostileCost(
            cost, sum(ctx.sandbox.request_counts().values()), ctx.sandbox.request_counts()
        )
    else:
        run = start(ctx)
    states.append(_state(run))
    result.end_state = " → ".join(states)

    if cell.expect in ("success", "window_posts"):
        assert run.status == SyncRun.Status.SUCCESS, run.message
        result.message = check_messages(ctx, run) or run.message
        final = run
    elif cell.expect == "success_nothing":
        assert run.status == SyncRun.Status.SUCCESS and run.created_count == 0
        result.message = run.message
        clear(ctx)
        final = start(ctx)
        states.append(f"new run: {_state(final)}")
    elif cell.expect in ("waiting", "window"):
        assert run.status == SyncRun.Status.WAITING, (run.status, run.message)
        assert run.not_before is not None and run.not_before > timezone.now()
        assert not run.finished_at
        result.message = check_messages(ctx, run, cell.mentions)
        if cell.expect == "window":
            assert not ctx.sandbox.kot.punches, "nothing is posted before the reads finished"
        clear(ctx)
        final = retry_same_run(ctx, run)
        states.append(f"retry at {timezone.localtime(run.not_before):%H:%M}: {_state(final)}")
        assert final.attempt == 2
    elif cell.expect == "partial":
        assert run.status == SyncRun.Status.PARTIAL, (run.status, run.message)
        assert run.error_type == SyncRun.ErrorType.NONE
        result.message = check_messages(ctx, run, cell.mentions)
        clear(ctx)
        final = rerun(ctx, run)
        states.append(f"{'rerun' if ctx.sync == ATTENDANCE else 'new run'}: {_state(final)}")
    elif cell.expect == "configuration":
        assert run.status == SyncRun.Status.FAILURE, (run.status, run.message)
        assert run.error_type == SyncRun.ErrorType.CONFIGURATION
        assert run.attempt == 1, "a configuration error is not retried"
        result.message = check_messages(ctx, run, cell.mentions)
        clear(ctx)
        final = rerun(ctx, run)
        states.append(f"{'rerun' if ctx.sync == ATTENDANCE else 'new run'}: {_state(final)}")
    elif cell.expect == "transient":
        while run.status == SyncRun.Status.WAITING:
            check_messages(ctx, run)
            run = retry_same_run(ctx, run)
        states.append(f"after {run.attempt} attempts: {_state(run)}")
        assert run.status == SyncRun.Status.FAILURE, (run.status, run.message)
        assert run.error_type == SyncRun.ErrorType.TRANSIENT
        assert run.attempt == len(ctx.settings.SYNC_RETRY_DELAYS_MINUTES) + 1
        result.message = check_messages(ctx, run, cell.mentions)
        clear(ctx)
        final = rerun(ctx, run)
        states.append(f"{'rerun' if ctx.sync == ATTENDANCE else 'new run'}: {_state(final)}")
    elif cell.expect == "worker_lost":
        assert run.status == SyncRun.Status.SUCCESS, (run.status, run.message)
        assert run.attempt == 2 and run.resumes == 1
        final = run
    else:  # pragma: no cover
        raise AssertionError(cell.expect)

    result.end_state = " → ".join(states)
    assert final.status == SyncRun.Status.SUCCESS, (final.status, final.message)
    summary = check_world(ctx, before)

    # One more run of the same work changes nothing: no second POST, no second person.
    clear(ctx)
    end = window_end(timezone.now())
    if end is not None:
        ctx.travel(end + timedelta(seconds=1))
    ctx.sandbox.reset_counts()
    again = start(ctx)
    assert again.status == SyncRun.Status.SUCCESS, again.message
    assert (again.created_count, again.updated_count, again.deleted_count) == (0, 0, 0)
    writes = [k for k, n in ctx.sandbox.request_counts().items() if k.startswith("POST") and n]
    assert not writes, f"a further run wrote: {writes}"
    check_world(ctx, before)
    result.after_rerun = summary + "; a further run writes nothing"


def _state(run: SyncRun) -> str:
    text = run.status
    if run.error_type:
        text += f" ({run.error_type})"
    if run.status == SyncRun.Status.WAITING and run.not_before:
        text += f" until {timezone.localtime(run.not_before):%H:%M}"
    if run.status == SyncRun.Status.PARTIAL:
        text += f", {run.errors.count()} error(s)"
    return text


def test_rerun_after_an_unknown_employee_posts_both_of_their_punches(
    world, noon, monkeypatch, settings
):
    """Beside the matrix: KOT's answer lacked one employee (added in KOT later). The rerun
    must post that employee's clock-in and clock-out, not only the punch the error named."""
    ctx = Ctx(
        world=world, traveller=noon, monkeypatch=monkeypatch, settings=settings, sync=ATTENDANCE
    )
    before = build_world(ctx)
    late = next(e for e in EMPLOYEES if e["code"] == "0004")
    small_kot(world.sandbox, *[e for e in EMPLOYEES if e is not late])
    first = start(ctx)
    assert first.status == SyncRun.Status.PARTIAL
    assert [e.code for e in first.errors.all()] == ["unknown_employee"]
    world.sandbox.kot.add_employee(**late)
    final = rerun(ctx, first)
    assert final.status == SyncRun.Status.SUCCESS
    assert final.created_count == 2
    check_world(ctx, before)
