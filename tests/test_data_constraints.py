"""The database refuses rows that break the data contract."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from integrations.models import ConnectSetting, SyncRun, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    return Tenant.objects.create(name="テスト株式会社", slug="test", subscription_status="active")


def test_one_setting_per_tenant_and_connector(tenant):
    ConnectSetting.objects.create(tenant=tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectSetting.objects.create(tenant=tenant)


@pytest.mark.parametrize(
    "field,value",
    [("attendance_hour", 24), ("employee_hour", 30), ("employee_day", 0), ("employee_day", 32)],
)
def test_hours_and_days_out_of_range_are_refused_by_the_database(tenant, field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectSetting.objects.create(tenant=tenant, **{field: value})


def test_at_most_one_running_run_per_tenant_and_kind(tenant):
    SyncRun.objects.create(tenant=tenant, kind="employee", trigger="manual", status="running")
    # Another kind, or a queued one of the same kind, is fine.
    SyncRun.objects.create(tenant=tenant, kind="attendance", trigger="manual", status="running")
    queued = SyncRun.objects.create(tenant=tenant, kind="employee", trigger="manual")
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncRun.objects.filter(pk=queued.pk).update(status="running")


def test_a_schedule_slot_has_one_run(tenant):
    from django.utils import timezone

    slot = timezone.now().replace(minute=0, second=0, microsecond=0)
    SyncRun.objects.create(tenant=tenant, kind="attendance", trigger="schedule", slot=slot)
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncRun.objects.create(tenant=tenant, kind="attendance", trigger="schedule", slot=slot)


def test_slug_is_unique(tenant):
    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.create(name="別会社", slug="test")


def test_full_clean_refuses_a_schedule_hour_inside_a_kot_window(tenant):
    setting = ConnectSetting(
        tenant=tenant, attendance_trigger="scheduled", attendance_hour=9, employee_hour=3
    )
    with pytest.raises(ValidationError) as caught:
        setting.full_clean()
    assert "attendance_hour" in caught.value.message_dict
    assert "API利用禁止時間帯" in caught.value.message_dict["attendance_hour"][0]
    setting.attendance_hour = 10
    setting.full_clean()


def test_full_clean_refuses_a_senselink_url_that_is_not_https(tenant, settings):
    settings.SENSELINK_ALLOW_PRIVATE_HOSTS = False
    setting = ConnectSetting(tenant=tenant, senselink_url="http://link.japancv.co.jp/")
    with pytest.raises(ValidationError) as caught:
        setting.full_clean()
    assert "senselink_url" in caught.value.message_dict
