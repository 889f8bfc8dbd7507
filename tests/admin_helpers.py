"""Helpers for the support admin tests: the desk's users, run rows, and a change form's data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command

from integrations.models import SyncError, SyncRun
from tests.conftest import JST, PASSWORD

DAY = date(2026, 11, 24)


def support_user(username: str = "desk"):
    """A staff member of the サポート group, made by the setup_support_group command."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    call_command("setup_support_group", username, stdout=StringIO())
    user.refresh_from_db()
    return user


def staff_user(username: str = "viewer", *perms: str):
    """A staff user with only these permissions ("integrations.view_tenant", ...)."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def make_run(tenant, *, kind="attendance", status="failure", errors=(), **fields) -> SyncRun:
    """A finished run row, with SyncErrors for the given employee codes."""
    started = fields.pop("started_at", datetime(2026, 11, 25, 3, 0, tzinfo=JST))
    run = SyncRun.objects.create(
        tenant=tenant,
        kind=kind,
        trigger=fields.pop("trigger", SyncRun.Trigger.SCHEDULE),
        status=status,
        target_date=fields.pop("target_date", DAY if kind == "attendance" else None),
        created_at=fields.pop("created_at", started),
        started_at=started,
        finished_at=started + timedelta(seconds=8),
        triggered_by_label=fields.pop("triggered_by_label", "スケジュール"),
        failed_count=len(errors),
        **fields,
    )
    SyncError.objects.bulk_create(
        SyncError(
            run=run,
            employee_code=code,
            target_date=run.target_date,
            punch="clock_in",
            code="kot_rejected",
            message=f"従業員コード:{code} の出勤は既に打刻済みです。",
        )
        for code in errors
    )
    return run


def change_form_data(response) -> dict:
    """The POST data a browser would send back unchanged from an admin change page."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is False:
                continue
            if value is None:
                value = ""
            if value is True:
                value = "on"
            data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for form in formset.forms:
            add(form)
    return data
