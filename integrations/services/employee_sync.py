"""Employee sync, KOT → SenseLink (SPEC 4.1).

Plan first (reads only), then apply. The plan is also the preview. Only persons whose number is
a KOT employee code are ever touched, the face photo is never sent, and ``groups`` is sent on
create only. Nothing the manual forbids is sent: an e-mail SenseLink cannot hold is left out
(with one warning, when the person is created), "" is never sent for a date or the e-mail.

Updates are the least documented call (no public source says whether they merge or replace):
they are off unless support turns them on, and when on, an update is sent alone and read back
(a canary) until every kind of field a later update could lose has been seen to survive one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from functools import partial
from typing import Any

from django.utils import timezone

from connectors.errors import AuthenticationError, ConnectorError, RequestTimeout
from connectors.kot import KotClient, KotEmployee
from connectors.senselink import (
    JOB_NUMBER_MAX_LENGTH,
    MAIL_MAX_LENGTH,
    PersonData,
    SenseLinkClient,
    SlPerson,
    UpdateUnsupported,
)

from .. import audit
from ..fields import fit
from ..models import ConnectSetting, SyncRun
from ..validators import parse_person_group_ids
from .parallel import each_in_parallel
from .runs import Outcome, SyncAborted

log = logging.getLogger(__name__)

FIELD_LABELS = {
    "name": "氏名",
    "birthday": "生年月日",
    "entry_time": "入社年月日",
    "mail": "メール送信先アドレス",
}
# Mapped field -> SenseLink form field of an update.
FORM_NAMES = {"name": "name", "birthday": "birthday", "entry_time": "entryTime", "mail": "mail"}
# Mapped field -> its spellings in a person list entry (compared without case, "_" or "-").
LISTING_NAMES = {
    "name": ("name",),
    "birthday": ("birthday",),
    "entry_time": ("entrytime",),
    "mail": ("mail", "email"),
}
# Keys of a person list entry that change by themselves (timestamps, the last recognition) or
# are the id: never witnesses of what an update did.
VOLATILE_KEYS = frozenset(
    {
        "id",
        "updateat",
        "updatedat",
        "updatetime",
        "modifytime",
        "modifiedtime",
        "lastmodified",
        "version",
        "signtime",
        "lastsigntime",
        "lastsignat",
        "lastrecognitiontime",
    }
)
PHOTO_HINTS = ("avatar", "photo", "picture", "image")
WITNESS_LABELS = {
    "avatar": "顔写真",
    "groups": "人員グループ",
    "jobnumber": "従業員番号",
    "name": "氏名",
    "birthday": "生年月日",
    "entrytime": "入社年月日",
    "mail": "メールアドレス",
    "remark": "特記事項",
    "mobile": "携帯電話番号",
    "icnumber": "ICカード番号",
    "gender": "性別",
    "departmentid": "部署",
}


@dataclass(frozen=True)
class PersonUpdate:
    person: SlPerson  # as the person list showed it before the update
    data: PersonData
    changed: tuple[str, ...]

    @property
    def person_id(self) -> int:
        return self.person.id

    def form(self) -> dict[str, str]:
        """Only the changed fields, as SenseLink's form fields (never "": see changed_fields)."""
        values = {
            "name": self.data.name,
            "birthday": self.data.birthday.isoformat() if self.data.birthday else "",
            "entry_time": self.data.entry_time.isoformat() if self.data.entry_time else "",
            "mail": self.data.mail or "",
        }
        return {FORM_NAMES[name]: values[name] for name in self.changed}


@dataclass(frozen=True)
class Problem:
    """An employee the sync cannot carry to SenseLink at all (reported every run)."""

    employee_code: str
    code: str
    message: str


@dataclass
class EmployeePlan:
    creates: list[PersonData] = field(default_factory=list)
    updates: list[PersonUpdate] = field(default_factory=list)  # to write (updates on)
    outdated: list[PersonUpdate] = field(default_factory=list)  # differing, left (updates off)
    deletes: list[SlPerson] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    mail_dropped: dict[str, int] = field(default_factory=dict)  # code -> the e-mail's length
    skipped: int = 0
    kot_employees: int = 0
    senselink_persons: int = 0
    groups: tuple[int, ...] = ()
    photo_visible: bool = True  # the person list shows a photo field at all


def mail_fits(mail: str | None) -> bool:
    return not mail or len(mail) <= MAIL_MAX_LENGTH


