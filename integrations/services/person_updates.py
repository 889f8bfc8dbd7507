"""Updating existing SenseLink persons, a canary at a time (docs/SYNC_ENGINE.md, "The update
canary").

SenseLink's update API is the least documented call (``api/senselink.md``): whether it merges or
replaces is unknown, and a replacing API would clear the hand-registered face photo and the
groups. So the first update that could change a field it does not send is a canary: sent alone
and read back; if anything it did not send changed, updates stop and ``update_persons`` is
switched off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

from connectors.errors import AuthenticationError, ConnectorError
from connectors.senselink import PersonData, SenseLinkClient, SlPerson, UpdateUnsupported

from .. import audit
from ..models import ConnectSetting
from .parallel import each_in_parallel
from .runs import Outcome

log = logging.getLogger(__name__)

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


def person_error(code: str, exc: ConnectorError) -> dict:
    return {
        "employee_code": code,
        "code": exc.code,
        "message": f"従業員コード:{code} {exc.message}",
    }


class Canary(Enum):
    PROVEN = "proven"  # sent, read back, nothing it did not send changed
    FAILED = "failed"  # this person's update failed (its error recorded); nothing learnt
    STOP = "stop"  # no further update in this run (the run-level error recorded)


def apply_updates(
    *,
    updates: list[PersonUpdate],
    photo_visible: bool,
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
    if not photo_visible:
        guard()  # a setting change is a write too: only while the run is ours
        _switch_updates_off(setting)
        outcome.not_updated += len(updates)
        outcome.add_error(
            code="update_unverifiable",
            message="SenseLinkの登録者一覧に顔写真の項目がないため、更新で顔写真が消えないことを"
            "確認できません。既存の人員は更新せず、設定「既存の人員を更新する」をオフに"
            "しました。サポートにお問い合わせください。",
        )
        return
    proven: set[str] = set()
    safe: list[PersonUpdate] = []
    for index, update in enumerate(updates):
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
            outcome.not_updated += len(safe) + len(updates) - index
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
            outcome.add_error(**person_error(update.data.job_number, exc))


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
            outcome.add_error(**person_error(code, exc))
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
        outcome.add_error(**person_error(code, unconfirmed))
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


def photo_keys(raw: dict[str, Any]) -> list[str]:
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
