"""The creation guard (issue 12 item 4): a run that would register more persons than the
tenant's limit next to persons SenseLink already holds stops before writing; support lets one
run through from the admin; a person list without job numbers always stops."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from integrations.models import SyncRun
from integrations.services.execution import execute_run
from integrations.services.preview import preview_sync
from integrations.services.runs import request_run
from tests.admin_helpers import staff_user, support_user
from tests.sync_world import configure, run_now, small_kot

pytestmark = pytest.mark.django_db


def staff(n: int) -> list[dict]:
    return [
        {"code": f"E{i:03}", "last_name": "社員", "first_name": f"{i}", "hiredDate": "2020-04-01"}
        for i in range(n)
    ]


def guarded_run(world, employees: int = 12) -> SyncRun:
    """12 employees to create next to the sandbox's 3 hand-registered persons: over 10 and 20 %."""
    small_kot(world.sandbox, *staff(employees))
    world.sandbox.reset_counts()
    return run_now(world.acme, SyncRun.Kind.EMPLOYEE)


def writes(sandbox) -> list[str]:
    return [k for k, n in sandbox.request_counts().items() if n and k.startswith("POST")]


def test_the_guard_stops_before_any_write_and_says_why(world):
    run = guarded_run(world)

    assert run.status == SyncRun.Status.FAILURE
    assert run.error_type == SyncRun.ErrorType.CONFIGURATION
    assert run.errors.get().code == "creation_guard"
    assert "既に3人が登録されています" in run.message and "12人" in run.message
    assert "一括登録の上限(10人かつ20%)" in run.message
    assert "この実行のみ上限を超えて登録" in run.message
    assert writes(world.sandbox) == []
    assert len(world.sandbox.senselink.persons) == 3


def test_within_either_limit_the_run_goes_through(world):
    configure(world.acme, creation_guard_count=12)
    assert guarded_run(world).created_count == 12
    # A first sync into an empty SenseLink is never guarded.
    world.sandbox.senselink.persons.clear()
    configure(world.acme, creation_guard_count=0, creation_guard_percent=0)
    small_kot(world.sandbox, *staff(30))
    assert run_now(world.acme, SyncRun.Kind.EMPLOYEE).created_count == 30


def test_the_preview_shows_the_plan_and_that_the_run_would_stop(world):
    small_kot(world.sandbox, *staff(12))
    preview = preview_sync(tenant=world.acme, kind="employee")
    assert not preview.error and preview.counts["create"] == 12
    assert any("実行時に停止します" in n and "一括登録の上限" in n for n in preview.notices)


def test_support_confirms_how_many_persons_then_lets_one_run_through(world, client):
    stopped = guarded_run(world)
    client.force_login(support_user())
    page = client.get(reverse("admin:integrations_syncrun_change", args=[stopped.pk]))
    url = reverse("admin:integrations_syncrun_allow_mass_create", args=[stopped.pk])
    assert f'href="{url}"' in page.content.decode()  # a link to the confirmation, not a POST

    # The confirmation: how many persons the run would register now (a preview, no write).
    confirm = client.get(url)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "今実行すると、SenseLinkに12人を新しく登録します。" in html
    assert "登録: 従業員コード:E000" in html
    assert 'value="12人を登録する社員情報連携を実行する"' in html
    assert SyncRun.objects.count() == 1 and writes(world.sandbox) == []

    response = client.post(url)

    override = SyncRun.objects.exclude(pk=stopped.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:integrations_syncrun_change", args=[override.pk])
    assert override.allow_mass_create and override.kind == SyncRun.Kind.EMPLOYEE
    assert override.status == SyncRun.Status.QUEUED
    assert override.rerun_of == stopped  # the new run links the stopped one
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert (
        f"社員情報連携 #{override.pk}</a> の実行を受け付けました(社員情報連携 #{stopped.pk} の再実行)"
        in message
    )
    assert "上限を超えて登録" in LogEntry.objects.get().get_change_message()
    page = client.get(response["Location"]).content.decode()
    assert reverse("admin:integrations_syncrun_change", args=[stopped.pk]) in page  # 再実行元
    done = execute_run(run_id=override.pk)
    assert done.status == SyncRun.Status.SUCCESS and done.created_count == 12
    # Once: the next run is guarded again (nothing to create now, so it passes).
    small_kot(world.sandbox, *staff(40))
    assert run_now(world.acme, SyncRun.Kind.EMPLOYEE).errors.get().code == "creation_guard"


def test_the_override_needs_the_trigger_permission_and_a_post(world, client):
    stopped = guarded_run(world)
    url = reverse("admin:integrations_syncrun_allow_mass_create", args=[stopped.pk])
    client.force_login(staff_user("viewer", "integrations.view_syncrun"))
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    page = client.get(reverse("admin:integrations_syncrun_change", args=[stopped.pk]))
    assert url not in page.content.decode()  # no button
    client.force_login(support_user())
    assert client.get(url).status_code == 200  # the confirmation only
    assert client.put(url).status_code == 405
    assert SyncRun.objects.count() == 1


def test_the_override_is_refused_for_a_run_the_guard_did_not_stop(world, client):
    configure(world.acme, creation_guard_count=100)
    done = guarded_run(world)
    client.force_login(support_user())
    response = client.post(reverse("admin:integrations_syncrun_allow_mass_create", args=[done.pk]))
    assert response.status_code == 302
    assert "一括登録の上限で停止した社員情報連携ではありません" in " ".join(
        str(m) for m in get_messages(response.wsgi_request)
    )
    assert SyncRun.objects.count() == 1


@pytest.mark.parametrize("sandbox", ["persons-without-job-number"], indirect=True)
def test_a_person_list_without_job_numbers_stops_even_with_the_override(world):
    small_kot(world.sandbox, *staff(2))
    configure(world.acme, creation_guard_count=1000)
    for allow in (False, True):
        request = request_run(
            tenant=world.acme, kind="employee", enqueue=False, allow_mass_create=allow
        )
        run = execute_run(run_id=request.run.pk)
        assert run.status == SyncRun.Status.FAILURE
        assert run.errors.get().code == "senselink_no_job_numbers"
        assert "従業員番号の項目がありません" in run.message and "二重に登録" in run.message
    assert len(world.sandbox.senselink.persons) == 3