def person_data(employee: KotEmployee) -> PersonData:
    """The SenseLink person an employee maps to (SPEC 4.1 field mapping); an e-mail longer than
    SenseLink holds (45) is left out."""
    return PersonData(
        job_number=employee.code,
        name=employee.full_name,
        birthday=employee.birth_date,
        entry_time=employee.hired_date,
        mail=employee.email if employee.email and mail_fits(employee.email) else None,
    )


def changed_fields(current: SlPerson, wanted: PersonData) -> tuple[str, ...]:
    """The mapped fields to send. A field KOT leaves empty is never a change: SenseLink takes ""
    for none of them (manual 2.4.1), so a value it holds cannot be cleared by this sync. An
    e-mail listed without an "@" is unreadable (some servers list contacts AES-encrypted): it
    cannot be compared, so it is not a change either (never an update on every run)."""

    def norm(value):
        return value or None

    readable = {"mail": not current.mail or "@" in current.mail}
    return tuple(
        name
        for name in ("name", "birthday", "entry_time", "mail")
        if norm(getattr(wanted, name)) is not None
        and readable.get(name, True)
        and norm(getattr(current, name)) != norm(getattr(wanted, name))
    )


def is_resigned(employee: KotEmployee, today: date) -> bool:
    return employee.resignation_date is not None and employee.resignation_date < today


def person_groups(setting: ConnectSetting) -> tuple[int, ...]:
    try:
        return tuple(parse_person_group_ids(setting.person_group_ids))
    except ValueError:
        raise SyncAborted(
            "登録先の人員グループIDが正しくありません。連携設定で数字のIDをカンマ区切りで"
            "入力してください。SenseLinkは変更していません。",
            code="bad_person_group_ids",
        ) from None


def plan_employee_sync(
    *,
    kot: KotClient,
    senselink: SenseLinkClient,
    setting: ConnectSetting,
    today: date,
    allow_mass_create: bool = False,
    guards: bool = True,
) -> EmployeePlan:
    """What the sync would create, update, delete; reads both APIs and writes nothing.

    Raises SyncAborted when a guard stops the run (``guards=False``: the preview checks them
    itself with ``check_guards`` and still shows the plan).
    """
    groups = person_groups(setting)
    # The two APIs are read side by side: each still sees one request at a time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        kot_answer = pool.submit(kot.list_employees, on=today, include_resigned=True)
        persons = senselink.list_persons()
        employees = kot_answer.result()
    plan = EmployeePlan(kot_employees=len(employees), senselink_persons=len(persons), groups=groups)
    if not employees:
        raise SyncAborted(
            "KING OF TIMEから従業員が1件も返されませんでした。SenseLinkは変更していません。"
            "アクセストークンの権限(従業員の参照)とKING OF TIMEの従業員登録をご確認ください。",
            code="kot_empty_employee_list",
        )
    if persons and not any(p.has_job_number_field for p in persons):
        raise SyncAborted(
            f"SenseLinkの登録者一覧({len(persons)}人)に従業員番号の項目がありません。"
            "このままでは誰とも照合できず、全員を二重に登録してしまうため、何も変更せずに"
            "停止しました。Appキーで登録者の参照が許可されているか、SenseLinkの登録者に"
            "従業員番号が登録されているかをご確認のうえ、サポートにお問い合わせください。",
            code="senselink_no_job_numbers",
        )
    plan.photo_visible = any(_photo_keys(p.raw) for p in persons)
    # A person whose job number was refused (SlPerson.problem) has none here: like a person
    # that is not a KOT employee, it is never matched, so never updated, deleted or replaced.
    by_number: dict[str, SlPerson] = {}
    for person in persons:
        if person.job_number and person.job_number not in by_number:
            by_number[person.job_number] = person

    delete_resigned = setting.resigned_policy == ConnectSetting.ResignedPolicy.DELETE
    refused: set[str] = set()
    for employee in employees:
        if employee.problem:
            # KOT's code (or key) was refused: never created, matched or deleted; one line per
            # code, and none for a resigned employee (nothing to carry to SenseLink).
            shown = fit(employee.problem, 64)
            if not is_resigned(employee, today) and shown not in refused:
                refused.add(shown)
                plan.problems.append(_invalid_code(shown))
            continue
        current = by_number.get(employee.code)
        if is_resigned(employee, today):
            if current is not None and delete_resigned:
                plan.deletes.append(current)
            elif current is not None:
                plan.skipped += 1
            continue
        wanted = person_data(employee)
        if current is None:
            problem = _cannot_create(employee)
            if problem is not None:
                plan.problems.append(problem)
                continue
            plan.creates.append(wanted)
            if not mail_fits(employee.email):
                plan.mail_dropped[employee.code] = len(employee.email or "")
            continue
        changed = changed_fields(current, wanted)
        if not changed:
            plan.skipped += 1
            continue
        update = PersonUpdate(person=current, data=wanted, changed=changed)
        (plan.updates if setting.update_persons else plan.outdated).append(update)
    if guards:
        check_guards(plan, setting, allow_mass_create=allow_mass_create)
    return plan


