"""Deterministic fake data: KOT employees, hand-registered SenseLink persons, recognition records.

Everything is a pure function of its arguments (a seed, a reference day, the employee list), so the
same seed always gives the same world and tests can assert exact values.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from connectors.clock import JST

DIVISIONS = [
    # KOT's default border; KotState.set_day_border gives a division another (e.g. "05:00").
    {"code": "100", "name": "本社", "dayBorderTime": "00:00"},
    {"code": "200", "name": "大阪支社", "dayBorderTime": "00:00"},
]
EMPLOYEE_TYPES = [("1", "正社員"), ("2", "契約社員"), ("3", "アルバイト")]
EMPLOYEE_GROUPS = [{"code": "01", "name": "営業部"}, {"code": "02", "name": "開発部"}]

LAST_NAMES = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
]
FIRST_NAMES = [
    ("太郎", "タロウ", "taro", "male"),
    ("花子", "ハナコ", "hanako", "female"),
    ("翔太", "ショウタ", "shota", "male"),
    ("陽菜", "ヒナ", "hina", "female"),
    ("大輔", "ダイスケ", "daisuke", "male"),
    ("美咲", "ミサキ", "misaki", "female"),
    ("健一", "ケンイチ", "kenichi", "male"),
    ("由美", "ユミ", "yumi", "female"),
    ("蓮", "レン", "ren", "male"),
    ("さくら", "サクラ", "sakura", "female"),
    ("拓也", "タクヤ", "takuya", "male"),
    ("愛", "アイ", "ai", "female"),
]

# Persons registered by hand in SenseLink whose number is no KOT code: a sync must never touch them.
HAND_REGISTERED_PERSONS: list[dict[str, Any]] = [
    {"name": "受付　ゲスト", "job_number": "GUEST-01", "remark": "受付用"},
    {"name": "清掃　スタッフ", "job_number": None, "remark": "委託業者"},
    {"name": "旧システム　管理者", "job_number": "9999", "remark": None},
]
# Employee-type records whose number matches no KOT employee.
FOREIGN_JOB_NUMBERS = [
    ("9999", "旧システム　管理者", 3),
    ("X-777", "応援　社員", 0),
    ("GUEST-01", "受付　ゲスト", 1),
]

RECORD_ID_EPOCH = date(2000, 1, 1)


def employee_key(seed: int, index: int) -> str:
    """An opaque, permanent KOT employee key."""
    return hashlib.md5(f"kot-employee:{seed}:{index}".encode()).hexdigest()  # noqa: S324 - an id, not security


def employee_code(index: int) -> str:
    """Codes mix plain numbers, leading zeros ("0042") and letters ("A0004"); never colliding."""
    if index % 7 == 4:
        return f"A{index:04d}"
    if index % 5 == 2:
        return f"0{index:03d}"
    return str(1000 + index)


def generate_employees(count: int, seed: int, today: date) -> list[dict[str, Any]]:
    """KOT employees as ``GET /employees`` returns them with every additional field (nulls omitted)."""
    rng = random.Random(f"employees:{seed}")
    indexes = list(range(1, count + 1))

    def share(fraction: float, pool: list[int]) -> set[int]:
        wanted = max(1, round(count * fraction)) if count >= 5 else 0
        return set(rng.sample(pool, min(wanted, len(pool))))

    resigned_set = share(0.05, indexes)  # resigned in the past
    leaving_set = share(0.02, [i for i in indexes if i not in resigned_set])  # resigning later
    no_birth_set = share(0.1, indexes)
    no_mail_set = share(0.1, indexes)
    two_mails_set = share(0.1, [i for i in indexes if i not in no_mail_set])
    employees = []
    for index in indexes:
        last, last_kana, last_roma = rng.choice(LAST_NAMES)
        first, first_kana, first_roma, gender = rng.choice(FIRST_NAMES)
        division = DIVISIONS[0] if rng.random() < 0.7 else DIVISIONS[1]
        type_code, type_name = (
            EMPLOYEE_TYPES[0] if rng.random() < 0.8 else rng.choice(EMPLOYEE_TYPES)
        )
        code = employee_code(index)
        hired = today - timedelta(days=rng.randint(30, 365 * 15))
        employee: dict[str, Any] = {
            "key": employee_key(seed, index),
            "code": code,
            "lastName": last,
            "firstName": first,
            "lastNamePhonetics": last_kana,
            "firstNamePhonetics": first_kana,
            "divisionCode": division["code"],
            "divisionName": division["name"],
            "gender": gender,
            "typeCode": type_code,
            "typeName": type_name,
            "employeeGroups": [rng.choice(EMPLOYEE_GROUPS)] if rng.random() < 0.6 else [],
            "hiredDate": hired.isoformat(),
        }
        birth = date(1960, 1, 1) + timedelta(days=rng.randint(0, 365 * 44))
        if index not in no_birth_set:
            employee["birthDate"] = birth.isoformat()
        if index in resigned_set:
            resigned = today - timedelta(days=rng.randint(1, 400))
            employee["resignationDate"] = max(resigned, hired).isoformat()
        elif index in leaving_set:
            employee["resignationDate"] = (today + timedelta(days=rng.randint(10, 60))).isoformat()
        mail = f"{first_roma}.{last_roma}.{code.lower()}@example.co.jp"
        if index in two_mails_set:
            employee["emailAddresses"] = [mail, f"{last_roma}{index}@mail.example.jp"]
        elif index not in no_mail_set:
            employee["emailAddresses"] = [mail]
        employees.append(employee)
    return employees


def overlong(prefix: str, length: int) -> str:
    """A string of exactly ``length`` characters starting with ``prefix`` (the overlong mode:
    KOT codes and SenseLink job numbers longer than any column or field expects)."""
    filler = "-" + "9876543210" * (length // 10 + 1)
    return (prefix + filler)[:length] if length > len(prefix) else prefix[:length]


def is_active(employee: dict[str, Any], day: date) -> bool:
    """Employed on `day`: hired on or before it and not resigned before it."""
    hired = employee.get("hiredDate")
    resigned = employee.get("resignationDate")
    if hired and hired > day.isoformat():
        return False
    return not (resigned and resigned < day.isoformat())


def initial_persons() -> list[dict[str, Any]]:
    """The hand-registered SenseLink persons (ids 1..n), snake_case as SenseLink answers."""
    return [
        make_person(
            index, name=p["name"], job_number=p["job_number"], remark=p["remark"], groups=[1]
        )
        for index, p in enumerate(HAND_REGISTERED_PERSONS, start=1)
    ]


def make_person(person_id: int, **fields: Any) -> dict[str, Any]:
    person: dict[str, Any] = {
        "id": person_id,
        "name": "",
        "type": 1,
        "job_number": None,
        "birthday": None,
        "entry_time": None,
        "mail": None,
        "mobile": None,
        "ic_number": None,
        "remark": None,
        "gender": None,
        "department_id": None,
        "groups": [],
        "avatar": None,
    }
    person.update(fields)
    return person


def _jst_seconds(day: date, seconds: int) -> int:
    return int(datetime.combine(day, time(), JST).timestamp()) + seconds


def _times_for(rng: random.Random, count: int) -> list[int]:
    """`count` seconds-of-day between 07:00 and 21:00: arrival in the morning, departure evening."""
    if count == 1:
        return [rng.randint(7 * 3600, 21 * 3600)]
    first = rng.randint(7 * 3600, 10 * 3600)
    last = rng.randint(17 * 3600, 21 * 3600)
    middle = sorted(rng.randint(10 * 3600, 17 * 3600) for _ in range(count - 2))
    return [first, *middle, last]


def _others(rng: random.Random, add: Callable[..., None]) -> None:
    """The day's records of numbers KOT does not know, visitors and strangers (drawn after the
    employees', in this order: the generated day stays the same for a seed)."""
    for job_number, name, user_id in FOREIGN_JOB_NUMBERS:
        add(
            rng.randint(7 * 3600, 21 * 3600),
            user_id=user_id or 90777,
            user_name=name,
            user_type=1,
            job_number=job_number,
            group_id=1,
            group_name="社員",
            device_name="本社入口",
            mask=1,
        )
    for n in range(rng.randint(2, 5)):
        add(
            rng.randint(9 * 3600, 18 * 3600),
            user_id=80000 + n,
            user_name=f"来訪者{n + 1}",
            user_type=2,
            job_number=None,
            group_id=2,
            group_name="来訪者",
            device_name="本社入口",
            mask=1,
        )
    for _ in range(rng.randint(2, 5)):
        add(
            rng.randint(7 * 3600, 21 * 3600),
            user_id=0,
            user_name="",
            user_type=3,
            job_number=None,
            group_id=0,
            group_name="",
            device_name="本社入口",
            mask=0,
        )


