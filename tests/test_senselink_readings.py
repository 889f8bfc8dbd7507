"""The readings matrix (issue 12 item 10, issue 13 paging): both syncs under every reading of
SenseLink's open points, against the sandbox over loopback HTTP.

One test per reading (``connectors.sandbox.senselink.READINGS``): the employee sync twice (the
second run writes nothing), the attendance sync twice (each punch once), and the invariants in
every reading: each punch in KOT exactly once, no person duplicated, no photo lost (at most one
where the update replaces the record), and a clear stop message where the portal must stop.
The results are this module's section of docs/RELIABILITY.md (``senselink-readings``), written
when every reading ran in the session.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import connection

from connectors.sandbox.senselink import READINGS
from integrations.models import ConnectSetting, SyncRun
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.conftest import JST
from tests.fault_matrix_report import write_section
from tests.sync_world import DAY, at, configure, small_kot

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
]

MODES = list(READINGS)
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


def expected_punches(sandbox) -> Counter:
    spans: dict[str, list[datetime]] = {}
    for record in sandbox.senselink.records_for(DAY):
        if record["user_type"] == 1 and record["job_number"]:
            spans.setdefault(record["job_number"], []).append(
                datetime.fromtimestamp(record["sign_time"], JST)
            )
    expected = Counter()
    for code, times in spans.items():
        key = sandbox.kot.employee_by_code(code)["key"]
        expected[(key, DAY.isoformat(), "1", min(times).isoformat())] += 1
        expected[(key, DAY.isoformat(), "2", max(times).isoformat())] += 1
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


ROWS = [
    ("employee-1", "社員情報連携 1回目"),
    ("employee-2", "社員情報連携 2回目 (書き込みなしのはず)"),
    ("attendance-1", "勤怠連携"),
    ("attendance-2", "勤怠連携 2回目"),
    ("invariants", "不変条件 (打刻は各1回・人員の重複なし・顔写真)"),
]


@pytest.fixture(scope="session")
def readings_report():
    report: dict[str, Column] = {}
    yield report
    if set(MODES) <= set(report):
        write_section("senselink-readings", render(report))


def database_label() -> str:
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"


def render(report: dict[str, Column]) -> str:
    columns = [report[m] for m in MODES]
    passed = sum(c.passed for c in columns)
    lines = [
        "## SenseLink readings",
        "",
        "Generated by `tests/test_senselink_readings.py`: each column is one reading of what "
        "the public SenseLink contract leaves open (`connectors/sandbox/senselink.py` "
        "`READINGS`, `manage.py sandbox --senselink-reading NAME`). The world: 6 KOT employees "
        "(one resigned; 0001 out of date in SenseLink, three to create), 123 other SenseLink "
        "persons with photos (the lists span pages), 30 recognitions a day per employee (two at "
        "00:20 and 23:50 JST) plus a visitor, a stranger and one record on each side of the day "
        "inside the widened query window. `update_persons` is on and a person group is set.",
        "",
        f"- Generated: {datetime.now(JST):%Y-%m-%d %H:%M} JST on {database_label()}",
        f"- Result: **{passed} of {len(columns)} readings pass**",
        "",
        "Cells: run status, then `+created ~updated =unchanged ≠left different` and the error "
        "codes; for the attendance sync the punches. `waiting ×3 → failure` is the run-level "
        "retry of a transient error, compressed in time.",
        "",
        "| | " + " | ".join(f"`{c.mode}`" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key, label in ROWS:
        cells = [_md(c.rows.get(key, "-")) for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    results = ["PASS" if c.passed else f"**FAIL** {_md(c.failure)}" for c in columns]
    lines.append("| Result | " + " | ".join(results) + " |")
    lines += ["", "What each reading is:", ""]
    lines += [f"- `{name}`: {reading.description}" for name, reading in READINGS.items()]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|").strip() or "-"


# ---------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("sandbox", MODES, indirect=True)
def test_both_syncs_under_the_reading(request, sandbox, world, noon, readings_report):
    mode = request.node.callspec.params["sandbox"]
    column = readings_report[mode] = Column(mode)
    try:
        exercise(column, sandbox, world.acme, noon)
    except BaseException as exc:
        column.failure = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise
    column.passed = True


def exercise(column: Column, sandbox, tenant, traveller) -> None:
    mode = column.mode
    build(sandbox, tenant)
    expected = expected_punches(sandbox)
    sandbox.reset_counts()

    # --- employee sync, first run
    first = start(tenant, EMPLOYEE)
    first, attempts = until_finished(first, traveller)
    first_writes = writes(sandbox)
    column.rows["employee-1"] = summary(first) + (
        f" after {attempts} attempts" if attempts > 1 else ""
    )
    if mode == "persons-without-job-number":
        assert first.status == SyncRun.Status.FAILURE
        assert first.error_type == SyncRun.ErrorType.CONFIGURATION
        clear_message(first, "senselink_no_job_numbers", "従業員番号の項目がありません")
        assert not first_writes, f"wrote before stopping: {first_writes}"
    elif mode == "pages-ignored":
        assert first.status == SyncRun.Status.FAILURE
        assert first.error_type == SyncRun.ErrorType.TRANSIENT
        assert "同じページ" in first.message
        assert not first_writes
        lists = sandbox.request_counts()["GET /api/v1/user/list"]
        assert lists == 2 * attempts, f"{lists} list calls in {attempts} attempts: not bounded"
    elif mode == "update-replaces":
        assert first.status == SyncRun.Status.PARTIAL
        clear_message(first, "update_replaced_fields", "従業員コード:0001")
        assert not ConnectSetting.objects.get(tenant=tenant).update_persons
        assert first_writes["POST /api/v1/user/update/{id}"] == 1  # the canary, and no other
        assert first.created_count == 3
    elif mode == "persons-without-photo":
        assert first.status == SyncRun.Status.PARTIAL
        clear_message(first, "update_unverifiable", "顔写真の項目がない")
        assert not ConnectSetting.objects.get(tenant=tenant).update_persons
        assert "POST /api/v1/user/update/{id}" not in first_writes
        assert first.not_updated_count == 1 and first.created_count == 3
    elif mode == "update-unsupported":
        assert first.status == SyncRun.Status.PARTIAL
        [error] = first.errors.all()
        assert error.code == "senselink_update_unsupported" and not error.employee_code
        assert first.not_updated_count == 1 and first.created_count == 3
    elif mode == "persons-encrypted-contacts":
        # 0001's listed e-mail cannot be read, so it cannot be compared: left as it is.
        assert first.status == SyncRun.Status.SUCCESS, first.message
        assert (first.created_count, first.updated_count) == (3, 0), summary(first)
        assert persons_right(sandbox, except_codes=("0001",)) == len(ACTIVE) - 1
    else:
        assert first.status == SyncRun.Status.SUCCESS, first.message
        assert (first.created_count, first.updated_count) == (3, 1), summary(first)
        assert persons_right(sandbox) == len(ACTIVE)
    no_duplicates(sandbox)

    # --- employee sync, second run: nothing to write (the replaced person is created again)
    sandbox.reset_counts()
    second, attempts = until_finished(start(tenant, EMPLOYEE), traveller)
    second_writes = writes(sandbox)
    column.rows["employee-2"] = summary(second) + (
        f"; writes: {dict(second_writes)}" if second_writes else "; no write"
    )
    if mode == "update-replaces":
        # The canary lost its number with the rest: registered again, in the groups.
        assert second.status == SyncRun.Status.SUCCESS, second.message
        assert dict(second_writes) == {"POST /api/v1/user": 1}
        assert persons_right(sandbox) == len(ACTIVE)
        sandbox.reset_counts()
        third = start(tenant, EMPLOYEE)
        assert not writes(sandbox) and third.status == SyncRun.Status.SUCCESS
        column.rows["employee-2"] += "; a third run: no write"
    elif mode == "update-unsupported":
        assert second.status == SyncRun.Status.PARTIAL
        assert dict(second_writes) == {"POST /api/v1/user/update/{id}": 1}  # one try, refused
        assert [e.code for e in second.errors.all()] == ["senselink_update_unsupported"]
    elif mode in ("persons-without-job-number", "pages-ignored"):
        assert second.status == SyncRun.Status.FAILURE and not second_writes
    elif mode == "persons-without-photo":
        assert second.status == SyncRun.Status.SUCCESS and not second_writes
        assert second.not_updated_count == 1  # counted, not written: updates are off now
    else:
        assert second.status == SyncRun.Status.SUCCESS, second.message
        assert not second_writes, f"the second run wrote: {second_writes}"
        assert (second.created_count, second.updated_count) == (0, 0)
    no_duplicates(sandbox)

    # --- attendance sync, twice
    sandbox.reset_counts()
    attendance, attempts = until_finished(start(tenant, ATTENDANCE), traveller)
    if mode == "pages-ignored":
        assert attendance.status == SyncRun.Status.FAILURE
        assert "同じページ" in attendance.message
        assert not sandbox.kot.punches, "nothing is posted from a listing that did not end"
        records = sandbox.request_counts()["GET /api/v5/record/list"]
        assert records == 2 * attempts
        column.rows["attendance-1"] = summary(attendance) + f" after {attempts} attempts, 0 punches"
        column.rows["attendance-2"] = "-"
        photos = photos_lost(sandbox)
        assert photos == 0
        column.rows["invariants"] = "stopped with a clear message; nothing written; 0 photos lost"
        return
    assert attendance.status == SyncRun.Status.SUCCESS, attendance.message
    column.rows["attendance-1"] = f"{attendance.status}: " + punches_once(sandbox, expected)
    sandbox.reset_counts()
    again = start(tenant, ATTENDANCE)
    assert again.status == SyncRun.Status.SUCCESS
    assert not writes(sandbox), "the second attendance run posted"
    column.rows["attendance-2"] = f"{again.status}: no POST; " + punches_once(sandbox, expected)

    # --- invariants
    lost = photos_lost(sandbox)
    assert lost <= (1 if mode == "update-replaces" else 0), f"{lost} photos lost"
    if mode == "update-replaces":
        assert lost == 1
    column.rows["invariants"] = (
        f"punches once; no duplicate; {lost} photo{'s' if lost != 1 else ''} lost"
        + ("; updates switched off, support told" if mode == "update-replaces" else "")
    )
