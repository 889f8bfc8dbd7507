"""The push rows of the fault matrix (issue 15): SenseLink's event subscription against the
portal's receiver over loopback HTTP (a live server), each fault its own cell. In every cell
each recognition ends as exactly one KOT clock-in — pushed, or by the interval poll when pushes
stop — and the tenant is told when the subscription has stopped. The section "push-matrix" of
docs/RELIABILITY.md is written (for `make reports`) when every cell ran in the session."""

from __future__ import annotations

import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import requests
import time_machine
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from integrations.models import ConnectSetting, PushMessage, PushReceiver, TermsConsent
from integrations.queue import REALTIME_POLL, SEND_PUSH_STOPPED_MAIL, WORKERS
from integrations.services import push
from integrations.services.realtime import poll
from tests.conftest import JST, PASSWORD, make_tenant_user
from tests.fault_matrix_report import read_section, write_section
from tests.queue_helpers import orm_broker_only, queued, work
from tests.sync_world import small_kot
from tests.world import make_acme

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]

START = datetime(2026, 11, 25, 7, 50, tzinfo=JST)  # before KOT's 08:30 window
IN_WINDOW = datetime(2026, 11, 25, 8, 45, tzinfo=JST)
CODES = ("0101", "0102", "0103")
KOT_READS = ("GET /employees", "GET /daily-workings/timerecord")


@dataclass
class Row:
    id: str
    fault: str
    expected: str
    outcome: str = "-"
    clock_ins: str = "-"
    told: str = "-"
    seconds: str = "-"
    passed: bool = False


@dataclass
class Report:
    rows: dict[str, Row] = field(default_factory=dict)


REPORT = Report()


class World:
    """acme: real-time on (5 minutes), its sandbox SenseLink subscribed to its push URL; KOT knows
    0101–0103; the day's records start empty; one interval poll already ran (keys cached)."""

    def __init__(self, sandbox, live_server, traveller, settings) -> None:
        self.sandbox, self.traveller = sandbox, traveller
        small_kot(sandbox, *({"code": c, "last_name": "社員", "first_name": c} for c in CODES))
        sandbox.senselink.set_records(START.date(), [])
        settings.KOT_API_BASE_URL = sandbox.kot_url
        settings.PORTAL_BASE_URL = live_server.url
        settings.PUSH_STOPPED_GRACE_SECONDS = 120
        tenant = make_acme(sandbox=sandbox, realtime_clock_in=True)
        self.setting = ConnectSetting.objects.get(tenant=tenant)
        user = make_tenant_user(tenant, "acme-hr")
        TermsConsent.objects.create(user=user, tenant=tenant, version=settings.TERMS_VERSION)
        # The live server's first request loads the URLconf and opens its database connection:
        # on a loaded machine that alone can pass the subscription's 2 s timeout below.
        requests.get(f"{live_server.url}/healthz", timeout=30)
        self.subscription = sandbox.senselink.subscription
        self.subscription.timeout, self.subscription.retry_delay = 2.0, 0.05
        self.subscription.register(self.url)
        assert poll(setting_id=self.setting.pk).status not in ("failed", "off")

    @property
    def url(self) -> str:
        return push.push_url(self.setting)

    def recognise(self, code: str) -> float:
        self.sandbox.senselink.add_record(when=timezone.now(), job_number=code)
        return time.monotonic()

    def delivered(self) -> None:
        assert self.subscription.wait_idle(20)

    def work_woken_polls(self) -> int:
        return len(work(WORKERS, REALTIME_POLL))

    def interval_poll(self) -> None:
        self.traveller.shift(timedelta(minutes=5))
        assert poll(setting_id=self.setting.pk).status != "failed"

    def clock_ins(self, code: str) -> int:
        key = next(e["key"] for e in self.sandbox.kot.employees if e["code"] == code)
        return sum(
            1 for p in self.sandbox.kot.punches if p["employeeKey"] == key and p["code"] == "1"
        )

    def each_once(self, codes) -> str:
        counts = {c: self.clock_ins(c) for c in codes}
        assert all(n == 1 for n in counts.values()), counts
        return f"{len(counts)} of {len(counts)} once"

    def told(self) -> str:
        client = Client()
        assert client.login(username="acme-hr", password=PASSWORD)
        banner = "停止しています" in client.get("/").content.decode()
        mails = len(queued(WORKERS, SEND_PUSH_STOPPED_MAIL))
        return f"banner {'yes' if banner else 'no'}, mail tasks {mails}"

    def stop_after_grace(self) -> None:
        self.traveller.shift(timedelta(minutes=3))
        assert poll(setting_id=self.setting.pk).status != "failed"
        assert PushReceiver.objects.get(setting=self.setting).stopped_at is not None


