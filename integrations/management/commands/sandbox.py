"""``python manage.py sandbox``: run the fake KOT and SenseLink servers until Ctrl-C."""

from __future__ import annotations

import re
import signal
import threading
from datetime import date, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connectors.clock import JST
from connectors.sandbox import READINGS, start_sandbox
from connectors.sandbox.faults import KINDS, SERVICES
from connectors.sandbox.subscription import SHAPES

OFFSET = re.compile(r"^(?P<sign>[+-]?)(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?$")


def parse_offset(value: str) -> timedelta:
    """A clock offset from e.g. +2h, -30m, 1h30m, +02:30, or a plain number of minutes."""
    value = value.strip()
    hhmm = re.match(r"^([+-]?)(\d{1,2}):(\d{2})$", value)
    if hhmm:
        delta = timedelta(hours=int(hhmm.group(2)), minutes=int(hhmm.group(3)))
        return -delta if hhmm.group(1) == "-" else delta
    if re.fullmatch(r"[+-]?\d+", value):
        return timedelta(minutes=int(value))
    m = OFFSET.match(value)
    if not m or not (m.group("hours") or m.group("minutes")):
        raise CommandError(f"--clock-offset {value!r}: use e.g. +2h, -30m, 1h30m or +02:30")
    delta = timedelta(hours=int(m.group("hours") or 0), minutes=int(m.group("minutes") or 0))
    return -delta if m.group("sign") == "-" else delta


def parse_day_border(value: str) -> tuple[str, str]:
    """ "100=05:00" as ("100", "05:00")."""
    code, _, border = value.partition("=")
    if not code.strip() or not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", border.strip()):
        raise CommandError(f"--day-border {value!r}: expected CODE=HH:MM, e.g. 100=05:00")
    return code.strip(), border.strip()


def arm_fault(sandbox: Any, spec: str, *, delay: float) -> str:
    """Arm ``[SERVICE:]KIND[@PATH]`` on the sandbox until it stops; a description of it."""
    head, _, path = spec.partition("@")
    service, _, kind = head.rpartition(":")
    if kind not in KINDS:
        raise CommandError(f"--fault {spec!r}: unknown kind; expected one of {sorted(KINDS)}")
    if service and service not in SERVICES:
        raise CommandError(f"--fault {spec!r}: the service is kot or senselink")
    for name in [service] if service else SERVICES:
        sandbox.faults.add(name, kind, path=path or None, times=None, delay=delay)
    return f"{kind} on {service or 'both services'}" + (
        f", paths matching {path!r}" if path else ""
    )