def check_guards(plan: EmployeePlan, setting: ConnectSetting, *, allow_mass_create: bool) -> None:
    """The creation and deletion guards: SyncAborted when the plan must not be carried out."""
    if not allow_mass_create:
        _guard_creations(plan, setting)
    _guard_deletions(plan, setting)


def _invalid_code(shown: str) -> Problem:
    return Problem(
        employee_code=shown,
        code="invalid_employee_code",
        message=f"従業員コード:{shown} のKING OF TIMEの従業員コード(または従業員キー)に使用できない"
        "文字(制御文字)が含まれているため、SenseLinkに登録・更新・削除できません。"
        "KING OF TIMEの従業員コードをご確認ください。",
    )


def _cannot_create(employee: KotEmployee) -> Problem | None:
    code = employee.code
    if len(code) > JOB_NUMBER_MAX_LENGTH:
        return Problem(
            employee_code=code,
            code="job_number_too_long",
            message=f"従業員コード:{fit(code, 64)} は{len(code)}文字で、SenseLinkの従業員番号に登録できる"
            f"{JOB_NUMBER_MAX_LENGTH}文字を超えるため登録できません。KING OF TIMEの従業員コードを"
            "ご確認ください。",
        )
    if not employee.full_name.strip():
        return Problem(
            employee_code=code,
            code="name_missing",
            message=f"従業員コード:{code} はKING OF TIMEに氏名がないため、SenseLinkに登録できません"
            "(氏名は必須です)。KING OF TIMEの従業員情報をご確認ください。",
        )
    return None


def _guard_creations(plan: EmployeePlan, setting: ConnectSetting) -> None:
    """Stop before writing when SenseLink already holds persons and this run would create more
    than both the count and the share allow: unmatched numbers ("42" vs "0042") would otherwise
    register the whole company a second time."""
    creates, held = len(plan.creates), plan.senselink_persons
    if not creates or not held:
        return
    over_count = creates > setting.creation_guard_count
    over_share = creates * 100 > setting.creation_guard_percent * held
    if over_count and over_share:
        raise SyncAborted(
            f"SenseLinkには既に{held}人が登録されていますが、今回{creates}人を新しく登録する"
            f"必要があり、一括登録の上限({setting.creation_guard_count}人かつ"
            f"{setting.creation_guard_percent}%)を超えるため、何も変更せずに停止しました。"
            "SenseLinkの従業員番号とKING OF TIMEの従業員コードが一致しているか(先頭の0など)を"
            "ご確認ください。問題がなければ、一括登録の上限を引き上げるか、サポートに"
            "「この実行のみ上限を超えて登録」を依頼してください。",
            code="creation_guard",
        )


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


def mail_too_long_message(code: str, length: int) -> str:
    return (
        f"従業員コード:{code} のメールアドレスは{length}文字で、SenseLinkに登録できる"
        f"{MAIL_MAX_LENGTH}文字を超えるため、メールアドレスなしで登録しました。顔認証と打刻には"
        "影響ありません。必要な場合はSenseLinkで登録できる長さのアドレスを登録してください。"
    )