def generate_records(
    *,
    seed: int,
    day: date,
    employees: list[dict[str, Any]],
    per_employee: int | None = None,
    person_ids: dict[str, int] | None = None,
    extra_job_numbers: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The recognition records of `day`, ordered by (sign_time, id), ids unique across days.

    About 90% of the employees active that day are recognised (`per_employee` times, or 1-4),
    plus visitors, strangers and employee-type records of numbers KOT does not know.
    """
    rng = random.Random(f"records:{seed}:{day.isoformat()}")
    person_ids = person_ids or {}
    raw: list[tuple[int, dict[str, Any]]] = []

    def add(seconds: int, **fields: Any) -> None:
        raw.append((_jst_seconds(day, seconds), fields))

    for index, employee in enumerate(employees):
        if not is_active(employee, day) or rng.random() >= 0.9:
            continue
        count = per_employee if per_employee is not None else rng.choice((1, 1, 2, 2, 3, 4))
        division_name = employee.get("divisionName", "本社")
        for seconds in _times_for(rng, count):
            add(
                seconds,
                user_id=person_ids.get(employee["code"], 100000 + index),
                user_name=f"{employee['lastName']}\u3000{employee['firstName']}",
                user_type=1,
                job_number=employee["code"],
                group_id=1,
                group_name="社員",
                device_name=f"{division_name}入口",
                mask=1 if rng.random() < 0.8 else 0,
            )
    _others(rng, add)

    # Extra employee-type records of numbers KOT does not know (the "overlong" mode), drawn
    # last so the rest of the day stays as it always is.
    for job_number in extra_job_numbers:
        add(
            rng.randint(7 * 3600, 21 * 3600),
            user_id=90888,
            user_name="応援　長番号",
            user_type=1,
            job_number=job_number,
            group_id=1,
            group_name="社員",
            device_name="本社入口",
            mask=1,
        )

    raw.sort(key=lambda item: item[0])
    base_id = (day - RECORD_ID_EPOCH).days * 1_000_000
    return [
        finish_record(base_id + n, sign_time, fields, rng)
        for n, (sign_time, fields) in enumerate(raw, start=1)
    ]


def finish_record(
    record_id: int, sign_time: int, fields: dict[str, Any], rng: random.Random | None = None
) -> dict[str, Any]:
    """A complete v5 record from the essentials; the rest (scores, temperature) filled in."""
    rng = rng or random.Random(record_id)
    local = datetime.fromtimestamp(sign_time, JST)
    temperature = round(rng.uniform(35.9, 36.9), 1) if rng.random() < 0.85 else 0.0
    device = fields.get("device_name", "本社入口")
    record = {
        "id": record_id,
        "sign_time": sign_time,
        "sign_date": local.date().isoformat(),
        "sign_time_zone": "GMT+09:00",
        "user_id": 0,
        "user_name": "",
        "user_type": 1,
        "job_number": None,
        "group_id": 0,
        "group_name": "",
        "device_name": device,
        "device_ldid": "SPS-" + hashlib.md5(device.encode()).hexdigest()[:10].upper(),  # noqa: S324
        "verify_score": round(rng.uniform(0.82, 0.99), 3) if fields.get("user_type") != 3 else 0.0,
        "body_temperature": temperature,
        "mask": 1,
        "abnormal_type": 0,
        "sign_avatar": f"{record_id:x}.jpg",
        "bg_avatar": f"bg-{record_id:x}.jpg",
    }
    record.update(fields)
    if record["mask"] == 0 and record["user_type"] == 1 and rng.random() < 0.3:
        record["abnormal_type"] = 50001
    return record
