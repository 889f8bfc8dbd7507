"""Every tenant page, in one list: the browser test (screenshots, phone width, words not broken)
and the leftover-English test open each of them. A new page is one line here.

Each page is opened by one of the `shown` world's people (``user``: "acme-hr", the active
customer; "globex-hr", a customer not subscribed; "" nobody logged in) and named by its URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse

from connectors.clock import JST

DAY = date(2026, 11, 24)


@dataclass(frozen=True)
class Page:
    name: str  # the screenshot's file name (docs/screenshots/<name>_<width>.png)
    url: Callable[[Any], str]  # the shown world -> the page's URL
    user: str = "acme-hr"
    status: int = 200


TENANT_PAGES = [
    Page("login", lambda w: reverse("portal:login"), user=""),
    Page("terms", lambda w: reverse("portal:terms")),
    Page("connect_list", lambda w: reverse("portal:connect_list")),
    Page("connect_settings", lambda w: reverse("portal:connect_settings", args=[w.setting.pk])),
    Page("manual_run", lambda w: reverse("portal:manual_run", args=[w.setting.pk])),
    Page(
        "preview_employee",
        lambda w: reverse("portal:connect_preview", args=[w.setting.pk]) + "?kind=employee",
    ),
    Page(
        "preview_attendance",
        lambda w: (
            reverse("portal:connect_preview", args=[w.setting.pk])
            + f"?kind=attendance&target_date={DAY:%Y-%m-%d}"
        ),
    ),
    Page("run_errors", lambda w: reverse("portal:run_errors", args=[w.partial_run.pk])),
    Page("password_change", lambda w: reverse("portal:password_change")),
    Page("password_change_done", lambda w: reverse("portal:password_change_done")),
    Page("subscription", lambda w: reverse("portal:connect_list"), user="globex-hr"),
    Page("not_found", lambda w: "/no-such-page/", status=404),
]


def at(hour: int, minute: int = 0, *, day: date = date(2026, 11, 25)) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def show_world(world) -> Any:
    """`world` (tests/conftest.py) with what the pages show: acme's terms accepted, a page of
    runs of every kind and result (with errors and a warning), a long company name."""
    from integrations.models import SyncError, SyncRun, TermsConsent

    acme = world.acme
    acme.name = "株式会社アクメ・ホールディングス"
    acme.save(update_fields=["name"])
    for user in (world.acme_user, world.globex_user):
        TermsConsent.objects.create(
            user=user, tenant=user.membership.tenant, version=settings.TERMS_VERSION
        )
    runs = []
    for n, (kind, status, trigger) in enumerate(
        [
            ("attendance", "partial", "schedule"),
            ("employee", "success", "manual"),
            ("attendance", "failure", "rerun"),
            ("attendance", "collecting", "realtime"),
            ("employee", "queued", "manual"),
        ]
    ):
        started = at(3 + n)
        queued = status == "queued"
        runs.append(
            SyncRun.objects.create(
                tenant=acme,
                kind=kind,
                trigger=trigger,
                status=status,
                target_date=DAY if kind == "attendance" else None,
                created_at=started,
                started_at=None if queued else started,
                finished_at=None
                if queued or status == "collecting"
                else started + timedelta(seconds=8),
                triggered_by_label="acme-hr" if trigger == "manual" else "スケジュール",
                created_count=12,
                updated_count=1,
                skipped_count=37,
                failed_count=2 if status in ("partial", "failure") else 0,
                warning_count=1 if status == "partial" else 0,
                not_updated_count=3 if kind == "employee" and status == "success" else 0,
                message="2026年11月24日: 打刻登録12 失敗2" if status == "partial" else "",
            )
        )
    partial = runs[0]
    SyncError.objects.bulk_create(
        [
            SyncError(
                run=partial,
                employee_code="2022",
                target_date=DAY,
                punch=SyncError.Punch.CLOCK_IN,
                code="already_punched",
                message="従業員コード:2022 の出勤は既に打刻済みです。KING OF TIME管理画面をご確認ください。",
            ),
            SyncError(
                run=partial,
                employee_code="9999",
                target_date=DAY,
                punch=SyncError.Punch.CLOCK_IN,
                code="unknown_employee",
                message="従業員番号:9999 はKING OF TIMEに登録されていません。",
            ),
            SyncError(
                run=partial,
                employee_code="0011",
                severity=SyncError.Severity.WARNING,
                code="mail_too_long",
                message="従業員コード:0011 のメールアドレスはSenseLinkに登録できない長さのため、登録しませんでした。",
            ),
        ]
    )
    world.setting = acme.connect_settings.get()
    world.partial_run = partial
    world.runs = runs
    return world
