"""The kinds of work, in one table (as healthchecks' ``TRANSPORTS`` maps a kind to its class).

Each kind names its engine, the ConnectSetting fields that schedule and pause it, and what its
runs carry. Code that used to branch on ``run.kind`` looks the kind up here instead, so a new
kind of work (the real-time poll) is one more row.

Plain strings only: this module is imported by ``models`` and imports nothing of the app at
load time (engines and previews are dotted paths, imported when first used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Kind:
    value: str  # SyncRun.kind
    engine_path: str  # sync(*, run, kot, senselink, setting, beat, guard) -> Outcome
    preview_path: str  # preview(preview, kot, senselink, setting, target_date, limit)
    trigger_field: str  # ConnectSetting field: manual / scheduled
    hour_field: str  # ConnectSetting field: the JST hour of its slot
    paused_field: str  # ConnectSetting field: schedule paused
    interval_field: str | None = None  # daily / monthly; None: always daily
    day_field: str | None = None  # the day of a monthly slot
    dated: bool = False  # runs carry a target (working) date
    rerunnable: bool = False  # failed punches can be rerun (admin action, mails say so)

    @property
    def sync(self) -> Callable[..., Any]:
        return import_string(self.engine_path)

    @property
    def preview(self) -> Callable[..., Any]:
        return import_string(self.preview_path)


KINDS: dict[str, Kind] = {
    "employee": Kind(
        value="employee",
        engine_path="integrations.services.employee_sync.sync_employees",
        preview_path="integrations.services.preview._employee",
        trigger_field="employee_trigger",
        hour_field="employee_hour",
        paused_field="employee_paused",
        interval_field="employee_interval",
        day_field="employee_day",
    ),
    "attendance": Kind(
        value="attendance",
        engine_path="integrations.services.attendance_sync.sync_attendance",
        preview_path="integrations.services.preview._attendance",
        trigger_field="attendance_trigger",
        hour_field="attendance_hour",
        paused_field="attendance_paused",
        dated=True,
        rerunnable=True,
    ),
}


def kind_of(value: str) -> Kind:
    """The registry row of a kind; KeyError for an unknown kind."""
    return KINDS[value]
