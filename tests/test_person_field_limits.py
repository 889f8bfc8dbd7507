"""Never send what the manual forbids (issue 12 item 2): the documented field limits, checked
before sending, an over-long e-mail left out with one warning, and every person request the
sync sends measured against the manual's table (connectors.senselink.PERSON_FIELDS)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from connectors.senselink import CREATE_FIELDS, PERSON_FIELDS, UPDATE_FIELDS, person_form_problems
from integrations.models import SyncError, SyncRun, TermsConsent
from tests.sync_world import configure, run_now, small_kot

pytestmark = pytest.mark.django_db

LONG_MAIL = "kotaro.yamada.sales.department.tokyo@example.co.jp"  # 50 characters
assert len(LONG_MAIL) == 50
YAMADA = {
    "code": "0042",
    "last_name": "山田",
    "first_name": "小太郎",
    "birthDate": "1990-04-01",
    "hiredDate": "2015-04-01",
    "emailAddresses": [LONG_MAIL],
}
SATO = {"code": "A0004", "last_name": "佐藤", "first_name": "花子", "hiredDate": "2020-10-01"}


def test_an_over_long_mail_gives_a_person_without_mail_and_one_warning(world):
    small_kot(world.sandbox, YAMADA, SATO)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.SUCCESS  # a warning is not a failure
    assert (run.created_count, run.failed_count, run.warning_count) == (2, 0, 1)
    person = world.sandbox.senselink.persons_by_job_number()["0042"]
    assert person["mail"] is None and person["name"] == "山田\u3000小太郎"
    assert person["birthday"] == "1990-04-01"
    [warning] = run.errors.all()
    assert (warning.code, warning.severity, warning.employee_code) == (
        "mail_too_long",
        SyncError.Severity.WARNING,
        "0042",
    )
    assert "50文字" in warning.message and "45文字" in warning.message
    assert "メールアドレスなしで登録しました" in warning.message
    assert LONG_MAIL not in warning.message


@pytest.mark.parametrize("update_persons", [False, True])
def test_the_next_run_writes_nothing_and_warns_no_more(world, update_persons):
    small_kot(world.sandbox, YAMADA, SATO)
    configure(world.acme, update_persons=update_persons)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    world.sandbox.reset_counts()

    second = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert second.status == SyncRun.Status.SUCCESS
    assert (second.created_count, second.updated_count, second.not_updated_count) == (0, 0, 0)
    assert second.skipped_count == 2 and second.warning_count == 0
    assert not second.errors.exists()
    assert not [k for k in world.sandbox.request_counts() if k.startswith("POST")]


def test_the_warning_is_shown_under_error_details_and_in_the_admin(world, client, admin_client):
    small_kot(world.sandbox, YAMADA, SATO)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)

    log = client.get(reverse("portal:run_log")).content.decode()
    assert reverse("portal:run_errors", args=[run.pk]) in log  # the link, though nothing failed
    assert "警告\u00a01" in log  # a no-break space: the label stays with its number
    details = client.get(reverse("portal:run_errors", args=[run.pk])).content.decode()
    assert "警告:</strong> 従業員コード:0042 のメールアドレスは50文字" in details
    admin_page = admin_client.get(reverse("admin:integrations_syncerror_changelist")).content
    assert "警告" in admin_page.decode() and "mail_too_long" in admin_page.decode()
    run_page = admin_client.get(reverse("admin:integrations_syncrun_change", args=[run.pk]))
    assert "mail_too_long" in run_page.content.decode()


def test_a_job_number_longer_than_45_is_that_employees_error_and_never_sent(world):
    long_code = {**SATO, "code": "K" * 46}
    small_kot(world.sandbox, YAMADA, long_code)

    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)

    assert run.status == SyncRun.Status.PARTIAL and run.created_count == 1
    error = run.errors.get(severity=SyncError.Severity.ERROR)
    assert error.code == "job_number_too_long" and error.employee_code == "K" * 46
    assert "45文字" in error.message
    sent = [
        dict(parts).get("jobNumber") for _action, parts in world.sandbox.senselink.received_forms
    ]
    assert sent == ["0042"]


@pytest.mark.parametrize("sandbox", ["strict-fields"], indirect=True)
def test_every_person_request_of_the_sync_obeys_the_manual(world):
    """Creates and updates with every shape of KOT data, against a sandbox that refuses ""
    where the manual does not allow it: each form on the wire is checked against the table."""
    sandbox = world.sandbox
    configure(world.acme, person_group_ids="1,3", update_persons=True)
    people = [
        YAMADA,
        SATO,
        {"code": "0007", "last_name": "鈴木", "first_name": "", "emailAddresses": ["a@b.jp"]},
        {"code": "0008", "last_name": "田中", "first_name": "一", "birthDate": "1970-01-01"},
    ]
    small_kot(sandbox, *people)
    first = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert first.status == SyncRun.Status.SUCCESS and first.created_count == 4
    kot = sandbox.kot
    kot.employee_by_code("A0004")["emailAddresses"] = ["hanako@example.jp"]
    kot.employee_by_code("0008")["hiredDate"] = "2021-04-01"
    del kot.employee_by_code("0007")["emailAddresses"]  # cannot be cleared: no change
    second = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert second.status == SyncRun.Status.SUCCESS and second.updated_count == 2

    forms = sandbox.senselink.received_forms
    assert [action for action, _parts in forms] == ["create"] * 4 + ["update"] * 2
    for action, parts in forms:
        allowed = CREATE_FIELDS if action == "create" else UPDATE_FIELDS
        assert person_form_problems(parts, allowed=allowed) == [], parts
        names = [name for name, _value in parts]
        assert "avatarFile" not in names  # the photo: never
        assert all(value != "" for _name, value in parts)
        for name, value in parts:
            rule = PERSON_FIELDS[name]
            assert rule.max_length is None or len(value) <= rule.max_length
        if action == "create":
            assert [v for n, v in parts if n == "groups"] == ["1", "3"]
        else:
            assert "groups" not in names and "jobNumber" not in names
    updates = [dict(parts) for action, parts in forms if action == "update"]
    assert {"mail": "hanako@example.jp"} in updates and {"entryTime": "2021-04-01"} in updates


@pytest.mark.parametrize(
    ("parts", "problem"),
    [
        ([("name", "x"), ("jobNumber", "1"), ("mail", "")], "mail: empty string not allowed"),
        ([("name", "x"), ("jobNumber", "1"), ("birthday", "")], "birthday: empty string"),
        ([("name", "x"), ("jobNumber", "1"), ("birthday", "1990/04/01")], "not YYYY-MM-DD"),
        ([("name", "x"), ("jobNumber", "1" * 46)], "jobNumber: longer than 45"),
        ([("name", "x"), ("mail", "m" * 46)], "mail: longer than 45"),
        ([("jobNumber", "1")], "name: required"),
        ([("name", "x"), ("groups", "a")], "groups: not a number"),
        ([("name", "x"), ("avatarFile", "x")], "avatarFile: not a field this request may send"),
    ],
)
def test_the_schema_names_what_breaks_the_manual(parts, problem):
    problems = person_form_problems(parts, allowed=CREATE_FIELDS)
    assert any(problem in p for p in problems), problems


def test_the_schema_allows_what_the_manual_allows():
    parts = [
        ("name", "山田"),
        ("jobNumber", ""),
        ("mail", "m" * 45),
        ("groups", "1"),
        ("groups", "2"),
    ]
    assert person_form_problems(parts, allowed=CREATE_FIELDS) == []
    assert person_form_problems([("mail", "a@b.jp")], allowed=UPDATE_FIELDS) == []
    assert person_form_problems([("groups", "1")], allowed=UPDATE_FIELDS) != []
