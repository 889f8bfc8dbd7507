"""Many companies on one pair of sandbox servers, for the production proof (tests/test_production).

The portal reaches KOT through one base URL (a setting), so a test with many tenants needs one
KOT server that keeps each company apart, as the real one does: every tenant here has its own
KOT token and SenseLink App key, its own employees, recognitions and punches. The servers route
each request by those credentials to the sandbox's ordinary per-company apps (``KotApp``,
``SenseLinkApp``), which then check the credentials exactly as they always do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

from connectors.sandbox import data
from connectors.sandbox.faults import Faults
from connectors.sandbox.kot import KotApp, KotState, SandboxClock
from connectors.sandbox.senselink import SenseLinkApp, SenseLinkState
from connectors.sandbox.server import App, Request, Response, Runtime, Served
from tests.conftest import JST


class _ByCredential(App):
    """Answers for whichever company's app the request's credential names."""

    def __init__(self, apps: dict[str, App], credential: Callable[[Request], str]) -> None:
        super().__init__()
        self.apps = apps
        self.credential = credential
        self.first = next(iter(apps.values()))
        self.service = self.first.service
        self.routes = self.first.routes  # same templates in every company's app

    def handle(self, route, request: Request) -> Response:
        # An unknown credential goes to the first company, which refuses it as usual.
        app = self.apps.get(self.credential(request), self.first)
        matched = app.match(request.method, request.path)
        if matched is None:
            return app.not_found(request)
        return app.handle(matched[0], request)

    def not_found(self, request: Request) -> Response:
        return self.first.not_found(request)


def _kot_token(request: Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""


def _app_key(request: Request) -> str:
    return request.query.get("app_key", "")


@dataclass
class Company:
    slug: str
    kot_token: str
    app_key: str
    app_secret: str
    kot: KotState
    senselink: SenseLinkState
    expected: set[tuple[str, str, str]]  # (employee key, date, "1"/"2") punches to end up in KOT


class MultiTenantSandbox:
    """``tenants`` companies, ``employees`` each; recognitions on ``day`` for every active one."""

    def __init__(self, *, tenants: int, employees: int, day: date, latency: float) -> None:
        self.day = day
        self.runtime = Runtime(Faults(), latency)
        self.clock = SandboxClock(None)
        self.companies: list[Company] = []
        kot_apps: dict[str, App] = {}
        senselink_apps: dict[str, App] = {}
        for index in range(tenants):
            seed = 1000 + index
            token = f"sandbox-kot-token-{index:04d}-0123456789"
            key, secret = f"sandbox-app-key-{index:04d}", f"sandbox-app-secret-{index:04d}-x"
            kot = KotState(data.generate_employees(employees, seed, day), token)
            senselink = SenseLinkState(
                app_key=key,
                app_secret=secret,
                seed=seed,
                employees=lambda kot=kot: list(kot.employees),
            )
            company = Company(f"t{index:04d}", token, key, secret, kot, senselink, set())
            self._recognitions(company, index)
            self.companies.append(company)
            kot_apps[token] = KotApp(kot, self.clock)
            senselink_apps[key] = SenseLinkApp(senselink)
        self._kot = Served(_ByCredential(kot_apps, _kot_token), self.runtime, "127.0.0.1", 0)
        self._senselink = Served(
            _ByCredential(senselink_apps, _app_key), self.runtime, "127.0.0.1", 0
        )
        self.kot_url = f"http://127.0.0.1:{self._kot.port}/v1.0"
        self.senselink_url = f"http://127.0.0.1:{self._senselink.port}/"

    def _recognitions(self, company: Company, index: int) -> None:
        """Only known, active employees: each run can end SUCCESS (clock-in and clock-out)."""
        company.senselink.set_records(self.day, [])
        for n, employee in enumerate(company.kot.employees):
            if employee.get("resignationDate") or n >= 4:
                continue
            arrive = datetime.combine(self.day, time(8, n * 7 % 60, index % 60), JST)
            leave = datetime.combine(self.day, time(17, 30 + n * 5, index % 60), JST)
            for when in (arrive, arrive.replace(hour=12), leave):
                company.senselink.add_record(when=when, job_number=employee["code"], user_type=1)
            for code in ("1", "2"):
                company.expected.add((employee["key"], self.day.isoformat(), code))

    @property
    def latency(self) -> float:
        return self.runtime.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.runtime.latency = seconds

    def punch_counts(self, company: Company) -> Counter[tuple[str, str, str]]:
        with company.kot.lock:
            return Counter((p["employeeKey"], p["date"], p["code"]) for p in company.kot.punches)

    def stop(self) -> None:
        self.runtime.stopping.set()
        self._kot.stop()
        self._senselink.stop()
