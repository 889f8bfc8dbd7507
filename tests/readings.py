"""The readings matrices' shared world and tools (tests/test_senselink_readings.py and
tests/test_kot_readings.py): one world, both syncs twice, the same invariants, one table.

A column is one reading of an API's open points; each test fills its column's cells and the
module's report fixture writes the section of docs/RELIABILITY.md when every column ran.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from integrations.models import SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.conftest import JST
from tests.fault_matrix_report import write_section
from tests.sync_world import DAY, at, configure, small_kot

EMPLOYEE = SyncRun.Kind.EMPLOYEE
ATTENDANCE = SyncRun.Kind.ATTENDANCE

EMPLOYEES = [
    {
        "code": "0001",
        "last_name": "山田",
        "first_name": "太郎",
        "birthDate": "1990-04-01",
        "hiredDate": "2015-04-01",
        "emailAddresses": ["yamada@example.jp"],
    },
    {"code": "0002", "last_name": "佐藤", "first_name": "花子", "hiredDate": "2020-10-01"},
    {
        "code": "A0003",
        "last_name": "鈴木",
        "first_name": "一郎",
        "birthDate": "1985-12-31",
        "hiredDate": "2010-04-01",
        "emailAddresses": ["suzuki@example.jp"],
    },
    {"code": "0004", "last_name": "田中", "first_name": "美咲", "hiredDate": "2022-04-01"},
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
OTHERS = 120  # hand-registered persons with photos: the person list spans pages in every reading
PHOTO = "/static/avatar/registered-by-hand-{}.jpg"


def wanted(employee: dict) -> dict:
    mails = employee.get("emailAddresses") or []
    return {
        "name": f"{employee['last_name']}\u3000{employee['first_name']}",
        "birthday": employee.get("birthDate"),
        "entry_time": employee.get("hiredDate"),
        "mail": mails[0] if mails else None,
    }


def build(sandbox, tenant) -> None:
    """5 active employees (0001 out of date in SenseLink, 0002 right, three to create), 120
    other persons with photos, and 30 recognitions a day for each active employee, plus one on
    each side of the day that a JST filter must drop."""
    small_kot(sandbox, *EMPLOYEES)
    configure(
        tenant,
        attendance_mode="clock_in_out",
        update_persons=True,
        person_group_ids="1",
        resigned_policy="keep",
    )
    state = sandbox.senselink
    old = {**wanted(EMPLOYEES[0]), "mail": "old-address@example.jp"}
    state.add_person(job_number="0001", groups=[1, 3], avatar=PHOTO.format("0001"), **old)
    state.add_person(
        job_number="0002", groups=[1], avatar=PHOTO.format("0002"), **wanted(EMPLOYEES[1])
    )
    state.add_person(job_number="0006", groups=[1], avatar=PHOTO.format("0006"), name="伊藤　誠")
    for n in range(OTHERS):
        state.add_person(
            job_number=f"V{n:04d}", name=f"協力会社　{n}", groups=[3], avatar=PHOTO.format(n)
        )
    state.set_records(DAY, [])
    state.set_records(DAY - timedelta(days=1), [])
    state.set_records(DAY + timedelta(days=1), [])
    for index, employee in enumerate(ACTIVE):
        for n in range(30):
            state.add_record(
                when=at(7, 30 + index, n) + timedelta(minutes=25 * n), job_number=employee["code"]
            )
    # At the day's edges: found whether the server reads the query's times in JST or not.
    state.add_record(when=at(0, 20), job_number="0004")
    state.add_record(when=at(23, 50), job_number="0005")
    state.add_record(when=at(11, 0), job_number=None, user_type=2)  # a visitor
    state.add_record(when=at(12, 0), job_number=None, user_type=3)  # a stranger
    # The day's neighbours, inside the widened query window: never this day's punches.
    state.add_record(when=at(23, 30, day=DAY - timedelta(days=1)), job_number="0001")
    state.add_record(when=at(0, 30, day=DAY + timedelta(days=1)), job_number="0002")


def expected_punches(sandbox, *, minutes_only: bool = False) -> Counter:
    """Each employee's clock-in (first recognition) and clock-out (last) of the day, as KOT
    should hold them (at the minute, where KOT keeps only that)."""
    spans: dict[str, list[datetime]] = {}
    for record in sandbox.senselink.records_for(DAY):
        if record["user_type"] == 1 and record["job_number"]:
            spans.setdefault(record["job_number"], []).append(
                datetime.fromtimestamp(record["sign_time"], JST)
            )
    expected: Counter = Counter()
    for code, times in spans.items():
        key = sandbox.kot.employee_by_code(code)["key"]
        for punch, moment in (("1", min(times)), ("2", max(times))):
            if minutes_only:
                moment = moment.replace(second=0)
            expected[(key, DAY.isoformat(), punch, moment.isoformat())] += 1
    return expected


# --------------------------------------------------------------------------- invariants


def punches_once(sandbox, expected: Counter) -> str:
    held = Counter((p["employeeKey"], p["date"], p["code"], p["time"]) for p in sandbox.kot.punches)
    assert not [k for k, n in held.items() if n > 1], "a punch in KOT more than once"
    assert held == expected, f"missing {expected - held}, extra {held - expected}"
    return f"{sum(held.values())} punches, each once"


def no_duplicates(sandbox) -> None:
    numbers = Counter(
        p["job_number"] for p in sandbox.senselink.persons.values() if p.get("job_number")
    )
    assert not [n for n, c in numbers.items() if c > 1], f"persons duplicated: {numbers}"


def photos_lost(sandbox) -> int:
    persons = sandbox.senselink.persons.values()
    kept = {p["avatar"] for p in persons if p.get("avatar")}
    registered = {PHOTO.format(c) for c in ("0001", "0002", "0006")} | {
        PHOTO.format(n) for n in range(OTHERS)
    }
    return len(registered - kept)


def persons_right(sandbox, *, except_codes: tuple[str, ...] = ()) -> int:
    by_number = sandbox.senselink.persons_by_job_number()
    right = 0
    for employee in ACTIVE:
        if employee["code"] in except_codes:
            continue
        person = by_number[employee["code"]]
        actual = {k: person.get(k) or None for k in ("name", "birthday", "entry_time", "mail")}
        assert actual == wanted(employee), f"{employee['code']} wrong: {actual}"
        assert person["groups"], f"{employee['code']} in no person group"
        right += 1
    return right


def writes(sandbox) -> Counter:
    counts = sandbox.request_counts()
    return Counter(
        {k: n for k, n in counts.items() if (k.startswith("POST") or "delete" in k) and n}
    )


def summary(run: SyncRun) -> str:
    text = run.status
    if run.error_type:
        text += f" ({run.error_type})"
    if run.kind == EMPLOYEE and run.status != SyncRun.Status.FAILURE:
        text += f": +{run.created_count} ~{run.updated_count} ={run.skipped_count}" + (
            f" ≠{run.not_updated_count}" if run.not_updated_count else ""
        )
    codes = sorted({e.code for e in run.errors.all()})
    if codes:
        text += " [" + ", ".join(codes) + "]"
    return text


_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def clear_message(run: SyncRun, code: str, mention: str) -> str:
    error = run.errors.get(code=code)
    assert _JAPANESE.search(error.message) and mention in error.message, error.message
    assert error.message.rstrip().endswith("。"), error.message
    return error.message


# ------------------------------------------------------------------------------- running


def start(tenant, kind) -> SyncRun:
    request = request_run(
        tenant=tenant, kind=kind, target_date=DAY if kind == ATTENDANCE else None, enqueue=False
    )
    assert request.created, request.message
    result = execute_run(run_id=request.run.pk)
    assert result is not None
    return result


def until_finished(run: SyncRun, traveller) -> tuple[SyncRun, int]:
    """Let a waiting run retry as the dispatcher would; the attempts it took."""
    while run.status == SyncRun.Status.WAITING:
        traveller.move_to(run.not_before + timedelta(seconds=1))
        run = execute_run(run_id=run.pk)
        assert run is not None
    return run, run.attempt


@dataclass
class Column:
    mode: str
    rows: dict[str, str] = field(default_factory=dict)
    passed: bool = False
    failure: str = ""


def fill(report: dict[str, Column], mode: str, exercise: Callable[[Column], None]) -> None:
    """One reading's column: its cells, and PASS, or the first line of what failed."""
    column = report[mode] = Column(mode)
    try:
        exercise(column)
    except BaseException as exc:
        column.failure = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise
    column.passed = True


