"""The KOT token, the SenseLink App Secret and every `sign` value never reach a log line, an
exception text or a repr, through successful and failing calls of both real clients against the
sandbox (bad token, bad secret, 500s, timeouts, resets, malformed answers, forbidden windows)."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from datetime import date, datetime
from urllib.parse import quote

import pytest

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.kot import KotClient
from connectors.senselink import PersonData, SenseLinkClient
from tests.conftest import Recorder

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=JST)
IN_WINDOW = datetime(2026, 11, 24, 9, 15, tzinfo=JST)
BAD_TOKEN = "wrong-kot-token-7c1d9e0b5a"
BAD_SECRET = "wrong-app-secret-3b8f2a"
SIGN_IN_TEXT = re.compile(r"sign=(?!\*\*\*)[^&\s\"']+")


def exception_texts(exc: BaseException) -> list[str]:
    """str, repr, attributes and the formatted traceback of `exc` and everything chained to it."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        texts += [str(value) for value in vars(current).values()]
        current = current.__cause__ or current.__context__
    return texts


@pytest.fixture
def signs(monkeypatch) -> list[str]:
    """Every `sign` value a SenseLink client put on the wire."""
    seen: list[str] = []
    real = SenseLinkClient._prepare_params

    def spy(self, params):
        prepared = real(self, params)
        seen.append(prepared["sign"])
        return prepared

    monkeypatch.setattr(SenseLinkClient, "_prepare_params", spy)
    return seen


def test_secrets_never_appear_in_logs_errors_or_reprs(make_sandbox, caplog, signs):
    sb = make_sandbox(day=DAY, now=lambda: NOON)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    recorder = Recorder()
    common = {"sleep": recorder.sleep, "monotonic": recorder.monotonic, "backoff": 0.01}
    common["timeout"] = (2.0, 0.5)

    def kot(token: str, at: datetime = NOON) -> KotClient:
        return KotClient(base_url=sb.kot_url, token=token, clock=lambda: at, **common)

    def senselink(secret: str) -> SenseLinkClient:
        return SenseLinkClient(
            base_url=sb.senselink_url,
            app_key=sb.app_key,
            app_secret=secret,
            allow_private_hosts=True,
            **common,
        )

    good_kot, bad_kot, window_kot = kot(sb.kot_token), kot(BAD_TOKEN), kot(sb.kot_token, IN_WINDOW)
    good_sl, bad_sl = senselink(sb.app_secret), senselink(BAD_SECRET)
    key = sb.kot.employees[0]["key"]
    person = PersonData("0042", "山田　太郎", date(1990, 4, 1), None, "taro@example.jp")
    texts: list[str] = [repr(c) for c in (good_kot, bad_kot, window_kot, good_sl, bad_sl)]
    outcomes: list[str] = []

    def run(call: Callable[[], object], *faults: tuple) -> None:
        sb.faults.clear()
        for service, kind, path, extra in faults:
            sb.faults.add(service, kind, path=path, **extra)
        try:
            result = call()
            if hasattr(result, "__iter__") and not isinstance(result, (str, bytes, dict)):
                result = list(result)
            texts.append(repr(result))
            outcomes.append("ok")
        except ConnectorError as exc:
            texts.extend(exception_texts(exc))
            outcomes.append(type(exc).__name__)

    def punch() -> object:
        return good_kot.register_punch(employee_key=key, date=DAY, time=NOON, code=1)

    def punches() -> object:
        return good_kot.list_punches(start=DAY, end=DAY, employee_keys=[key])

    def records() -> object:
        return list(good_sl.iter_records(day=DAY))

    forever = {"times": None}
    held = {"times": None, "delay": 2}
    # --- KOT
    run(good_kot.check_token)
    run(good_kot.list_employees)
    run(punches)
    run(punch)
    run(bad_kot.check_token)
    run(bad_kot.list_employees)
    run(bad_kot.check_token, ("kot", "http500_html", "/tokens/", forever))
    run(good_kot.check_token, ("kot", "maintenance", "/tokens/", forever))
    run(good_kot.check_token, ("kot", "timeout", "/tokens/", held))
    run(good_kot.check_token, ("kot", "reset", "/tokens/", forever))
    run(good_kot.check_token, ("kot", "malformed_json", "/tokens/", forever))
    run(good_kot.check_token, ("kot", "wrong_type", "/tokens/", forever))
    run(good_kot.list_employees, ("kot", "throttle", "/employees", forever))
    run(punches, ("kot", "wrong_type", "timerecord", forever))
    run(punch, ("kot", "timeout_after_store", "timerecord/", held))
    run(punch, ("kot", "malformed_json", "timerecord/", forever))
    run(window_kot.list_employees)  # refused by the client
    sb.clock.set(IN_WINDOW)
    run(good_kot.list_employees)  # refused by the server
    run(window_kot.check_token)
    sb.clock.clear()
    # --- SenseLink
    run(good_sl.server_version)
    run(good_sl.list_persons)
    created = good_sl.create_person(person)
    run(lambda: good_sl.update_person(created, {"name": person.name}))
    run(records)
    run(lambda: good_sl.delete_person(created))
    run(lambda: good_sl.delete_person(created))  # unknown now: an error envelope
    run(bad_sl.server_version)
    run(bad_sl.list_persons)
    run(lambda: bad_sl.create_person(person))
    run(good_sl.server_version, ("senselink", "http500_html", "version", forever))
    run(good_sl.list_persons, ("senselink", "maintenance", "user/list", forever))
    run(good_sl.server_version, ("senselink", "timeout", "version", held))
    run(records, ("senselink", "reset", "record/list", forever))
    run(records, ("senselink", "malformed_json", "record/list", forever))
    run(records, ("senselink", "wrong_type", "record/list", forever))
    run(good_sl.server_version, ("senselink", "throttle", "version", forever))
    run(
        lambda: good_sl.create_person(person), ("senselink", "timeout_after_store", "v1/user", held)
    )
    sb.faults.clear()
    texts.append(caplog.text)
    for record in caplog.records:
        texts += [record.getMessage(), str(record.msg), repr(record.args)]

    # The scenario really exercised successes and each kind of failure.
    assert outcomes.count("ok") >= 8
    for name in (
        "AuthenticationError",
        "ServerError",
        "RequestTimeout",
        "NetworkError",
        "ResponseFormatError",
        "ThrottledError",
        "ForbiddenWindowError",
        "ApiError",
    ):
        assert name in outcomes, name
    # urllib3 logged its request lines (URL path and query) at DEBUG: the scan covers them.
    request_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/available" in line for line in request_lines)
    assert any("/api/v5/record/list?" in line for line in request_lines)
    assert len(signs) > 20

    secrets = {sb.kot_token, BAD_TOKEN, sb.app_secret, BAD_SECRET, *signs}
    secrets |= {quote(s, safe="") for s in secrets}
    joined = "\n".join(texts)
    leaked = sorted(
        f"{secret[:4]}… at {joined.index(secret)}" for secret in secrets if secret in joined
    )
    assert leaked == []  # only a prefix is shown, so a failure doesn't print the secret itself
    assert [m.start() for m in SIGN_IN_TEXT.finditer(joined)] == []
    # ...because they were redacted, not because they were missing.
    assert any("/tokens/***/available" in line for line in request_lines)
    assert any("sign=***" in line for line in request_lines)
