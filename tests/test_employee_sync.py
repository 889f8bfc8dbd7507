"""Employee sync KOT → SenseLink (SPEC 4.1), end to end against the sandbox."""

from __future__ import annotations

import pytest

from integrations.models import SyncRun
from tests.sync_world import configure, run_now, small_kot

pytestmark = pytest.mark.django_db(transaction=False)

YAMADA = {
    "code": "0042",
    "last_name": "山田",
    "first_name": "太郎",
    "birthDate": "1990-04-01",
    "hiredDate": "2015-04-01",
    "emailAddresses": ["yamada@example.jp", "taro@example.jp"],
}
SATO = {"code": "A0004", "last_name": "佐藤", "first_name": "花子", "hiredDate": "2020-10-01"}


def persons(sandbox) -> dict:
    return sandbox.senselink.persons_by_job_number()


def test_mapping_field_by_field(world):
    small_kot(world.sandbox, YAMADA, SATO)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.SUCCESS
    assert (run.created_count, run.updated_count, run.skipped_count) == (2, 0, 0)
    yamada = persons(world.sandbox)["0042"]
    assert yamada["name"] == "山田\u3000太郎"
    assert yamada["birthday"] == "1990-04-01"
    assert yamada["entry_time"] == "2015-04-01"
    assert yamada["mail"] == "yamada@example.jp"  # the first address only
    sato = persons(world.sandbox)["A0004"]
    assert sato["name"] == "佐藤\u3000花子"
    assert not sato.get("birthday") and not sato.get("mail")  # absent in KOT, left empty


def test_second_run_skips_unchanged_and_updates_a_changed_email(world):
    configure(world.acme, update_persons=True)
    small_kot(world.sandbox, YAMADA, SATO)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    world.sandbox.kot.employee_by_code("0042")["emailAddresses"] = ["new@example.jp"]
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert (run.created_count, run.updated_count, run.skipped_count) == (0, 1, 1)
    assert persons(world.sandbox)["0042"]["mail"] == "new@example.jp"
    third = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert (third.created_count, third.updated_count, third.skipped_count) == (0, 0, 2)


def test_persons_whose_number_is_not_a_kot_code_are_never_touched(world):
    small_kot(world.sandbox, YAMADA)
    before = {pid: dict(p) for pid, p in world.sandbox.senselink.persons.items()}
    assert before, "the sandbox starts with hand-registered persons"
    configure(world.acme, resigned_policy="delete")
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    after = world.sandbox.senselink.persons
    for pid, person in before.items():
        assert after[pid] == person


@pytest.mark.parametrize("policy,expected_left", [("keep", True), ("delete", False)])
def test_resigned_employee_policy(world, policy, expected_left):
    small_kot(world.sandbox, YAMADA, SATO)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    world.sandbox.kot.employee_by_code("A0004")["resignationDate"] = "2026-10-31"
    configure(
        world.acme, resigned_policy=policy, deletion_guard_count=5, deletion_guard_percent=100
    )
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.SUCCESS
    assert ("A0004" in persons(world.sandbox)) is expected_left
    assert run.deleted_count == (0 if expected_left else 1)


def test_a_resigned_employee_is_not_created(world):
    small_kot(world.sandbox, YAMADA, {**SATO, "resignationDate": "2026-01-31"})
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert "A0004" not in persons(world.sandbox)


def test_one_rejected_person_is_that_employees_error_and_the_rest_sync(world):
    too_long_name = {**SATO, "first_name": "花" * 70}  # the sandbox holds names up to 64
    small_kot(world.sandbox, YAMADA, too_long_name)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.PARTIAL
    assert "0042" in persons(world.sandbox)
    [error] = run.errors.all()
    assert error.employee_code == "A0004" and error.code == "senselink_param_invalid"
    assert "A0004" in error.message


def test_an_empty_kot_answer_never_wipes_senselink(world):
    small_kot(world.sandbox, YAMADA, SATO)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    configure(world.acme, resigned_policy="delete")
    world.sandbox.kot.remove_all_employees()
    before = dict(world.sandbox.senselink.persons)
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.FAILURE
    assert run.error_type == SyncRun.ErrorType.CONFIGURATION
    assert "1件も返されませんでした" in run.message
    assert world.sandbox.senselink.persons == before


def test_the_deletion_guard_stops_before_any_delete(world):
    people = [{**SATO, "code": f"E{i:03}", "first_name": f"{i}"} for i in range(10)]
    small_kot(world.sandbox, *people)
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    for i in range(4):
        world.sandbox.kot.employee_by_code(f"E{i:03}")["resignationDate"] = "2026-10-31"
    configure(
        world.acme, resigned_policy="delete", deletion_guard_count=3, deletion_guard_percent=100
    )
    run = run_now(world.acme, SyncRun.Kind.EMPLOYEE)
    assert run.status == SyncRun.Status.FAILURE
    assert run.errors.get().code == "deletion_guard"
    assert "一括削除の上限" in run.message
    assert all(f"E{i:03}" in persons(world.sandbox) for i in range(10))
