"""No English left from libraries where a customer or the support desk reads: every tenant page
(tests/tenant_pages.py), the lock-out page, and every admin page a サポート account can open —
the index, each app, each model's list, change form and add form, the desk's own pages —
searched for the UI words Django, django-q2 and django-axes would show in English.

Legitimate ASCII stays: product names (KING OF TIME, SenseLink, SenseThunder), URL, IP, ID,
the run results SUCCESS / PARTIAL / FAILURE, and data (employee codes, task function names).
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import PunchLedger, SyncError, SyncRun, TenantMembership
from tests.admin_helpers import support_user
from tests.conftest import PASSWORD
from tests.tenant_pages import DAY, TENANT_PAGES, at, show_world

# Words (whole, case as shown) that only an untranslated library screen would show.
LEFTOVERS = [
    "Rows per page",
    " of ",
    "AXES",
    "Axes",
    "DJANGO",
    "Django",
    "django-q2",
    "USER",
    "User",
    "TENANT",
    "Tenant",
    "None",
    "posted",
    "sending",
    "clock_in",
    "clock_out",
    "Save",
    "Delete",
    "History",
    "Add",
    "Filter",
    "Search",
    "Name",
    "Group",
    "Function",
    "Cluster",
    "Started",
    "Stopped",
    "Success",
    "Failed",
    "Queued",
    "Scheduled",
    "Task",
    "Tasks",
    "Resubmit",
    "Result",
    "Attempt",
    "Access",
    "Username",
    "Locked",
    "Expires",
    "Path",
    "True",
    "False",
    "Yes",
    "Minutes",
    "Daily",
]
LEFTOVER = re.compile(
    "|".join(
        re.escape(word)
        if word.startswith(" ")
        else rf"(?<![A-Za-z_.]){re.escape(word)}(?![A-Za-z_])"
        for word in LEFTOVERS
    )
)
# What people read besides text nodes.
SHOWN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}


class _ShownText(HTMLParser):
    """The text a person sees (and hears): text nodes outside script/style, the attributes
    above, and the label of submit buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1
        values = dict(attrs)
        for name in SHOWN_ATTRIBUTES & values.keys():
            self.parts.append(values[name] or "")
        if tag == "input" and values.get("type") in ("submit", "button"):
            self.parts.append(values.get("value") or "")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.parts.append(" ".join(data.split()))


def shown_text(html: str) -> str:
    parser = _ShownText()
    parser.feed(html)
    return "\n".join(parser.parts)


def leftovers(html: str) -> list[str]:
    found = []
    for line in shown_text(html).splitlines():
        for match in LEFTOVER.finditer(line):
            found.append(f"{match.group(0)!r} in {line[:120]!r}")
    return found


def test_the_word_list_finds_library_english_and_spares_our_ascii():
    assert leftovers("<th>USER</th><p>1-2 of 2</p><a title='Add'>+</a>") == [
        "'USER' in 'USER'",
        "' of ' in '1-2 of 2'",
        "'Add' in 'Add'",
    ]
    ours = (
        "<p>KING OF TIMEの情報</p><p>SenseLink URL</p><p>IPアドレス</p><p>SUCCESS</p>"
        "<td>integrations.tasks.send_run_mail_task</td><td>run-mail-3-customer</td>"
    )
    assert leftovers(ours) == []


# --- the tenant pages -------------------------------------------------------------------------


@pytest.fixture
def shown(world):
    return show_world(world)


@pytest.mark.parametrize("page", TENANT_PAGES, ids=[page.name for page in TENANT_PAGES])
def test_tenant_pages_are_japanese(shown, page, settings):
    settings.DEBUG = False  # the 404 page as customers see it
    client = Client()
    if page.user:
        assert client.login(username=page.user, password=PASSWORD)
    response = client.get(page.url(shown))
    assert response.status_code == page.status
    assert leftovers(response.content.decode()) == []


def test_the_run_log_fragment_is_japanese(shown):
    client = Client()
    assert client.login(username="acme-hr", password=PASSWORD)
    html = client.get(reverse("portal:run_log"), {"per_page": 5}).content.decode()
    assert "5件" in shown_text(html)  # a page of the log, with its pager
    assert leftovers(html) == []


