"""What a punch POST's answer means (issue 18, item 1): posted, refused before KOT processed it
(released: it may be sent again), a definite refusal (failed), or may have landed (unknown:
settled by a KOT read made after it, never sent again blindly).

Narrow edge cases of KOT's HTTP answers, with ``responses`` (the sandbox covers the same answers
end to end in tests/test_two_writers.py and the fault matrix)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import responses

from connectors.clock import JST
from connectors.errors import ConnectorError
from connectors.kot import KotClient
from integrations.services.punches import Answer, classify

BASE = "https://kot.example.jp/v1.0"
URL = f"{BASE}/daily-workings/timerecord/k1"
DAY = date(2026, 11, 24)
TIME = datetime(2026, 11, 24, 8, 57, 3, tzinfo=JST)
GATEWAY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def client(recorder) -> KotClient:
    return KotClient(
        base_url=BASE,
        token="kot-token-0123456789",
        clock=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=JST),
        sleep=recorder.sleep,
        monotonic=recorder.monotonic,
    )


def answer_of(recorder) -> tuple[Answer, int]:
    """The answer class of one register_punch, and how many times the POST was sent."""
    try:
        client(recorder).register_punch(employee_key="k1", date=DAY, time=TIME, code=1)
    except ConnectorError as exc:
        answer = classify(exc)
    else:
        answer = classify(None)
    return answer, len(responses.calls)


def stored() -> dict:
    return {
        "date": "2026-11-24",
        "employeeKey": "k1",
        "timeRecord": {"time": "2026-11-24T08:57:03+09:00", "code": "1", "name": "出勤"},
    }


CASES = [
    # (name, [(status, json or bytes)], expected answer, POSTs sent)
    ("201 stored", [(201, stored())], Answer.POSTED, 1),
    ("201 with an odd body is still stored", [(201, b"<html>ok</html>")], Answer.POSTED, 1),
    ("502 gateway page (may come after KOT stored it)", [(502, GATEWAY)], Answer.UNKNOWN, 1),
    (
        "500/300 maintenance: any 5xx may have landed",
        [(500, {"errors": [{"code": 300, "message": "Resource Server Error."}]})],
        Answer.UNKNOWN,
        1,
    ),
    (
        "403 HTML from a proxy is not KOT's refusal",
        [(403, b"<html>Forbidden</html>")],
        Answer.UNKNOWN,
        1,
    ),
    ("302 redirect", [(302, b"")], Answer.UNKNOWN, 1),
    (
        "403/100 token refused before processing",
        [(403, {"errors": [{"code": 100, "message": "認証に失敗しました"}]})],
        Answer.RELEASED,
        1,
    ),
    (
        "400 KOT refuses this punch",
        [(400, {"errors": [{"code": 207, "message": "不正な値です"}]})],
        Answer.FAILED,
        1,
    ),
    ("429 then 201: a clean refusal is resent", [(429, b""), (201, stored())], Answer.POSTED, 2),
    (
        "303 inside errors[] then 201",
        [(400, {"errors": [{"code": "303", "message": "Too Many Requests"}]}), (201, stored())],
        Answer.POSTED,
        2,
    ),
    (
        "top-level 303 with 429 then 201",
        [(429, {"code": "303", "message": "Too Many Requests"}), (201, stored())],
        Answer.POSTED,
        2,
    ),
    (
        "200 carrying a 303 is not a clean refusal: never resent",
        [(200, {"code": "303", "message": "Too Many Requests"})],
        Answer.UNKNOWN,
        1,
    ),
    (
        "503 carrying a 303 is not a clean refusal: never resent",
        [(503, {"code": "303", "message": "Too Many Requests"})],
        Answer.UNKNOWN,
        1,
    ),
    (
        "429 then 502: the resent try may have landed",
        [(429, b""), (502, GATEWAY)],
        Answer.UNKNOWN,
        2,
    ),
]


@pytest.mark.parametrize(
    ("answers", "expected", "sent"),
    [pytest.param(a, e, n, id=name) for name, a, e, n in CASES],
)
@responses.activate
def test_a_punch_answer_is_posted_released_failed_or_unknown(recorder, answers, expected, sent):
    for status, body in answers:
        if isinstance(body, bytes):
            responses.add(responses.POST, URL, body=body, status=status)
        else:
            responses.add(responses.POST, URL, json=body, status=status)
    assert answer_of(recorder) == (expected, sent)


def test_a_write_is_never_resent_after_an_answer_that_may_have_landed(recorder):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, URL, json={"code": "303"}, status=503)
        mock.add(responses.POST, URL, json=stored(), status=201)
        with pytest.raises(ConnectorError) as info:
            client(recorder).register_punch(employee_key="k1", date=DAY, time=TIME, code=1)
        assert info.value.may_have_landed
        assert len(mock.calls) == 1


def test_a_network_failure_before_any_connection_is_released_after_sending_unknown():
    from connectors.errors import NetworkError, RequestTimeout

    never_sent = NetworkError("接続できませんでした。", service="kot")
    lost = NetworkError("接続が切れました。", service="kot", may_have_landed=True)
    timed_out = RequestTimeout("タイムアウト", service="kot", may_have_landed=True)
    assert classify(never_sent) is Answer.RELEASED
    assert classify(lost) is Answer.UNKNOWN
    assert classify(timed_out) is Answer.UNKNOWN
