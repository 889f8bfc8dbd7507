"""Updating existing SenseLink persons: off by default, and when on, a canary read back before
the rest (issue 12 item 3). Against the sandbox in its merging and replacing readings."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail

from integrations.models import ConnectSetting, SyncRun
from integrations.queue import SEND_RUN_MAIL, WORKERS
from integrations.services.preview import preview_sync
from tests.queue_helpers import orm_broker_only, work
from tests.sync_world import configure, run_now, small_kot

pytestmark = pytest.mark.django_db

EMPLOYEES = [
    {
        "code": f"00{n}",
        "last_name": last,
        "first_name": first,
        "birthDate": "1990-04-01",
        "hiredDate": "2015-04-01",
        "emailAddresses": [f"{first}@example.jp"],
    }
    for n, (last, first) in enumerate(
        [("山田", "taro"), ("佐藤", "hanako"), ("鈴木", "ichiro"), ("田中", "misaki")], start=11
    )
]
PHOTO = "/static/avatar/{}.jpg"


def registered_world(sandbox, tenant, **setting):
    """The four employees registered by a first sync, then given photos, a second group and a
    remark by hand in SenseLink; then KOT changes three of them (e-mail, name, hire date)."""
    small_kot(sandbox, *EMPLOYEES)
    configure(tenant, person_group_ids="1", **setting)
    assert run_now(tenant, SyncRun.Kind.EMPLOYEE).created_count == 4
    for person in sandbox.senselink.persons_by_job_number().values():
        if person["job_number"].startswith("00"):
            person.update(
                avatar=PHOTO.format(person["job_number"]), groups=[1, 3], remark="受付で登録"
            )
    kot = sandbox.kot
    kot.employee_by_code("0011")["emailAddresses"] = ["taro.new@example.jp"]
    kot.employee_by_code("0012")["lastName"] = "高橋"
    kot.employee_by_code("0013")["hiredDate"] = "2016-04-01"
    sandbox.reset_counts()


def ours(sandbox) -> dict[str, dict]:
    return {
        code: dict(p)
        for code, p in sandbox.senselink.persons_by_job_number().items()
        if code.startswith("00")
    }


def update_posts(sandbox) -> int:
    return sandbox.request_counts()["POST /api/v1/user/update/{id}"]


def test_with_updates_off_nothing_is_written_to_an_existing_person(world):
    sandbox = world.sandbox
    registered_world(sandbox, world.acme)
    before = ours(sandbox)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.SUCCESS
    assert (run.updated_count, run.not_updated_count, run.skipped_count) == (0, 3, 1)
    assert "未更新(差分あり)3" in run.message
    assert update_posts(sandbox) == 0
    assert ours(sandbox) == before
    preview = preview_sync(tenant=world.acme, kind="employee")
    assert preview.counts["outdated"] == 3 and preview.counts["update"] == 0
    assert "差分あり(更新しない設定): 従業員コード:0011 (メール送信先アドレス)" in preview.lines
    assert any("更新しない設定のため更新しません" in n for n in preview.notices)


def test_a_merging_api_gets_every_differing_person_corrected_photo_and_groups_intact(world):
    sandbox = world.sandbox
    registered_world(sandbox, world.acme, update_persons=True)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert (run.updated_count, run.not_updated_count) == (3, 0)
    persons = ours(sandbox)
    assert persons["0011"]["mail"] == "taro.new@example.jp"
    assert persons["0012"]["name"] == "高橋\u3000hanako"
    assert persons["0013"]["entry_time"] == "2016-04-01"
    for code, person in persons.items():
        assert person["avatar"] == PHOTO.format(code)  # never sent, never lost
        assert person["groups"] == [1, 3] and person["remark"] == "受付で登録"
    assert update_posts(sandbox) == 3
    assert ConnectSetting.objects.get(tenant=world.acme).update_persons  # still on
    # Canaries read the person back; each update sent only what changed.
    assert sandbox.request_counts()["GET /api/v1/user/list"] >= 2
    again = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert (again.updated_count, again.skipped_count) == (0, 4)


@pytest.mark.parametrize("sandbox", ["update-replaces"], indirect=True)
def test_a_replacing_api_touches_one_person_switches_updates_off_and_says_whose_photo(
    world, django_capture_on_commit_callbacks
):
    orm_broker_only()
    sandbox = world.sandbox
    registered_world(sandbox, world.acme, update_persons=True)
    before = ours(sandbox)

    with django_capture_on_commit_callbacks(execute=True):
        run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    work(WORKERS, SEND_RUN_MAIL)  # the failure mail leaves as the workers' task

    assert update_posts(sandbox) == 1  # the canary only
    assert run.status == SyncRun.Status.PARTIAL
    assert (run.updated_count, run.not_updated_count) == (0, 3)
    [error] = run.errors.all()
    assert error.code == "update_replaced_fields" and error.employee_code == ""
    assert "従業員コード:0011(山田\u3000taro)" in error.message
    assert "顔写真" in error.message and "人員グループ" in error.message
    assert "オフにしました" in error.message
    assert not ConnectSetting.objects.get(tenant=world.acme).update_persons
    customer, support = mail.outbox  # the tenant's contact and support are told
    assert support.to == [settings.SUPPORT_EMAIL] and "従業員コード:0011(山田" in support.body
    assert "従業員コード:0011(山田" in customer.body
    after = {p["id"]: p for p in sandbox.senselink.persons.values()}
    lost = [p for p in before.values() if not after[p["id"]].get("avatar")]
    assert [p["job_number"] for p in lost] == ["0011"]  # one photo at most
    for code in ("0012", "0013", "0014"):
        assert after[before[code]["id"]] == before[code]  # untouched
    # The next run writes no update: updates are off now.
    sandbox.reset_counts()
    second = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert update_posts(sandbox) == 0 and second.not_updated_count == 2


@pytest.mark.parametrize("sandbox", ["update-unsupported"], indirect=True)
def test_an_unsupported_update_gives_one_message_not_one_per_employee(world):
    sandbox = world.sandbox
    registered_world(sandbox, world.acme, update_persons=True)
    before = ours(sandbox)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert update_posts(sandbox) == 1
    [error] = run.errors.all()
    assert error.code == "senselink_update_unsupported" and error.employee_code == ""
    assert "更新API" in error.message
    assert run.not_updated_count == 3 and run.status == SyncRun.Status.PARTIAL
    assert ours(sandbox) == before


@pytest.mark.parametrize("sandbox", ["persons-without-photo"], indirect=True)
def test_a_person_list_without_photos_cannot_prove_an_update_safe(world):
    sandbox = world.sandbox
    registered_world(sandbox, world.acme, update_persons=True)
    before = ours(sandbox)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert update_posts(sandbox) == 0
    [error] = run.errors.all()
    assert error.code == "update_unverifiable" and "顔写真の項目がない" in error.message
    assert not ConnectSetting.objects.get(tenant=world.acme).update_persons
    assert ours(sandbox) == before


def test_an_update_never_sends_empty_values_groups_or_the_photo(world):
    """KOT losing an e-mail or a birth date is no change: SenseLink takes "" for neither."""
    sandbox = world.sandbox
    registered_world(sandbox, world.acme, update_persons=True)
    del sandbox.kot.employee_by_code("0014")["emailAddresses"]
    del sandbox.kot.employee_by_code("0014")["birthDate"]
    sandbox.senselink.configure(strict_fields=True)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert run.updated_count == 3  # 0014 is unchanged: its values are kept
    person = ours(sandbox)["0014"]
    assert person["mail"] == "misaki@example.jp" and person["birthday"] == "1990-04-01"