def report_when_complete(section: str, modes: list[str], render) -> Iterator[dict[str, Column]]:
    """A session fixture's body: the columns, and the section written once every mode ran."""
    report: dict[str, Column] = {}
    yield report
    if set(modes) <= set(report):
        write_section(section, render(report))


def database_label() -> str:
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"


def table(
    *,
    title: str,
    intro: str,
    legend: str,
    columns: list[Column],
    rows: list[tuple[str, str]],
    descriptions: dict[str, str],
) -> str:
    """A readings section: the title, what the world is, the result, one column per reading."""
    passed = sum(c.passed for c in columns)
    lines = [
        f"## {title}",
        "",
        intro,
        "",
        f"- Generated: {datetime.now(JST):%Y-%m-%d %H:%M} JST on {database_label()}",
        f"- Result: **{passed} of {len(columns)} readings pass**",
        "",
        legend,
        "",
        "| | " + " | ".join(f"`{c.mode}`" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key, label in rows:
        cells = [_md(c.rows.get(key, "-")) for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    results = ["PASS" if c.passed else f"**FAIL** {_md(c.failure)}" for c in columns]
    lines.append("| Result | " + " | ".join(results) + " |")
    lines += ["", "What each reading is:", ""]
    lines += [f"- `{name}`: {text}" for name, text in descriptions.items()]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|").strip() or "-"
