"""The sandbox in a process of its own, steered through a pipe.

Running the fake servers elsewhere keeps the benchmark's CPU time and peak memory ours only.
The child also answers the questions the floors need (what the APIs hold right now), computed
from the sandbox's stores and the SPEC's rules, independently of the engine's code.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from datetime import date, datetime
from typing import Any

from . import env


class SandboxProcess:
    """Parent side: start the sandbox in a child process and call it like an object."""

    def __init__(
        self,
        *,
        employees: int,
        latency: float,
        seed: int = env.SEED,
        day: date = env.TODAY,
        pinned: datetime = env.NOON,
        recognitions_per_employee: int = env.RECOGNITIONS_PER_EMPLOYEE,
        clock_offset: float = 0.0,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            kwargs={
                "conn": child,
                "options": {
                    "employees": employees,
                    "latency": latency,
                    "seed": seed,
                    "day": day,
                    "pinned": pinned,
                    "recognitions_per_employee": recognitions_per_employee,
                    "clock_offset": clock_offset,
                },
            },
            name=f"bench-sandbox-{employees}",
            daemon=True,
        )
        self._process.start()
        child.close()
        self.info = self._call("info")
        self.kot_url = self.info["kot_url"]
        self.senselink_url = self.info["senselink_url"]
        self.kot_token = self.info["kot_token"]
        self.app_key = self.info["app_key"]
        self.app_secret = self.info["app_secret"]
        self.pid = self._process.pid

    def _call(self, command: str, **kwargs: Any) -> Any:
        self._conn.send((command, kwargs))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"sandbox process failed on {command}:\n{value}")
        return value

    def request_counts(self) -> dict[str, int]:
        return self._call("counts")

    def reset_counts(self) -> None:
        self._call("reset")

    def employee_floor(self, *, today: date) -> dict[str, int]:
        return self._call("employee_floor", today=today)

    def attendance_floor(self, *, day: date, mode: str) -> dict[str, int]:
        return self._call("attendance_floor", day=day, mode=mode)

    def punch_stats(self, *, day: date) -> dict[str, int]:
        return self._call("punch_stats", day=day)

    def cpu_seconds(self) -> float:
        return self._call("cpu")

    def employee_codes(self) -> list[str]:
        return self._call("codes")

    def set_records(self, *, day: date, records: list[tuple[str, datetime]]) -> int:
        """Replace the day's recognitions with these (job number, aware time) pairs."""
        return self._call("set_records", day=day, records=records)

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(EOFError, OSError, RuntimeError):
                self._call("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------ child side


def _serve(conn, options: dict[str, Any]) -> None:
    from connectors.sandbox import start_sandbox

    sandbox = start_sandbox(
        employees=options["employees"],
        seed=options["seed"],
        day=options["day"],
        latency=options["latency"],
        recognitions_per_employee=options["recognitions_per_employee"],
    )
    sandbox.clock.set(options["pinned"])
    # SenseLink checks the signature's timestamp against its clock: follow the benchmark's
    # travelled clock (the parent runs at the pinned noon, this process at real time).
    offset = options["clock_offset"]
    sandbox.senselink.clock = lambda: time.time() + offset
    handlers = {
        "info": lambda: {
            "kot_url": sandbox.kot_url,
            "senselink_url": sandbox.senselink_url,
            "kot_token": sandbox.kot_token,
            "app_key": sandbox.app_key,
            "app_secret": sandbox.app_secret,
        },
        "counts": lambda: dict(sandbox.request_counts()),
        "reset": sandbox.reset_counts,
        "employee_floor": lambda today: employee_floor(sandbox, today),
        "attendance_floor": lambda day, mode: attendance_floor(sandbox, day, mode),
        "punch_stats": lambda day: punch_stats(sandbox, day),
        "cpu": time.process_time,
        "set_records": lambda day, records: set_records(sandbox, day, records),
        "codes": lambda: [e["code"] for e in sandbox.kot.employees],
    }
    try:
        while True:
            try:
                command, kwargs = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", handlers[command](**kwargs)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        sandbox.stop()


def set_records(sandbox, day: date, records: list[tuple[str, datetime]]) -> int:
    sandbox.senselink.set_records(day, [])
    for job_number, when in records:
        sandbox.senselink.add_record(when=when, job_number=job_number)
    return len(records)


def _wanted_person(employee: dict[str, Any]) -> dict[str, Any]:
    """SPEC 4.1's mapping, written out again here so the floor does not trust the engine."""
    mails = employee.get("emailAddresses") or []
    return {
        "name": "\u3000".join(
            p for p in (employee.get("lastName"), employee.get("firstName")) if p
        ),
        "birthday": employee.get("birthDate"),
        "entry_time": employee.get("hiredDate"),
        "mail": mails[0] if mails else None,
    }


def employee_floor(sandbox, today: date) -> dict[str, int]:
    """Persons listed (type 1) and the writes a correct sync must make (resigned: kept)."""
    with sandbox.senselink.lock:
        persons = [dict(p) for _, p in sorted(sandbox.senselink.persons.items())]
    with sandbox.kot.lock:
        employees = [dict(e) for e in sandbox.kot.employees]
    listed = [p for p in persons if p.get("type") == 1]
    by_number: dict[str, dict[str, Any]] = {}
    for person in listed:
        if person.get("job_number"):
            by_number.setdefault(person["job_number"], person)
    creates = updates = 0
    for employee in employees:
        resigned = employee.get("resignationDate")
        if resigned and resigned < today.isoformat():
            continue  # the default policy keeps resigned employees' persons as they are
        person = by_number.get(employee["code"])
        if person is None:
            creates += 1
        elif any(
            (person.get(k) or None) != (v or None) for k, v in _wanted_person(employee).items()
        ):
            updates += 1
    return {
        "kot_employees": len(employees),
        "persons": len(listed),
        "creates": creates,
        "updates": updates,
        "deletes": 0,
    }


def attendance_floor(sandbox, day: date, mode: str) -> dict[str, int]:
    """Employee-type records of the day, KOT keys that need a punch read, punches missing."""
    records = sandbox.senselink.records_for(day)
    employee_records = [r for r in records if r["user_type"] == 1]
    with sandbox.kot.lock:
        keys_by_code = {e["code"]: e["key"] for e in sandbox.kot.employees}
    spans: dict[str, tuple[int, int]] = {}
    for record in employee_records:
        number = record.get("job_number")
        if not number:
            continue
        t = record["sign_time"]
        first, last = spans.get(number, (t, t))
        spans[number] = (min(first, t), max(last, t))
    wanted: list[tuple[str, int, int]] = []
    unknown = 0
    for number, (first, last) in spans.items():
        key = keys_by_code.get(number)
        if key is None:
            unknown += 1
            continue
        wanted.append((key, 1, first))
        if mode == "clock_in_out" and last > first:
            wanted.append((key, 2, last))
    missing = already = conflicting = 0
    for key, code, t in wanted:
        held = [p for p in sandbox.kot.punches_for(key, day) if p["code"] == str(code)]
        if not held:
            missing += 1
        elif any(int(datetime.fromisoformat(p["time"]).timestamp()) == t for p in held):
            already += 1
        else:
            conflicting += 1
    return {
        "records": len(records),
        "employee_records": len(employee_records),
        "numbers": len(spans),
        "unknown_numbers": unknown,
        "keys": len({key for key, _, _ in wanted}),
        "wanted": len(wanted),
        "missing": missing,
        "already": already,
        "conflicting": conflicting,
    }


def punch_stats(sandbox, day: date) -> dict[str, int]:
    with sandbox.kot.lock:
        punches = [p for p in sandbox.kot.punches if p["date"] == day.isoformat()]
    seen: set[tuple[str, str, str]] = set()
    duplicates = 0
    for p in punches:
        ident = (p["employeeKey"], p["code"], p["time"])
        if ident in seen:
            duplicates += 1
        seen.add(ident)
    return {"punches": len(punches), "duplicates": duplicates}