def silent_port() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers (a hung receiver)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the cells ----------------------------------------------------------------------------------


def pushed(w: World, row: Row) -> None:
    seconds = []
    for code in CODES:
        started = w.recognise(code)
        w.delivered()
        assert w.work_woken_polls() == 1
        assert w.clock_ins(code) == 1
        seconds.append(time.monotonic() - started)
    row.outcome = f"{len(w.subscription.delivered)} pushes answered 200, each woke one poll"
    row.clock_ins = w.each_once(CODES)
    row.seconds = f"max {max(seconds):.2f}"
    assert max(seconds) < 10


def duplicate(w: World, row: Row) -> None:
    w.recognise(CODES[0])
    w.delivered()
    message = w.subscription.delivered[-1]
    # SenseLink sends it again (our 200 was lost on the way back).
    again = requests.post(w.url, json=message, timeout=5)
    assert again.status_code == 200
    assert w.work_woken_polls() == 1
    assert PushMessage.objects.filter(message_id=message["messageId"]).count() == 1
    row.outcome = "the repeat answered 200, stored once, woke nothing"
    row.clock_ins = w.each_once(CODES[:1])


def pushes_stop(arm: Callable[[World], object], what: str) -> Callable[[World, Row], None]:
    def cell(w: World, row: Row) -> None:
        w.recognise(CODES[0])  # pushed: the setting is known to receive pushes
        w.delivered()
        w.work_woken_polls()
        w.traveller.shift(timedelta(minutes=2))
        held = arm(w)
        w.recognise(CODES[1])
        w.delivered()
        assert w.subscription.status == "異常"
        w.subscription.url = w.url  # the portal answers again; SenseLink sends nothing more
        w.recognise(CODES[2])
        w.delivered()
        assert w.work_woken_polls() == 0 and len(w.subscription.dropped) == 1
        w.interval_poll()
        row.clock_ins = w.each_once(CODES)
        w.stop_after_grace()
        row.outcome = (
            f"{what}: {len(w.subscription.attempts) - 1} tries of the failed push, then 異常; "
            "the next push dropped; the interval poll posted both"
        )
        row.told = w.told()
        assert row.told == "banner yes, mail tasks 1"
        if held is not None:
            held.close()

    return cell


def refused(w: World) -> None:
    w.subscription.url = f"http://127.0.0.1:{closed_port()}/hooks/senselink/down/"


def hung(w: World) -> socket.socket:
    listener, port = silent_port()
    w.subscription.timeout = 0.5  # the manual's 5 s, scaled down for the test
    w.subscription.url = f"http://127.0.0.1:{port}/hooks/senselink/hung/"
    return listener


def storing_fails(w: World, row: Row) -> None:
    original = push.receive_push

    def locked(**kwargs):
        raise OperationalError("database is locked")

    push.receive_push = locked
    try:
        w.recognise(CODES[0])
        w.delivered()
    finally:
        push.receive_push = original
    assert w.subscription.status == "正常" and w.work_woken_polls() == 0
    w.interval_poll()
    row.outcome = "the receiver answered 200 (not 500, which would stop every push); 正常"
    row.clock_ins = w.each_once(CODES[:1])


def forged(w: World, row: Row) -> None:
    bad = requests.post(
        f"{w.url.rsplit('/', 2)[0]}/{'A' * 43}/",
        json={"eventType": "30000", "messageId": "x", "data": {}},
        timeout=5,
    )
    assert bad.status_code == 404 and w.work_woken_polls() == 0
    # A body too large to read may be a recognition: 200 (a 413 would stop every later push),
    # counted, and the poll woken, which finds nothing new.
    huge = requests.post(w.url, data=b"{" + b" " * (push.BODY_LIMIT + 1) + b"}", timeout=5)
    assert huge.status_code == 200
    assert PushMessage.objects.count() == 0 and w.work_woken_polls() == 1
    assert PushReceiver.objects.get(setting=w.setting).unusable_count == 1
    assert sum(w.clock_ins(c) for c in CODES) == 0
    row.outcome = "unknown token 404; 65 KiB body 200, counted, one poll (nothing new)"
    row.clock_ins = "none (no recognition)"


def sender_shape(w: World, row: Row) -> None:
    w.subscription.shape = "sender"
    pushed(w, row)
    row.outcome = row.outcome.replace("pushes", "pushes in the sender's shape")


def in_window(w: World, row: Row) -> None:
    w.traveller.move_to(IN_WINDOW)
    w.sandbox.reset_counts()
    started = w.recognise(CODES[0])
    w.delivered()
    assert w.work_woken_polls() == 1
    seconds = time.monotonic() - started
    reads = sum(n for k, n in w.sandbox.request_counts().items() if k in KOT_READS)
    assert reads == 0
    row.outcome = "woken poll posted the clock-in inside the window; 0 KOT reads"
    row.clock_ins = w.each_once(CODES[:1])
    row.seconds = f"{seconds:.2f}"


