"""The next scheduled run shown to customers: strictly after now, in JST, short months clamped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.models import ConnectSetting
from integrations.services.schedules import latest_slot, next_slot
from tests.conftest import JST


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=JST)


DAILY = ConnectSetting(attendance_trigger="scheduled", attendance_hour=3)
MONTHLY_31 = ConnectSetting(
    employee_trigger="scheduled", employee_interval="monthly", employee_day=31, employee_hour=2
)


@pytest.mark.parametrize(
    "setting,kind,now,latest,following",
    [
        (DAILY, "attendance", jst(2026, 11, 25, 2, 59), jst(2026, 11, 24, 3), jst(2026, 11, 25, 3)),
        (DAILY, "attendance", jst(2026, 11, 25, 3, 0), jst(2026, 11, 25, 3), jst(2026, 11, 26, 3)),
        (DAILY, "attendance", jst(2026, 12, 31, 23), jst(2026, 12, 31, 3), jst(2027, 1, 1, 3)),
        (MONTHLY_31, "employee", jst(2026, 11, 25), jst(2026, 10, 31, 2), jst(2026, 11, 30, 2)),
        (MONTHLY_31, "employee", jst(2026, 11, 30, 2), jst(2026, 11, 30, 2), jst(2026, 12, 31, 2)),
        (MONTHLY_31, "employee", jst(2027, 2, 1), jst(2027, 1, 31, 2), jst(2027, 2, 28, 2)),
        (MONTHLY_31, "employee", jst(2028, 2, 29, 3), jst(2028, 2, 29, 2), jst(2028, 3, 31, 2)),
    ],
)
def test_latest_and_next_slot(setting, kind, now, latest, following):
    assert latest_slot(setting, kind, now) == latest
    assert next_slot(setting, kind, now) == following
    # The same moment given in UTC gives the same JST slots.
    assert next_slot(setting, kind, now.astimezone(UTC)) == following


def test_manual_syncs_have_no_slot():
    manual = ConnectSetting()
    assert latest_slot(manual, "attendance", jst(2026, 11, 25)) is None
    assert next_slot(manual, "employee", jst(2026, 11, 25)) is None
