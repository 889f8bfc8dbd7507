"""Dates from people lie between 2000-01-01 and tomorrow (JST); anything else gets a clear
message (a form error, an admin message, exit status 1), never a 500. Admin search takes any
Unicode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from integrations.models import SyncRun, TermsConsent
from tests.admin_helpers import make_run, support_user

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
BAD_DATES = ["9999-12-31", "1999-12-31", "2026-11-27", "0001-01-01"]  # "today" is 2026-11-25


@pytest.fixture
def acme_client(world):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client = Client(raise_request_exception=False)
    client.force_login(world.acme_user)
    return client


@pytest.mark.parametrize("day", BAD_DATES)
def test_the_preview_refuses_a_date_out_of_range_with_a_form_error(world, acme_client, day):
    setting = world.acme.connect_settings.get()
    response = acme_client.get(
        reverse("portal:connect_preview", args=[setting.pk]),
        {"kind": "attendance", "target_date": day},
    )
    assert response.status_code == 200
    assert "2000-01-01から2026-11-26までの間で指定してください" in response.content.decode()


def test_the_preview_accepts_tomorrow(world, acme_client):
    setting = world.acme.connect_settings.get()
    response = acme_client.get(
        reverse("portal:connect_preview", args=[setting.pk]),
        {"kind": "attendance", "target_date": "2026-11-26"},
    )
    assert response.status_code == 200
    assert "までの間で指定してください" not in response.content.decode()


@pytest.mark.parametrize("day", ["9999-12-31", "1999-12-31"])
def test_manual_run_refuses_a_date_out_of_range_and_creates_no_run(world, acme_client, day):
    setting = world.acme.connect_settings.get()
    response = acme_client.post(
        reverse("portal:manual_run", args=[setting.pk]),
        {"kind": "attendance", "target_date": day},
    )
    assert response.status_code == 200
    assert "までの間で指定してください" in response.content.decode()
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("day", ["9999-12-31", "1999-12-31", "x"])
def test_admin_failed_runs_view_says_the_date_is_wrong_and_shows_today(admin_client, world, day):
    response = admin_client.get(reverse("admin:integrations_syncrun_failed"), {"date": day})
    assert response.status_code == 200
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("日付を正しく指定してください" in t for t in texts)
    assert "2026年11月25日 に失敗した連携" in response.content.decode()


def test_admin_run_button_refuses_a_date_out_of_range(world):
    client = Client(raise_request_exception=False)
    client.force_login(support_user())
    url = reverse("admin:integrations_tenant_run", args=[world.acme.pk, "attendance"])
    response = client.post(url, {"target_date": "9999-12-31"})
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("までの間で指定してください" in t for t in texts)
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("term", ["²", "#²", "١٢", "𝟙𝟚", "\x00", "a\x00b", "9" * 40, "'; --", "😀"])
def test_admin_search_takes_any_unicode(admin_client, world, term):
    run = make_run(world.acme, status="failure", errors=["1001"])
    for name in ["syncrun", "syncerror", "tenant", "tenantmembership", "termsconsent"]:
        response = admin_client.get(reverse(f"admin:integrations_{name}_changelist"), {"q": term})
        assert response.status_code == 200, name
    response = admin_client.get(reverse("admin:auth_user_changelist"), {"q": term})
    assert response.status_code == 200
    found = admin_client.get(reverse("admin:integrations_syncrun_changelist"), {"q": f"#{run.pk}"})
    assert [r.pk for r in found.context["cl"].result_list] == [run.pk]


@pytest.mark.parametrize("day", ["9999-12-31", "1999-12-31"])
def test_run_sync_refuses_a_date_out_of_range(world, day):
    with pytest.raises(CommandError, match="までの間で指定してください"):
        call_command("run_sync", "attendance", "--tenant", "acme", "--date", day)
    assert not SyncRun.objects.exists()


@pytest.mark.slow  # a real process
def test_run_sync_with_a_bad_date_exits_one_without_a_traceback():
    # The date is checked before the database is touched: a real process, its exit status.
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "run_sync",
            "attendance",
            "--tenant",
            "acme",
            "--date",
            "9999-12-31",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "--date 9999-12-31" in result.stderr
    assert "までの間で指定してください" in result.stderr


@pytest.mark.parametrize(
    "params",
    [
        {"target_date__gte": "9999-12-31"},
        {"target_date__gte": "10000-01-01"},
        {"target_date__lt": "0000-00-00"},
        {"created_at__gte": "9999-12-31"},
        {"tenant": "99999999999999999999999"},
        {"tenant": "²"},
        {"p": "²"},
        {"o": "²"},
        {"kind": "\x00"},
    ],
)
def test_admin_lists_answer_crafted_filters_without_a_500(admin_client, world, params):
    for name in ["syncrun", "syncerror"]:
        answer = admin_client.get(reverse(f"admin:integrations_{name}_changelist"), params)
        assert answer.status_code in (200, 302), (name, answer.status_code)
