"""The preview computes what a sync would do and writes nothing anywhere."""

from __future__ import annotations

import copy

import pytest

from integrations.models import SyncError, SyncRun
from integrations.services.preview import preview_sync
from tests.sync_world import DAY, configure

pytestmark = pytest.mark.django_db


def snapshot(sandbox):
    return copy.deepcopy((sandbox.senselink.persons, sandbox.kot.punches, sandbox.kot.employees))


def test_employee_preview_writes_nothing(world):
    before = snapshot(world.sandbox)
    preview = preview_sync(tenant=world.acme, kind="employee")
    assert not preview.error
    active = [e for e in world.sandbox.kot.employees if "resignationDate" not in e]
    assert preview.counts["create"] >= len(active) - 5
    assert any(line.startswith("登録: 従業員コード:") for line in preview.lines)
    assert snapshot(world.sandbox) == before
    writes = [k for k in world.sandbox.request_counts() if k.startswith("POST") or "delete" in k]
    assert writes == []
    assert SyncRun.objects.count() == 0 and SyncError.objects.count() == 0


def test_attendance_preview_writes_nothing(world):
    configure(world.acme, attendance_mode="clock_in_out")
    before = snapshot(world.sandbox)
    preview = preview_sync(tenant=world.acme, kind="attendance", target_date=DAY)
    assert not preview.error
    assert preview.counts["punch"] > 0
    assert any(line.startswith("打刻: 従業員コード:") for line in preview.lines)
    assert snapshot(world.sandbox) == before
    assert not [k for k in world.sandbox.request_counts() if k.startswith("POST")]
    assert SyncRun.objects.count() == 0


def test_preview_reports_a_configuration_problem_plainly(world):
    world.acme.kot_access_token = "wrong-token"
    world.acme.save()
    preview = preview_sync(tenant=world.acme, kind="employee")
    assert "KING OF TIMEの認証に失敗しました" in preview.error
    assert "wrong-token" not in preview.error
