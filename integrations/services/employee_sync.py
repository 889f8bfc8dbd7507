"""Employee sync, KOT → SenseLink (SPEC 4.1).

Plan first (reads only), then apply. The plan is also the preview. Only persons whose number is
a KOT employee code are ever touched, and the face photo is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from django.utils import timezone

from connectors.errors import ConnectorError, RequestTimeout
from connectors.kot import KotClient, KotEmployee
from connectors.senselink import PersonData, SenseLinkClient, SlPerson

from ..models import ConnectSetting, SyncRun
from .parallel import each_in_parallel
from .runs import Outcome

log = logging.getLogger(__name__)

FIELD_LABELS = {
    "name": "氏名",
    "birthday": "生年月日",
    "entry_time": "入社年月日",
    "mail": "メール送信先アドレス",
}


class SyncAborted(Exception):
    """The sync stopped before writing anything; message (Japanese) says why and what to do."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class PersonUpdate:
    person_id: int
    data: PersonData
    changed: tuple[str, ...]


@dataclass
class EmployeePlan:
    creates: list[PersonData] = field(default_factory=list)
    updates: list[PersonUpdate] = field(default_factory=list)
    deletes: list[SlPerson] = field(default_factory=list)
    skipped: int = 0
    kot_employees: int = 0
    senselink_persons: int = 0


def person_data(employee: KotEmployee) -> PersonData:
    """The SenseLink person an employee maps to (SPEC 4.1 field mapping)."""
    return PersonData(
        job_number=employee.code,
        name=employee.full_name,
        birthday=employee.birth_date,
        entry_time=employee.hired_date,
        mail=employee.email or None,
    )


def changed_fields(current: SlPerson, wanted: PersonData) -> tuple[str, ...]:
    def norm(value):
        return value or None

    return tuple(
        name
        for name in ("name", "birthday", "entry_time", "mail")
        if norm(getattr(current, name)) != norm(getattr(wanted, name))
    )


def is_resigned(employee: KotEmployee, today: date) -> bool:
    return employee.resignation_date is not None and employee.resignation_date < today


def plan_employee_sync(
    *, kot: KotClient, senselink: SenseLinkClient, setting: ConnectSetting, today: date
) -> EmployeePlan:
    """What the sync would create, update, delete; reads both APIs and writes nothing."""
    # The two APIs are read side by side: each still sees one request at a time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        kot_answer = pool.submit(kot.list_employees, on=today, include_resigned=True)
        persons = senselink.list_persons()
        employees = kot_answer.result()
    plan = EmployeePlan(kot_employees=len(employees), senselink_persons=len(persons))
    if not employees:
        raise SyncAborted(
            "KING OF TIMEから従業員が1件も返されませんでした。SenseLinkは変更していません。"
            "アクセストークンの権限(従業員の参照)とKING OF TIMEの従業員登録をご確認ください。",
            code="kot_empty_employee_list",
        )
    by_number: dict[str, SlPerson] = {}
    for person in persons:
        if person.job_number and person.job_number not in by_number:
            by_number[person.job_number] = person

    delete_resigned = setting.resigned_policy == ConnectSetting.ResignedPolicy.DELETE
    for employee in employees:
        current = by_number.get(employee.code)
        if is_resigned(employee, today):
            if current is not None and delete_resigned:
                plan.deletes.append(current)
            elif current is not None:
                plan.skipped += 1
            continue
        wanted = person_data(employee)
        if current is None:
            plan.creates.append(wanted)
            continue
        changed = changed_fields(current, wanted)
        if changed:
            plan.updates.append(PersonUpdate(person_id=current.id, data=wanted, changed=changed))
        else:
            plan.skipped += 1
    _guard_deletions(plan, setting)
    return plan


def _guard_deletions(plan: EmployeePlan, setting: ConnectSetting) -> None:
    deletes = len(plan.deletes)
    if not deletes:
        return
    over_count = deletes > setting.deletion_guard_count
    over_share = deletes * 100 > setting.deletion_guard_percent * max(plan.senselink_persons, 1)
    if over_count or over_share:
        raise SyncAborted(
            f"SenseLinkの登録者を{deletes}人削除する必要がありますが、一括削除の上限"
            f"({setting.deletion_guard_count}人または{setting.deletion_guard_percent}%)を超えるため、"
            "何も変更せずに停止しました。KING OF TIMEの退職者登録をご確認のうえ、"
            "問題なければ上限を引き上げて再実行してください。",
            code="deletion_guard",
        )


def _person_error(code: str, exc: ConnectorError) -> dict:
    return {
        "employee_code": code,
        "code": exc.code,
        "message": f"従業員コード:{code} {exc.message}",
    }


def apply_employee_plan(
    *,
    plan: EmployeePlan,
    senselink: SenseLinkClient,
    beat: Callable[[], None] = lambda: None,
) -> Outcome:
    """Carry out a plan; one person's failure is that employee's error and the rest go on."""
    outcome = Outcome(skipped=plan.skipped)
    outcome.achieved = plan.skipped

    writes = (
        [("create", d.job_number, partial(senselink.create_person, d)) for d in plan.creates]
        + [
            ("update", u.data.job_number, partial(senselink.update_person, u.person_id, u.data))
            for u in plan.updates
        ]
        + [
            ("delete", p.job_number or "", partial(senselink.delete_person, p.id))
            for p in plan.deletes
        ]
    )
    for (action, code, _call), exc in each_in_parallel(lambda w: w[2](), writes, beat=beat):
        if isinstance(exc, RequestTimeout) and action == "create":
            outcome.add_error(
                employee_code=code,
                code="senselink_create_unconfirmed",
                message=f"従業員コード:{code} のSenseLink登録で応答がありませんでした。"
                "登録されたかどうかは次回の社員情報連携で確認・反映されます。",
            )
        elif exc is not None:
            outcome.add_error(**_person_error(code, exc))
        else:
            outcome.achieved += 1
            if action == "create":
                outcome.created += 1
            elif action == "update":
                outcome.updated += 1
            else:
                outcome.deleted += 1
    outcome.message = (
        f"KING OF TIME {plan.kot_employees}人 / SenseLink {plan.senselink_persons}人: "
        f"登録{outcome.created} 更新{outcome.updated} 削除{outcome.deleted} "
        f"変更なし{outcome.skipped} 失敗{len(outcome.errors)}"
    )
    return outcome


def sync_employees(
    *,
    run: SyncRun,
    kot: KotClient,
    senselink: SenseLinkClient,
    setting: ConnectSetting,
    beat: Callable[[], None] = lambda: None,
) -> Outcome:
    """Execute an employee sync run's work and return its outcome (the caller records it)."""
    today = timezone.localdate()
    plan = plan_employee_sync(kot=kot, senselink=senselink, setting=setting, today=today)
    beat()
    return apply_employee_plan(plan=plan, senselink=senselink, beat=beat)
