"""Every request the KOT client makes matches the reference's parameter and body schemas
(issue 12 item 9).

The schemas below are written by hand from the KOT reference's OpenAPI transcription
(github.com/sam8helloworld/kot-api-docs, docs/paths and docs/components; checked at commit
be2f48e): for each operation the client uses, its query parameters (name, type, enum) and its
request body (required properties, types, enums, no others). The sandbox records what reaches it
over loopback HTTP (``KotState.configure(record_requests=True)``); the test drives every client
call, and both syncs through the engine, then checks each recorded request.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from connectors.kot import KotClient
from integrations.models import ConnectSetting, SyncRun
from tests.conftest import JST
from tests.sync_world import DAY, at, only_records, run_now

pytestmark = pytest.mark.django_db

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 date-time; KOT's examples (and shared/api/kot.md) always carry +09:00.
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
EMPLOYEE_ADDITIONAL_FIELDS = (
    "lastNamePhonetics",
    "firstNamePhonetics",
    "hiredDate",
    "birthDate",
    "resignationDate",
    "emailAddresses",
    "allDayRegardingWorkInMinute",
)

# operation -> (path parameters, query parameters, request body schema or None)
# A query parameter is {"type": "string"|"boolean"|"array", "format"?, "items"? {"enum"?}}.
SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    # GetAccessTokenAvailability: docs/paths/tokens/{token}_available.yml
    ("GET", "/tokens/{token}/available"): {
        "path": {"token": {"type": "string"}},
        "query": {},
        "body": None,
    },
    # GetEmployees: docs/paths/employees/index.yml
    ("GET", "/employees"): {
        "path": {},
        "query": {
            "date": {"type": "string", "format": "date"},
            "division": {"type": "string"},
            "includeResigner": {"type": "boolean"},
            "additionalFields": {"type": "array", "items": {"enum": EMPLOYEE_ADDITIONAL_FIELDS}},
        },
        "body": None,
    },
    # GetDailyWorkingTimerecords: docs/paths/daily-workings/timerecord.yml
    ("GET", "/daily-workings/timerecord"): {
        "path": {},
        "query": {
            "employeeKeys": {"type": "array", "items": {}},
            "division": {"type": "string"},
            "ondivision": {"type": "boolean"},
            "start": {"type": "string", "format": "date"},
            "end": {"type": "string", "format": "date"},
            "additionalFields": {"type": "array", "items": {"enum": ("currentDateEmployee",)}},
        },
        "body": None,
    },
    # RegisterDailyWorkingTimerecord: docs/paths/daily-workings/timerecord_{employeeKey}.yml,
    # body docs/components/schemas/daily_working_timerecord_request.yml
    ("POST", "/daily-workings/timerecord/{key}"): {
        "path": {"key": {"type": "string"}},
        "query": {},
        "body": {
            "type": "object",
            "required": ("time", "date"),
            "properties": {
                "time": {"type": "string", "format": "date-time"},
                "code": {"type": "string", "enum": ("1", "2", "3", "4", "7", "8")},
                "divisionCode": {"type": "string"},
                "date": {"type": "string", "format": "date"},
                "latitude": {"type": "number"},
                "longitude": {"type": "number"},
            },
        },
    },
}


def problems_in_value(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    kind = schema.get("type")
    found = []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if schema.get("format") == "date" and not DATE.match(value):
            found.append(f"{where}: {value!r} is not a date")
        if schema.get("format") == "date-time" and not DATE_TIME.match(value):
            found.append(f"{where}: {value!r} is not a date-time")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{where}: {value!r} is not a number"]
    elif kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: {value!r} is not a boolean"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not one of {schema['enum']}")
    return found


def problems_in_query(name: str, raw: str, schema: dict[str, Any]) -> list[str]:
    """A query value as OpenAPI's form style sends it (explode: false: arrays comma-joined)."""
    kind = schema["type"]
    if kind == "boolean":
        return [] if raw in ("true", "false") else [f"query {name}: {raw!r} is not true/false"]
    if kind == "array":
        items = raw.split(",")
        if not raw or any(not item for item in items):
            return [f"query {name}: {raw!r} has an empty item"]
        return [
            p
            for item in items
            for p in problems_in_value(item, {"type": "string", **schema["items"]}, f"{name}[]")
        ]
    return problems_in_value(raw, schema, f"query {name}")