class Command(BaseCommand):
    help = "Run fake KING OF TIME and SenseLink servers on loopback (generated data) until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--kot-port", type=int, default=8701)
        parser.add_argument("--senselink-port", type=int, default=8702)
        parser.add_argument("--employees", type=int, default=50)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--date", help="the 'today' of the generated data, YYYY-MM-DD (default: today in JST)"
        )
        parser.add_argument("--latency-ms", type=int, default=0, help="added to every request")
        parser.add_argument(
            "--recognitions",
            type=int,
            default=None,
            help="records per employee and day (default 1-4)",
        )
        self._add_readings(parser)
        self._add_faults(parser)
        clock = parser.add_mutually_exclusive_group()
        clock.add_argument(
            "--clock-offset", help="shift KOT's clock, e.g. +2h, -30m (to reach a forbidden window)"
        )
        clock.add_argument("--now", help='pin KOT\'s clock at "YYYY-MM-DDTHH:MM" (JST)')

    def _add_readings(self, parser: Any) -> None:
        """The other readings of both APIs' open points."""
        parser.add_argument(
            "--senselink-reading",
            action="append",
            choices=sorted(READINGS),
            default=[],
            metavar="NAME",
            help="take another reading of SenseLink's open points (repeatable): "
            + "; ".join(f"{name}: {r.description}" for name, r in READINGS.items()),
        )
        parser.add_argument(
            "--day-border",
            action="append",
            default=[],
            metavar="CODE=HH:MM",
            help="give KOT division CODE another 日付変更時刻, e.g. 100=05:00 (repeatable; "
            "an unknown code adds a division)",
        )
        parser.add_argument(
            "--kot-minutes-only",
            action="store_true",
            help="KOT stores punch times at the minute (drops the seconds sent)",
        )
        parser.add_argument(
            "--kot-throttle-rate",
            type=float,
            default=None,
            metavar="R",
            help="KOT refuses calls beyond R per second (a token bucket, 1 s burst)",
        )
        parser.add_argument(
            "--kot-throttle-style",
            choices=("303", "429"),
            default="303",
            help='how a throttled call is refused: 429 with the "303" body, or 429 + Retry-After',
        )

    def _add_faults(self, parser: Any) -> None:
        """Faults and hostile or unusual data, armed until the sandbox stops."""
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="[SERVICE:]KIND[@PATH]",
            help="arm a fault on every matching request until stopped (repeatable); SERVICE is "
            "kot or senselink (default both), PATH a substring or regex of the path. Kinds: "
            + "; ".join(f"{name}: {text}" for name, text in KINDS.items()),
        )
        parser.add_argument(
            "--fault-delay",
            type=float,
            default=1.0,
            help="seconds for timeout faults, and between two bytes of slow_body/slow_headers",
        )
        parser.add_argument(
            "--overlong",
            type=int,
            default=None,
            metavar="N",
            help="overlong strings: two KOT employee codes and one unknown SenseLink job number "
            "of N characters (e.g. 65 or 1000)",
        )
        parser.add_argument(
            "--push-shape",
            choices=SHAPES,
            default="manual",
            help='the JSON of the event subscription\'s pushes: manual (eventType "30000", '
            "sendTime a device-time string) or sender (as SenseTime's push test sender: eventType "
            "30000 and sendTime in epoch milliseconds as numbers, a UUID messageId)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = None
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError(f"--date {options['date']!r}: expected YYYY-MM-DD") from exc
        borders = [parse_day_border(value) for value in options["day_border"]]
        pinned = None
        if options["now"]:
            try:
                pinned = datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now {options['now']!r}: expected YYYY-MM-DDTHH:MM") from exc
            pinned = pinned if pinned.tzinfo else pinned.replace(tzinfo=JST)
            day = day or pinned.astimezone(JST).date()
        if options["overlong"] is not None and options["overlong"] < 1:
            raise CommandError("--overlong N: N must be at least 1 (characters)")
        try:
            sandbox = start_sandbox(
                employees=options["employees"],
                seed=options["seed"],
                day=day,
                host=options["host"],
                kot_port=options["kot_port"],
                senselink_port=options["senselink_port"],
                latency=options["latency_ms"] / 1000,
                recognitions_per_employee=options["recognitions"],
                senselink=options["senselink_reading"],
                kot=self._kot_modes(options),
                overlong=options["overlong"],
                push_shape=options["push_shape"],
            )
        except OSError as exc:
            raise CommandError(f"cannot start the sandbox: {exc}") from exc
        self._readings = options["senselink_reading"]
        try:
            for code, border in borders:
                sandbox.kot.set_day_border(code, border)
            self._faults = [
                arm_fault(sandbox, spec, delay=options["fault_delay"]) for spec in options["fault"]
            ]
            if pinned is not None:
                sandbox.clock.set(pinned)
            elif options["clock_offset"]:
                sandbox.clock.offset = parse_offset(options["clock_offset"])
            self._print(sandbox)
            self._wait()
        finally:
            sandbox.stop()
            self.stdout.write("sandbox stopped")

    def _kot_modes(self, options: dict[str, Any]) -> dict[str, Any]:
        rate = options["kot_throttle_rate"]
        if rate is not None and rate <= 0:
            raise CommandError("--kot-throttle-rate must be above 0")
        modes: dict[str, Any] = {}
        if options["kot_minutes_only"]:
            modes["minutes_only"] = True
        if rate:
            modes.update(throttle_rate=rate, throttle_style=options["kot_throttle_style"])
        self._kot_readings = modes
        return modes

    def _print(self, sandbox: Any) -> None:
        out = self.stdout.write
        out(self.style.SUCCESS("Sandbox running (fake data; Ctrl-C to stop)"))
        out(f"  KING OF TIME  base URL   : {sandbox.kot_url}")
        out(f"                token      : {sandbox.kot_token}")
        out(f"                clock      : {sandbox.clock.now().isoformat(timespec='seconds')}")
        out(f"  SenseLink     URL        : {sandbox.senselink_url}")
        out(f"                push shape : {sandbox.senselink.subscription.shape}")
        out(f"                App key    : {sandbox.app_key}")
        out(f"                App secret : {sandbox.app_secret}")
        with sandbox.kot.lock:
            borders = ", ".join(
                f"{d['code']} {d['name']} {d['dayBorderTime']}" for d in sandbox.kot.divisions
            )
        out(f"  KOT divisions (日付変更時刻): {borders}")
        if kot_modes := getattr(self, "_kot_readings", None):
            out("  KOT readings: " + ", ".join(f"{k}={v}" for k, v in kot_modes.items()))
        for armed in getattr(self, "_faults", []):
            out(f"  fault: {armed}")
        if sandbox.senselink.extra_job_numbers:
            length = len(sandbox.senselink.extra_job_numbers[0])
            out(f"  overlong mode: codes and a job number of {length} characters")
        if options_readings := getattr(self, "_readings", None):
            out(f"  SenseLink readings: {', '.join(options_readings)}")
        out(
            f"  data: {len(sandbox.kot.employees)} KOT employees, "
            f"{len(sandbox.senselink.persons)} SenseLink persons, seed {sandbox.seed}, day {sandbox.day}"
        )

    def _wait(self) -> None:
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