def restored(w: World, row: Row) -> None:
    pushes_stop(refused, "refused")(w, Row("-", "-", "-"))
    w.subscription.register(w.url)  # JCV restores it (updateSub)
    w.traveller.shift(timedelta(minutes=1))
    code = CODES[0]
    before = len(w.sandbox.kot.punches)
    w.sandbox.senselink.add_record(when=timezone.now(), job_number=code)  # a second recognition
    w.delivered()
    assert PushReceiver.objects.get(setting=w.setting).stopped_at is None
    w.work_woken_polls()
    assert len(w.sandbox.kot.punches) == before  # the day's clock-in is already there
    row.outcome = "updateSub: pushes resume, the stopped mark and banner clear"
    row.clock_ins = w.each_once(CODES)
    row.told = w.told().replace("mail tasks 1", "mail tasks 1 (earlier)")
    assert row.told.startswith("banner no"), row.told


CELLS: list[tuple[str, str, str, Callable[[World, Row], None]]] = [
    ("pushed", "none: each recognition pushed", "clock-in within seconds, once", pushed),
    (
        "sender-shape",
        "pushes as real senders send them (numbers, a UUID)",
        "clock-in within seconds, once",
        sender_shape,
    ),
    ("duplicate", "the same messageId pushed twice", "one wake, one clock-in", duplicate),
    (
        "refused",
        "receiver unreachable (connection refused) for one push",
        "異常, later pushes stop; polls post all; tenant told",
        pushes_stop(refused, "refused"),
    ),
    (
        "hung",
        "no answer within the timeout",
        "異常, later pushes stop; polls post all; tenant told",
        pushes_stop(hung, "no answer"),
    ),
    (
        "storing-fails",
        "the receiver's database write fails",
        "200 anyway (subscription stays 正常); the poll posts",
        storing_fails,
    ),
    (
        "forged",
        "unknown token; 65 KiB body",
        "404; 200 and counted (never 413), nothing stored",
        forged,
    ),
    ("window", "a push at 08:45 (KOT's window)", "clock-in with no KOT read", in_window),
    (
        "restored",
        "subscription restored after a stop",
        "pushes resume, banner clears, no duplicate",
        restored,
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    if set(REPORT.rows) == {cell[0] for cell in CELLS}:
        write_section("push-matrix", render())


@pytest.mark.parametrize("cell", CELLS, ids=[cell[0] for cell in CELLS])
def test_push_cell(cell, live_server, make_sandbox, settings):
    orm_broker_only()
    cell_id, fault, expected, check = cell
    row = Row(cell_id, fault, expected)
    REPORT.rows[cell_id] = row
    with time_machine.travel(START, tick=True) as traveller:
        sandbox = make_sandbox(employees=1, seed=11)
        world = World(sandbox, live_server, traveller, settings)
        check(world, row)
    row.passed = True


def render() -> str:
    rows = [REPORT.rows[cell[0]] for cell in CELLS]
    passed = sum(1 for r in rows if r.passed)
    now = datetime.now(JST)
    # The last run on each database, kept from the previous text of the section.
    runs = {
        line.split(":", 1)[0][2:]: line
        for line in read_section("push-matrix").splitlines()
        if line.startswith(("- sqlite:", "- postgresql:"))
    }
    runs[connection.vendor] = (
        f"- {connection.vendor}: {passed} of {len(rows)} cells pass ({now:%Y-%m-%d %H:%M} JST)"
    )
    lines = [
        "## Push (SenseLink event subscription)",
        "",
        "Generated by `tests/test_push_matrix.py`: the sandbox's subscription POSTs to the "
        "portal's receiver (a live server) over loopback HTTP; a woken poll is run from the "
        "workers' queue as a worker would; interval polls are called as the dispatcher's tick "
        "would queue them.",
        "",
        f"- Generated: {now:%Y-%m-%d %H:%M} JST (the table below), Python "
        f"{platform.python_version()}",
        f"- Database: {connection.vendor}",
        f"- Result: **{passed} of {len(rows)} cells pass**",
        "",
        "Last run on each database:",
        "",
        *[runs[name] for name in sorted(runs)],
        "",
        "| cell | fault | expected | outcome | clock-ins in KOT | tenant told | seconds to "
        "clock-in | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.id} | {r.fault} | {r.expected} | {r.outcome} | {r.clock_ins} | {r.told} | "
            f"{r.seconds} | {'PASS' if r.passed else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"
