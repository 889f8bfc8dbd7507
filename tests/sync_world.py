"""Helpers that shape the sandbox's data for sync tests (a few named employees, exact records)."""

from __future__ import annotations

from datetime import date, datetime

import time_machine

from integrations.models import ConnectSetting, SyncRun
from integrations.services import realtime
from integrations.services.execution import execute_run
from integrations.services.runs import request_run
from tests.conftest import JST

DAY = date(2026, 11, 24)


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=JST)


def small_kot(sandbox, *employees: dict) -> None:
    """Replace KOT's employees with exactly these (camelCase KOT fields)."""
    sandbox.kot.set_employees([])
    for employee in employees:
        sandbox.kot.add_employee(**employee)


def only_records(sandbox, day: date, *records: tuple) -> None:
    """Replace the day's recognitions with (job_number, datetime[, user_type]) tuples."""
    sandbox.senselink.set_records(day, [])
    for record in records:
        job_number, when, *rest = record
        sandbox.senselink.add_record(
            when=when, job_number=job_number, user_type=rest[0] if rest else 1
        )


def configure(tenant, **fields) -> ConnectSetting:
    setting = tenant.connect_settings.get()
    for name, value in fields.items():
        setattr(setting, name, value)
    setting.save()
    return setting


def run_now(tenant, kind: str, target_date: date | None = None, **kwargs) -> SyncRun:
    """Request a run and execute it in this process, as a worker would."""
    request = request_run(
        tenant=tenant, kind=kind, target_date=target_date, enqueue=False, **kwargs
    )
    assert request.created, request.message
    result = execute_run(run_id=request.run.pk)
    assert result is not None
    return result


def punches(sandbox, code: str, day: date = DAY) -> list[tuple[str, str]]:
    """KOT's punches for an employee code as (code "1"/"2", time) pairs, as stored."""
    key = sandbox.kot.employee_by_code(code)["key"]
    return sorted((p["code"], p["time"]) for p in sandbox.kot.punches_for(key, day))


def poll_at(world, when: datetime) -> realtime.PollReport:
    with time_machine.travel(when, tick=False):
        return realtime.poll(setting_id=world.setting.pk)


def recognise(world, code: str, when: datetime) -> None:
    world.sandbox.senselink.add_record(when=when, job_number=code)


def realtime_run(world, day: date = DAY) -> SyncRun:
    return SyncRun.objects.get(tenant=world.acme, trigger="realtime", target_date=day)
