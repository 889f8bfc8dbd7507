"""The run and error admins: read-only lists the desk can filter and search, today's failures
across tenants, and the rerun action for failed or partial attendance runs."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from integrations.models import SyncRun
from integrations.services.execution import execute_run
from tests.admin_helpers import DAY, make_run, staff_user, support_user
from tests.conftest import JST
from tests.sync_world import at, configure, only_records, punches, run_now, small_kot
from tests.world import make_acme, make_globex

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:integrations_syncrun_changelist")
ERRORS = reverse("admin:integrations_syncerror_changelist")
FAILED = reverse("admin:integrations_syncrun_failed")


@pytest.fixture
def tenants(noon):
    return make_acme(), make_globex()


def listed(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def rerun_action(client, runs):
    return client.post(
        RUNS,
        {"action": "rerun_failed_attendance", "_selected_action": [run.pk for run in runs]},
    )


# --- The run list ---


def test_run_list_shows_badges_counters_and_who(admin_client, tenants):
    acme, _ = tenants
    make_run(acme, status="failure", errors=["1001", "1002"], triggered_by_label="desk-sato")
    make_run(acme, status="success")
    page = admin_client.get(RUNS).content.decode()
    assert "run-status-failure" in page and "run-status-success" in page
    assert "FAILURE" in page and "SUCCESS" in page
    assert "0/0/0/0/2" in page
    assert "desk-sato" in page
    assert "8秒" in page
    assert "2026-11-25 03:00" in page  # started, in JST


def test_run_list_filters(admin_client, tenants):
    acme, globex = tenants
    failed = make_run(acme, status="failure")
    employee = make_run(acme, kind="employee", status="success", trigger="manual")
    other = make_run(globex, status="partial")

    assert listed(admin_client.get(RUNS, {"status": "failure"})) == {failed.pk}
    assert listed(admin_client.get(RUNS, {"kind": "employee"})) == {employee.pk}
    assert listed(admin_client.get(RUNS, {"trigger": "manual"})) == {employee.pk}
    assert listed(admin_client.get(RUNS, {"tenant": globex.pk})) == {other.pk}
    response = admin_client.get(RUNS, {"tenant": acme.pk, "kind": "attendance"})
    assert listed(response) == {failed.pk}
    assert "acme 株式会社" in response.content.decode()  # the chosen tenant in the sidebar


def test_run_list_filters_by_created_date(admin_client, tenants):
    acme, _ = tenants
    today = make_run(acme, started_at=datetime(2026, 11, 25, 0, 30, tzinfo=JST))
    make_run(acme, started_at=datetime(2026, 11, 24, 23, 30, tzinfo=JST))
    response = admin_client.get(
        RUNS,
        {
            "created_at__gte": "2026-11-25 00:00:00+09:00",
            "created_at__lt": "2026-11-26 00:00:00+09:00",
        },
    )
    assert listed(response) == {today.pk}


def test_run_search_by_tenant_and_by_employee_code_without_duplicates(admin_client, tenants):
    acme, globex = tenants
    with_code = make_run(acme, errors=["2022", "3033"])
    # The same code twice in one run must still list the run once.
    also = make_run(globex, errors=["2022", "2022"])
    make_run(globex, errors=["4044"])

    response = admin_client.get(RUNS, {"q": "2022"})
    assert [obj.pk for obj in response.context["cl"].result_list] == [also.pk, with_code.pk]
    assert listed(admin_client.get(RUNS, {"q": "acme"})) == {with_code.pk}
    assert listed(admin_client.get(RUNS, {"q": f"#{also.pk}"})) == {also.pk}


def test_runs_are_read_only(admin_client, tenants):
    run = make_run(tenants[0], errors=["1001"])
    change = reverse("admin:integrations_syncrun_change", args=[run.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert "従業員コード:1001 の出勤は既に打刻済みです。" in html  # the errors inline
    assert admin_client.post(change, {"status": "success"}).status_code == 403
    assert admin_client.get(reverse("admin:integrations_syncrun_add")).status_code == 403
    assert SyncRun.objects.get(pk=run.pk).status == "failure"


# --- Errors and today's failures ---


def test_error_list_filters_by_code_and_tenant_and_searches_employee_code(admin_client, tenants):
    acme, globex = tenants
    make_run(acme, errors=["1001"])
    make_run(globex, errors=["1001", "2002"])

    def codes(response):
        return sorted(
            (e.run.tenant.slug, e.employee_code) for e in response.context["cl"].result_list
        )

    assert codes(admin_client.get(ERRORS, {"tenant": acme.pk})) == [("acme", "1001")]
    assert codes(admin_client.get(ERRORS, {"q": "1001"})) == [("acme", "1001"), ("globex", "1001")]
    assert codes(admin_client.get(ERRORS, {"code": "kot_rejected", "q": "2002"})) == [
        ("globex", "2002")
    ]
    assert codes(admin_client.get(ERRORS, {"code": "other"})) == []


def test_failed_runs_view_lists_todays_problems_across_tenants(admin_client, tenants):
    acme, globex = tenants
    failed = make_run(acme, status="failure", errors=["1001"])
    partial = make_run(globex, status="partial", errors=["2002"])
    make_run(acme, status="success")
    yesterday = make_run(
        globex, status="failure", started_at=datetime(2026, 11, 24, 23, 0, tzinfo=JST)
    )

    response = admin_client.get(FAILED)
    assert response.status_code == 200
    assert [run.pk for run in response.context["runs"]] == [partial.pk, failed.pk]
    html = response.content.decode()
    assert "2026年11月25日 に失敗した連携" in html
    assert "従業員コード:1001 の出勤は既に打刻済みです。" in html
    assert "テナント 2社" in html

    response = admin_client.get(FAILED, {"date": "2026-11-24"})
    assert [run.pk for run in response.context["runs"]] == [yesterday.pk]
    assert FAILED in admin_client.get(RUNS).content.decode()  # linked from the run list


def test_failed_runs_view_needs_view_permission(client, tenants):
    client.force_login(staff_user("nobody"))
    assert client.get(FAILED).status_code == 403


# --- The rerun action ---


def test_rerun_action_reruns_only_failed_or_partial_attendance_runs(client, tenants):
    acme, _ = tenants
    desk = support_user()
    client.force_login(desk)
    failed = make_run(acme, status="failure")
    partial = make_run(acme, status="partial", target_date=datetime(2026, 11, 23).date())
    succeeded = make_run(acme, status="success")
    employee = make_run(acme, kind="employee", status="failure")

    response = rerun_action(client, [failed, partial, succeeded, employee])

    assert response.status_code == 302
    reruns = SyncRun.objects.filter(trigger="rerun").order_by("rerun_of_id")
    assert [(r.rerun_of_id, r.kind, r.target_date) for r in reruns] == [
        (failed.pk, "attendance", failed.target_date),
        (partial.pk, "attendance", partial.target_date),
    ]
    assert {r.triggered_by for r in reruns} == {desk}
    messages = texts(response)
    assert any(m.startswith("再実行 2件") for m in messages)
    skipped = next(m for m in messages if m.startswith("2件は再実行しませんでした。"))
    assert f"#{succeeded.pk}" in skipped and f"#{employee.pk}" in skipped
    logged = {int(e.object_id) for e in LogEntry.objects.filter(change_message__contains="再実行")}
    assert logged == {failed.pk, partial.pk}


def test_rerun_action_is_not_offered_without_the_trigger_permission(client, tenants):
    client.force_login(staff_user("viewer", "integrations.view_syncrun"))
    failed = make_run(tenants[0], status="failure")
    assert "rerun_failed_attendance" not in client.get(RUNS).content.decode()

    rerun_action(client, [failed])

    assert not SyncRun.objects.filter(trigger="rerun").exists()


def test_rerun_from_the_admin_retries_only_the_failed_punches(admin_client, world):
    staff = [{"code": f"{i:04}", "last_name": "社員", "first_name": f"{i}号"} for i in range(1, 4)]
    small_kot(world.sandbox, *staff)
    configure(world.acme, attendance_mode="clock_in_out")
    only_records(world.sandbox, DAY, *[(f"{i:04}", at(h, i)) for i in range(1, 4) for h in (8, 18)])
    failing = world.sandbox.kot.employee_by_code("0002")["key"]
    world.sandbox.faults.add("kot", "http500_html", path=failing, method="POST", times=None)
    first = run_now(world.acme, "attendance", DAY)
    assert first.status == SyncRun.Status.PARTIAL
    world.sandbox.faults.clear()
    posted_before = len(world.sandbox.kot.punches)

    rerun_action(admin_client, [first])

    rerun = SyncRun.objects.get(rerun_of=first)
    assert (rerun.trigger, rerun.target_date) == ("rerun", DAY)
    result = execute_run(run_id=rerun.pk)
    assert result.status == SyncRun.Status.SUCCESS
    assert len(world.sandbox.kot.punches) == posted_before + 2
    assert punches(world.sandbox, "0002") == [
        ("1", "2026-11-24T08:02:00+09:00"),
        ("2", "2026-11-24T18:02:00+09:00"),
    ]
