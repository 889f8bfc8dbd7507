"""The kinds of work in one table (integrations/kinds.py): every kind has a row, and the
ConnectSetting helpers read the kind's own fields."""

from __future__ import annotations

import pytest

from integrations.kinds import KINDS, kind_of
from integrations.models import ConnectSetting, SyncRun
from integrations.services.attendance_sync import sync_attendance
from integrations.services.employee_sync import sync_employees


def test_every_kind_of_run_has_one_row():
    assert set(KINDS) == set(SyncRun.Kind.values)
    assert all(kind.value == value for value, kind in KINDS.items())


def test_each_row_names_real_fields_and_engines():
    fields = {f.name for f in ConnectSetting._meta.get_fields()}
    for kind in KINDS.values():
        named = [kind.trigger_field, kind.hour_field, kind.paused_field]
        named += [f for f in (kind.interval_field, kind.day_field) if f]
        assert set(named) <= fields, kind.value
        assert callable(kind.sync) and callable(kind.preview)
    assert kind_of("employee").sync is sync_employees
    assert kind_of("attendance").sync is sync_attendance


def test_what_each_kind_carries():
    assert kind_of("attendance").dated and kind_of("attendance").rerunnable
    assert not kind_of("employee").dated and not kind_of("employee").rerunnable
    with pytest.raises(KeyError):
        kind_of("realtime-poll")


def test_setting_reads_the_kinds_own_fields():
    setting = ConnectSetting(
        attendance_trigger="scheduled",
        attendance_hour=4,
        attendance_paused=True,
        employee_trigger="manual",
        employee_hour=2,
        employee_paused=False,
    )
    assert setting.trigger_for("attendance") == "scheduled"
    assert setting.trigger_for("employee") == "manual"
    assert (setting.hour_for("attendance"), setting.hour_for("employee")) == (4, 2)
    assert setting.is_paused("attendance") and not setting.is_paused("employee")