def problems(request: dict[str, Any]) -> list[str]:
    operation = (request["method"], request["template"])
    schema = SCHEMAS.get(operation)
    if schema is None:
        return [f"{operation} is not an operation of the reference the client should use"]
    found = []
    for name, raw in request["query"].items():
        if name not in schema["query"]:
            found.append(f"query {name}: not a parameter of {operation}")
        else:
            found += problems_in_query(name, raw, schema["query"][name])
    body_schema = schema["body"]
    body = request["body"]
    if body_schema is None:
        if body not in (None, b""):
            found.append(f"{operation} takes no body, got {body!r}")
        return found
    if not (request["content_type"] or "").startswith("application/json"):
        found.append(f"Content-Type {request['content_type']!r} is not application/json")
    if not isinstance(body, dict):
        return found + [f"body {body!r} is not an object"]
    for name in body_schema["required"]:
        if name not in body:
            found.append(f"body: required {name!r} missing")
    for name, value in body.items():
        if name not in body_schema["properties"]:
            found.append(f"body: {name!r} is not a property of the request schema")
        else:
            found += problems_in_value(value, body_schema["properties"][name], f"body.{name}")
    return found


# ------------------------------------------------------------------------- the checker itself


def test_the_checker_refuses_what_the_reference_does_not_allow():
    post = ("POST", "/daily-workings/timerecord/{key}")
    bad = {
        "method": post[0],
        "template": post[1],
        "query": {"x": "1"},
        "content_type": "application/json",
        "body": {"date": "2026/11/24", "time": "2026-11-24 08:57", "code": 1, "extra": True},
    }
    found = problems(bad)
    assert any("query x" in p for p in found)
    assert any("body.code: 1 is not a string" in p for p in found)  # the integer we used to send
    assert any("body.date" in p for p in found) and any("body.time" in p for p in found)
    assert any("'extra'" in p for p in found)
    listing = {"method": "GET", "template": "/employees", "content_type": None, "body": None}
    assert problems({**listing, "query": {"additionalFields": "hiredDate,salary"}})
    assert problems({**listing, "query": {"includeResigner": "True"}})
    assert not problems({**listing, "query": {"includeResigner": "true", "date": "2026-11-24"}})


# -------------------------------------------------------------------- every request the client makes


def test_every_request_the_kot_client_makes_matches_the_reference(world, sandbox):
    sandbox.kot.configure(record_requests=True)
    client = KotClient(
        base_url=sandbox.kot_url,
        token=sandbox.kot_token,
        clock=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=JST),
    )
    keys = [e["key"] for e in sandbox.kot.employees]

    # Every public call, with every option.
    assert client.check_token() is True
    client.list_employees()
    client.list_employees(on=date(2026, 11, 24), include_resigned=True)
    client.list_punches(start=DAY - timedelta(days=70), end=DAY, employee_keys=keys)
    for code in (1, 2, 3, 4):
        client.register_punch(employee_key=keys[0], date=DAY, time=at(8, code), code=code)

    # And both syncs through the engine (the requests the portal makes in production).
    world.acme.connect_settings.update(attendance_mode=ConnectSetting.AttendanceMode.CLOCK_IN_OUT)
    codes = [e["code"] for e in sandbox.kot.employees[1:6]]
    only_records(
        sandbox,
        DAY,
        *((c, at(8, 30 + n, 5)) for n, c in enumerate(codes)),
        *((c, at(18, n, 7)) for n, c in enumerate(codes)),
    )
    run_now(world.acme, SyncRun.Kind.EMPLOYEE)  # its KOT read is what counts here
    attendance_run = run_now(world.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert attendance_run.status == SyncRun.Status.SUCCESS, attendance_run.message

    recorded = sandbox.kot.requests
    operations = {(r["method"], r["template"]) for r in recorded}
    assert operations == set(SCHEMAS), f"not exercised: {set(SCHEMAS) - operations}"
    bad = [(r["method"], r["path"][:60], p) for r in recorded for p in problems(r)]
    assert not bad, bad[:10]
    posts = [r for r in recorded if r["method"] == "POST"]
    assert len(posts) == 4 + 10 and {r["body"]["code"] for r in posts} == {"1", "2", "3", "4"}