def apply_employee_plan(
    *,
    plan: EmployeePlan,
    senselink: SenseLinkClient,
    setting: ConnectSetting | None = None,
    beat: Callable[[], None] = lambda: None,
    guard: Callable[[], None] = lambda: None,
) -> Outcome:
    """Carry out a plan; one person's failure is that employee's error and the rest go on.

    ``guard`` (the run's lease) comes right before each create, update and delete, in the
    thread that sends it: a worker that lost its run, or is stopping, writes nothing more.
    """
    outcome = Outcome(skipped=plan.skipped, not_updated=len(plan.outdated))
    outcome.achieved = plan.skipped
    for problem in plan.problems:
        outcome.add_error(
            employee_code=problem.employee_code, code=problem.code, message=problem.message
        )

    writes = [
        ("create", d.job_number, partial(senselink.create_person, d, groups=plan.groups))
        for d in plan.creates
    ] + [
        ("delete", p.job_number or "", partial(senselink.delete_person, p.id)) for p in plan.deletes
    ]

    def write(w) -> object:
        guard()
        return w[2]()

    for (action, code, _call), exc in each_in_parallel(write, writes, beat=beat):
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
                if code in plan.mail_dropped:
                    outcome.add_warning(
                        employee_code=code,
                        code="mail_too_long",
                        message=mail_too_long_message(code, plan.mail_dropped[code]),
                    )
            else:
                outcome.deleted += 1
    if plan.updates:
        _apply_updates(
            plan=plan, senselink=senselink, setting=setting, outcome=outcome, beat=beat, guard=guard
        )
    outcome.message = (
        f"KING OF TIME {plan.kot_employees}人 / SenseLink {plan.senselink_persons}人: "
        f"登録{outcome.created} 更新{outcome.updated} 削除{outcome.deleted} "
        f"変更なし{outcome.skipped} 失敗{len(outcome.failures)}"
        + (f" 未更新(差分あり){outcome.not_updated}" if outcome.not_updated else "")
        + (f" 警告{len(outcome.warnings)}" if outcome.warnings else "")
    )
    return outcome


# ----------------------------------------------------------------------- updates and canaries


class Canary(Enum):
    PROVEN = "proven"  # sent, read back, nothing it did not send changed
    FAILED = "failed"  # this person's update failed (its error recorded); nothing learnt
    STOP = "stop"  # no further update in this run (the run-level error recorded)


def _apply_updates(
    *,
    plan: EmployeePlan,
    senselink: SenseLinkClient,
    setting: ConnectSetting | None,
    outcome: Outcome,
    beat: Callable[[], None],
    guard: Callable[[], None] = lambda: None,
) -> None:
    """Send the plan's updates, a canary at a time until they are known to be safe.

    A person's witnesses are the fields of its list entry that hold a value and that its update
    does not send (the photo, the groups, the other data fields). An update whose witnesses
    include one no earlier canary has seen survive is a canary: sent alone and read back. If a
    witness changed, the API replaces rather than merges: updating stops, ``update_persons`` is
    switched off and the run says whose photo to check; so at most one person is ever touched
    by a replacing API. The updates left, all proven safe, go out in parallel.
    """
    if not plan.photo_visible:
        guard()  # a setting change is a write too: only while the run is ours
        _switch_updates_off(setting)
        outcome.not_updated += len(plan.updates)
        outcome.add_error(
            code="update_unverifiable",
            message="SenseLinkの登録者一覧に顔写真の項目がないため、更新で顔写真が消えないことを"
            "確認できません。既存の人員は更新せず、設定「既存の人員を更新する」をオフに"
            "しました。サポートにお問い合わせください。",
        )
        return
    proven: set[str] = set()
    safe: list[PersonUpdate] = []
    for index, update in enumerate(plan.updates):
        witnesses = _witnesses(update)
        if witnesses <= proven:
            safe.append(update)
            continue
        beat()
        verdict = _canary(
            update, witnesses, senselink=senselink, setting=setting, outcome=outcome, guard=guard
        )
        if verdict is Canary.PROVEN:
            proven |= witnesses
        elif verdict is Canary.STOP:
            outcome.not_updated += len(safe) + len(plan.updates) - index
            return
    send = partial(_send_update, senselink, guard=guard)
    for update, exc in each_in_parallel(send, safe, beat=beat):
        if exc is None:
            outcome.updated += 1
            outcome.achieved += 1
        elif isinstance(exc, UpdateUnsupported):
            outcome.add_error(code=exc.code, message=exc.message)
            outcome.not_updated += len(safe) - safe.index(update)
            break
        else:
            outcome.add_error(**_person_error(update.data.job_number, exc))


def _send_update(
    senselink: SenseLinkClient, update: PersonUpdate, *, guard: Callable[[], None]
) -> None:
    guard()
    senselink.update_person(update.person_id, update.form())