def test_the_lockout_page_is_japanese_and_says_how_long_to_wait(shown, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = 0.5
    client = Client()
    for _ in range(3):
        response = client.post(reverse("portal:login"), {"username": "acme-hr", "password": "x"})
    assert response.status_code == 429
    html = response.content.decode()
    assert leftovers(html) == []
    text = shown_text(html)
    assert "30分" in text
    assert "サポート" in text


# --- the support admin ------------------------------------------------------------------------


@pytest.fixture
def desk_world(shown):
    """Rows of every model the desk can open: runs with errors, a ledger row, a membership,
    django-q2's tasks and schedules, a locked-out login and its log."""
    from axes.models import AccessAttempt, AccessLog
    from django_q.models import OrmQ, Schedule, Task

    from integrations.queue import ensure_schedules

    now = timezone.now()
    guard = SyncRun.objects.create(
        tenant=shown.acme,
        kind=SyncRun.Kind.EMPLOYEE,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=SyncRun.Status.FAILURE,
        started_at=at(2),
        finished_at=at(2) + timedelta(seconds=3),
        message="一括登録の上限を超えるため、何も変更せずに停止しました。",
    )
    SyncError.objects.create(run=guard, code="creation_guard", message=guard.message)
    PunchLedger.objects.create(
        tenant=shown.acme,
        employee_code="A0046",
        working_date=DAY,
        punch=SyncError.Punch.CLOCK_OUT,
        state=PunchLedger.State.POSTED,
        punch_time=at(18, 2, day=DAY),
        owner=f"run:{shown.partial_run.pk}:1",
        run=shown.partial_run,
        reserved_at=now,
        sent_at=now,
        settled_at=now,
    )
    ensure_schedules()
    Schedule.objects.filter(name="integrations.prune_history").update(task="a" * 32)
    for n, success in enumerate((True, False)):
        Task.objects.create(
            id=("a" if success else "b") * 32,
            name=f"run-mail-{shown.partial_run.pk}-customer-{n}",
            func="integrations.tasks.send_run_mail_task",
            args=(shown.partial_run.pk, "customer"),
            kwargs={},
            result="sent" if success else "smtp refused",
            group="mail",
            cluster="portal",
            started=now,
            stopped=now + timedelta(seconds=1),
            success=success,
        )
    OrmQ.objects.create(key="portal", payload="not-a-package", lock=now)
    AccessAttempt.objects.create(
        username="acme-hr",
        ip_address="192.0.2.10",
        user_agent="Mozilla/5.0",
        http_accept="text/html",
        path_info="/login/",
        get_data="",
        post_data="username=acme-hr",
        failures_since_start=5,
    )
    AccessLog.objects.create(
        username="acme-hr",
        ip_address="192.0.2.10",
        user_agent="Mozilla/5.0",
        http_accept="text/html",
        path_info="/login/",
    )
    return shown


def admin_urls(user, skip_apps: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Every admin page this user may open: index, apps, each model's list, one object's
    change form and the add form where allowed, and the registered extra pages."""
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    site = admin.site
    urls = [reverse("admin:index"), reverse("admin:password_change")]
    for app in site.get_app_list(request):
        if app["app_label"] in skip_apps:
            continue
        urls.append(reverse("admin:app_list", args=[app["app_label"]]))
    for model, model_admin in site._registry.items():
        if model._meta.app_label in skip_apps:
            continue
        if not model_admin.has_view_or_change_permission(request):
            continue
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        first = model_admin.get_queryset(request).order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
    return urls


def _check_admin(user, extra: list[str], skip_apps: frozenset[str] | set[str] = frozenset()):
    client = Client()
    client.force_login(user)
    problems = []
    for url in admin_urls(user, skip_apps) + extra:
        response = client.get(url)
        assert response.status_code == 200, url
        problems += [f"{url}: {found}" for found in leftovers(response.content.decode())]
    return problems


def _desk_pages(world) -> list[str]:
    guard = SyncRun.objects.filter(errors__code="creation_guard").get()
    queued = SyncRun.objects.filter(status=SyncRun.Status.QUEUED).get()
    return [
        reverse("admin:integrations_syncrun_change", args=[guard.pk]),
        reverse("admin:integrations_syncrun_change", args=[queued.pk]),
        reverse("admin:integrations_syncrun_allow_mass_create", args=[guard.pk]),
        reverse("admin:integrations_syncrun_failed") + f"?date={DAY:%Y-%m-%d}",
        reverse("admin:integrations_tenant_change", args=[world.acme.pk]),
    ]


def test_every_admin_page_the_support_desk_opens_is_japanese(desk_world):
    desk = support_user()
    assert not desk.is_superuser
    problems = _check_admin(desk, _desk_pages(desk_world))
    assert problems == [], "\n".join(problems)


def test_the_admin_pages_of_a_superuser_are_japanese_too(desk_world):
    """Beyond the desk's pages, except Django's users and groups: their permission names
    ("Can add …") are stored in English by Django itself."""
    root = get_user_model().objects.create_superuser("root", "root@vendor.example.jp", PASSWORD)
    problems = _check_admin(root, _desk_pages(desk_world), skip_apps={"auth"})
    assert problems == [], "\n".join(problems)


def test_memberships_columns_are_named_in_japanese(desk_world):
    client = Client()
    client.force_login(support_user())
    html = client.get(reverse("admin:integrations_tenantmembership_changelist")).content.decode()
    text = shown_text(html)
    assert "ユーザー" in text and "テナント" in text
    assert TenantMembership.objects.count() == 2
