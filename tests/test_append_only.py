"""Append-only records: no one — superusers included — deletes or changes 変更履歴 rows,
利用規約同意, エラー詳細 or 連携ログ in the admin; the nightly prune still removes old runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from integrations.models import SyncError, SyncRun, TermsConsent
from tests.conftest import JST


@pytest.fixture
def records(team):
    at = datetime(2026, 11, 24, 3, 0, tzinfo=JST)
    run = SyncRun.objects.create(
        tenant=team.acme,
        kind="employee",
        trigger="manual",
        status="failure",
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=3),
        failed_count=1,
    )
    error = SyncError.objects.create(run=run, code="x", message="m")
    consent = TermsConsent.objects.get(user=team.alice)
    team.setting.attendance_hour = 5
    team.setting.save()  # an audit row
    entry = LogEntry.objects.filter(additional_data__tenant_id=team.acme.pk).latest("id")
    sam = Client()
    sam.force_login(team.sam)  # a superuser
    return {
        "syncrun": run,
        "syncerror": error,
        "termsconsent": consent,
        "logentry": entry,
        "client": sam,
    }


ADMINS = [
    ("integrations", "syncrun", SyncRun),
    ("integrations", "syncerror", SyncError),
    ("integrations", "termsconsent", TermsConsent),
    ("auditlog", "logentry", LogEntry),
]


@pytest.mark.parametrize("app,model_name,model", ADMINS)
def test_a_superuser_cannot_delete_or_change_them(records, app, model_name, model):
    sam = records["client"]
    obj = records[model_name]
    delete_url = reverse(f"admin:{app}_{model_name}_delete", args=[obj.pk])
    assert sam.get(delete_url).status_code == 403
    assert sam.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = reverse(f"admin:{app}_{model_name}_changelist")
    page = sam.get(changelist)
    assert page.status_code == 200
    assert 'value="delete_selected"' not in page.content.decode()
    sam.post(changelist, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert model.objects.filter(pk=obj.pk).exists()
    change = sam.post(reverse(f"admin:{app}_{model_name}_change", args=[obj.pk]), {})
    assert change.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_deleting_a_tenant_with_history_is_refused_in_the_admin(records, team):
    sam = records["client"]
    url = reverse("admin:integrations_tenant_delete", args=[team.acme.pk])
    assert "削除できません" in sam.get(url).content.decode() or sam.get(url).status_code == 403
    assert sam.post(url, {"post": "yes"}).status_code == 403
    assert SyncRun.objects.filter(pk=records["syncrun"].pk).exists()


def test_the_prune_still_deletes_runs_older_than_the_history(records, team, settings):
    settings.SYNC_HISTORY_DAYS = 30
    old = SyncRun.objects.create(
        tenant=team.acme,
        kind="employee",
        trigger="manual",
        status="success",
        created_at=datetime(2026, 1, 1, tzinfo=JST),
        started_at=datetime(2026, 1, 1, tzinfo=JST),
        finished_at=datetime(2026, 1, 1, 0, 1, tzinfo=JST),
    )
    call_command("prune_history", stdout=StringIO())
    assert not SyncRun.objects.filter(pk=old.pk).exists()
    assert SyncRun.objects.filter(pk=records["syncrun"].pk).exists()