def _canary(
    update: PersonUpdate,
    witnesses: set[str],
    *,
    senselink: SenseLinkClient,
    setting: ConnectSetting | None,
    outcome: Outcome,
    guard: Callable[[], None],
) -> Canary:
    code = update.data.job_number
    unconfirmed = None
    try:
        _send_update(senselink, update, guard=guard)
    except UpdateUnsupported as exc:
        outcome.add_error(code=exc.code, message=exc.message)
        return Canary.STOP
    except AuthenticationError:
        raise
    except ConnectorError as exc:
        if not exc.may_have_landed:
            outcome.add_error(**_person_error(code, exc))
            return Canary.FAILED
        unconfirmed = exc  # it may have landed: what it did is read back below
    try:
        after = senselink.find_person(update.person_id, hint_page=update.person.page)
    except AuthenticationError:
        raise
    except ConnectorError as exc:
        after, reason = None, exc.message
    else:
        reason = "人員が一覧に見つかりませんでした。"
    if after is None:
        outcome.add_error(
            code="update_unverified",
            message=f"従業員コード:{code} の更新後に登録内容を読み直せなかったため、以降の"
            f"既存人員の更新を中止しました({reason})次回の社員情報連携で改めて確認します。",
        )
        return Canary.STOP
    changed = sorted(
        k for k in witnesses if _norm(k, update.person.raw.get(k)) != _norm(k, after.raw.get(k))
    )
    if changed:
        guard()
        _switch_updates_off(setting)
        labels = "、".join(dict.fromkeys(WITNESS_LABELS.get(_squash(k), k) for k in changed))
        who = f"従業員コード:{code}({update.person.name or update.data.name})"
        log.warning(
            "update of SenseLink person %s changed fields it did not send: %s",
            update.person_id,
            changed,
        )
        outcome.add_error(
            code="update_replaced_fields",
            message=f"{who}を更新したところ、送信していない項目({labels})がSenseLink側で"
            "変わりました。SenseLinkの更新APIが登録内容を置き換えているため、既存人員の更新を"
            "中止し、設定「既存の人員を更新する」をオフにしました。SenseLinkで"
            f"従業員コード:{code} の顔写真・人員グループ・従業員番号を確認し、必要であれば"
            "登録し直してください。",
        )
        return Canary.STOP
    if unconfirmed is not None:
        outcome.add_error(**_person_error(code, unconfirmed))
        return Canary.FAILED
    outcome.updated += 1
    outcome.achieved += 1
    return Canary.PROVEN


def _switch_updates_off(setting: ConnectSetting | None) -> None:
    """Conditional update of the setting row: only this one field, only if it is still on."""
    if setting is None or setting.pk is None:
        return
    switched = ConnectSetting.objects.filter(pk=setting.pk, update_persons=True).update(
        update_persons=False
    )
    if switched:
        log.warning("update_persons switched off for connect setting %s", setting.pk)
        audit.record_update(setting, {"update_persons": (True, False)})


def _witnesses(update: PersonUpdate) -> set[str]:
    """Keys of the person's list entry that hold a value and that the update does not send."""
    sent = {spelling for name in update.changed for spelling in LISTING_NAMES[name]}
    return {
        key
        for key, value in update.person.raw.items()
        if _present(value)
        and _squash(key) not in VOLATILE_KEYS
        and not any(_squash(key).startswith(spelling) for spelling in sent)
    }


def _photo_keys(raw: dict[str, Any]) -> list[str]:
    return [key for key in raw if _is_photo(key)]


def _is_photo(key: str) -> bool:
    squashed = _squash(key)
    return any(hint in squashed for hint in PHOTO_HINTS)


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _norm(key: str, value: Any) -> Any:
    """A comparable form of a list-entry value: a photo by presence only (its URL may be signed
    afresh on every read), lists without order, numbers and strings alike."""
    if _is_photo(key):
        return _present(value)
    if not _present(value):
        return None
    if isinstance(value, list):
        return sorted(json.dumps(_element(v), sort_keys=True, default=str) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value).strip()


def _element(value: Any) -> Any:
    if isinstance(value, dict) and "id" in value:
        return str(value["id"])
    return value if isinstance(value, (dict, list)) else str(value)


def _squash(key: Any) -> str:
    return str(key).replace("_", "").replace("-", "").lower()


def sync_employees(
    *,
    run: SyncRun,
    kot: KotClient,
    senselink: SenseLinkClient,
    setting: ConnectSetting,
    beat: Callable[[], None] = lambda: None,
    guard: Callable[[], None] = lambda: None,
) -> Outcome:
    """Execute an employee sync run's work and return its outcome (the caller records it)."""
    today = timezone.localdate()
    plan = plan_employee_sync(
        kot=kot,
        senselink=senselink,
        setting=setting,
        today=today,
        allow_mass_create=run.allow_mass_create,
    )
    beat()
    return apply_employee_plan(
        plan=plan, senselink=senselink, setting=setting, beat=beat, guard=guard
    )
