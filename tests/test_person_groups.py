"""Persons must reach the terminals (issue 12 item 1): the tenant's person groups are sent as
``groups`` on create only; the settings page lists SenseLink's groups to pick from, and an
empty value is allowed but said plainly on the page, in the connection test and the preview."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from integrations.models import ConnectSetting, SyncRun, TermsConsent
from integrations.services.preview import preview_sync
from tests.sync_world import configure, run_now, small_kot

pytestmark = pytest.mark.django_db

YAMADA = {"code": "0042", "last_name": "山田", "first_name": "太郎", "hiredDate": "2015-04-01"}
SATO = {"code": "A0004", "last_name": "佐藤", "first_name": "花子", "hiredDate": "2020-10-01"}
NO_GROUP = "どの端末でも認識されません"


@pytest.fixture
def page(world, client):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)
    world.client = client
    world.setting = world.acme.connect_settings.get()
    world.url = reverse("portal:connect_settings", args=[world.setting.pk])
    return world


def form_data(world, **changes) -> dict:
    data = {
        "kot_access_token": "",
        "senselink_url": world.sandbox.senselink_url,
        "app_key": world.sandbox.app_key,
        "app_secret": "",
        "attendance_mode": "clock_in",
        "attendance_trigger": "manual",
        "attendance_hour": "3",
        "attendance_target_day": "previous",
        "employee_trigger": "manual",
        "employee_interval": "daily",
        "employee_day": "1",
        "employee_hour": "2",
        "resigned_policy": "keep",
        "deletion_guard_count": "10",
        "deletion_guard_percent": "20",
        "creation_guard_count": "10",
        "creation_guard_percent": "20",
        "person_group_ids": "",
        "action": "save",
    }
    data.update(changes)
    return data


def test_a_create_carries_the_tenants_groups_and_an_update_never_does(world):
    configure(world.acme, person_group_ids="1,3", update_persons=True)
    small_kot(world.sandbox, YAMADA, SATO)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    persons = world.sandbox.senselink.persons_by_job_number()
    assert persons["0042"]["groups"] == [1, 3] and persons["A0004"]["groups"] == [1, 3]
    # Groups changed in SenseLink by hand stay as they are through updates.
    persons["0042"]["groups"] = [2]
    world.sandbox.kot.employee_by_code("0042")["lastName"] = "高橋"
    configure(world.acme, person_group_ids="3")
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.updated_count == 1
    assert world.sandbox.senselink.persons_by_job_number()["0042"]["groups"] == [2]
    update_forms = [p for a, p in world.sandbox.senselink.received_forms if a == "update"]
    assert update_forms == [[("name", "高橋\u3000太郎")]]


def test_without_groups_persons_are_created_in_no_group_and_the_preview_says_so(world):
    small_kot(world.sandbox, YAMADA)
    preview = preview_sync(tenant=world.acme, kind="employee")
    assert any(NO_GROUP in notice for notice in preview.notices)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.SUCCESS
    assert world.sandbox.senselink.persons_by_job_number()["0042"]["groups"] == []
    configure(world.acme, person_group_ids="1")
    small_kot(world.sandbox, YAMADA, SATO)
    assert not any(NO_GROUP in n for n in preview_sync(tenant=world.acme, kind="employee").notices)


def test_a_group_senselink_does_not_have_is_each_creates_error(world):
    configure(world.acme, person_group_ids="77")
    small_kot(world.sandbox, YAMADA)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.FAILURE
    assert run.errors.get().code == "senselink_param_invalid"


def test_the_settings_page_says_plainly_when_no_group_is_set(page):
    warning = '<p class="warning" role="note">人員グループが指定されていません。'
    html = page.client.get(page.url).content.decode()
    assert "登録先の人員グループID" in html and warning in html
    assert "人員グループを読み込む</button>" in html
    configure(page.acme, person_group_ids="1")
    assert warning not in page.client.get(page.url).content.decode()


def test_the_groups_are_listed_to_pick_from_and_the_pick_is_saved(page):
    html = page.client.post(
        page.url, form_data(page, action="groups", person_group_ids="3")
    ).content.decode()
    assert 'name="person_group_pick" value="1"' in html and "社員" in html
    assert 'value="3" checked' in html and 'value="1" checked' not in html
    assert ConnectSetting.objects.get(pk=page.setting.pk).person_group_ids == ""  # not saved

    response = page.client.post(
        page.url,
        {**form_data(page, group_picker="1"), "person_group_pick": ["3", "1"]},
    )

    assert response.status_code == 302
    assert ConnectSetting.objects.get(pk=page.setting.pk).person_group_ids == "3,1"


def test_typed_group_ids_are_normalised_or_refused_beside_the_field(page):
    page.client.post(page.url, form_data(page, person_group_ids=" 3、 12 ,3"))
    assert ConnectSetting.objects.get(pk=page.setting.pk).person_group_ids == "3,12"
    html = page.client.post(page.url, form_data(page, person_group_ids="社員")).content.decode()
    assert "人員グループIDは数字で入力してください" in html
    assert ConnectSetting.objects.get(pk=page.setting.pk).person_group_ids == "3,12"


@pytest.mark.parametrize("sandbox", ["key-limited"], indirect=True)
def test_when_the_group_list_cannot_be_read_the_page_says_to_type_the_ids(page):
    html = page.client.post(page.url, form_data(page, action="groups")).content.decode()
    assert "人員グループの一覧を読めませんでした" in html
    assert 'name="person_group_ids"' in html  # the text field stays


def test_the_tenant_cannot_switch_updates_on_but_sees_the_state(page):
    page.client.post(page.url, form_data(page, update_persons="on"))
    assert not ConnectSetting.objects.get(pk=page.setting.pk).update_persons
    html = page.client.get(page.url).content.decode()
    assert "既存の人員の更新:" in html and "しない" in html
    assert 'name="update_persons"' not in html


def test_support_sets_groups_updates_and_guards_in_the_admin(world, admin_client):
    html = admin_client.get(
        reverse("admin:integrations_tenant_change", args=[world.acme.pk])
    ).content.decode()
    for name in (
        "person_group_ids",
        "update_persons",
        "creation_guard_count",
        "creation_guard_percent",
    ):
        assert f'name="connect_settings-0-{name}"' in html
