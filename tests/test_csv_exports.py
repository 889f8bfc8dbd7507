"""CSV of the 連携ログ and of a run's エラー詳細: UTF-8 with a BOM (Excel in Japan), Japanese
headers, JST times, streamed from an iterator; another tenant's run is 404."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from integrations.models import SyncError, SyncRun
from integrations.services import exports
from tests.conftest import JST


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_run(tenant, at: datetime, **fields) -> SyncRun:
    return SyncRun.objects.create(
        tenant=tenant,
        kind=fields.pop("kind", "attendance"),
        trigger=fields.pop("trigger", "schedule"),
        status=fields.pop("status", "partial"),
        target_date=at.date() - timedelta(days=1),
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=8),
        triggered_by_label="スケジュール",
        **fields,
    )


def parse(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_the_run_log_csv_has_japanese_headers_and_jst_times(team):
    at = datetime(2026, 11, 24, 18, 30, tzinfo=JST)  # 09:30 UTC
    run = make_run(team.acme, at, failed_count=1, message='=HYPERLINK("http://x")')
    make_run(team.globex, at)  # another tenant's: not in acme's file
    rows = parse(logged_in(team.victor).get(reverse("portal:runs_csv")))
    header, *lines = rows
    assert header[:6] == ["連携ログ番号", "コネクト名", "種別", "起動", "対象日", "結果"]
    assert "開始日時" in header and "メッセージ" in header
    assert len(lines) == 1
    line = dict(zip(header, lines[0], strict=True))
    assert line["連携ログ番号"] == str(run.pk)
    assert line["種別"] == "勤怠連携" and line["結果"] == "PARTIAL"
    assert line["開始日時"] == "2026-11-24 18:30:00"  # JST, not UTC
    assert line["処理時間(秒)"] == "8" and line["エラー"] == "1"
    assert line["メッセージ"].startswith("'=")  # a formula is not a formula in Excel


def test_a_runs_error_csv_and_another_tenants_run_is_404(team):
    at = datetime(2026, 11, 24, 3, 0, tzinfo=JST)
    run = make_run(team.acme, at, failed_count=2)
    SyncError.objects.create(
        run=run,
        employee_code="2022",
        target_date=at.date(),
        punch="clock_in",
        code="kot_rejected",
        message="従業員コード:2022 の出勤は既に打刻済みです。",
        created_at=at,
    )
    SyncError.objects.create(
        run=run, employee_code="2023", code="x", message="二行目", severity="warning"
    )
    victor = logged_in(team.victor)
    header, *lines = parse(victor.get(reverse("portal:run_errors_csv", args=[run.pk])))
    assert header == [
        "連携ログ番号",
        "従業員コード",
        "対象日",
        "打刻",
        "重要度",
        "エラーコード",
        "メッセージ",
        "発生日時",
    ]
    assert lines[0] == [
        str(run.pk),
        "2022",
        "2026-11-24",
        "出勤",
        "エラー",
        "kot_rejected",
        "従業員コード:2022 の出勤は既に打刻済みです。",
        "2026-11-24 03:00:00",
    ]
    assert lines[1][4] == "警告"
    other = make_run(team.globex, at)
    assert victor.get(reverse("portal:run_errors_csv", args=[other.pk])).status_code == 404
    page = victor.get(reverse("portal:run_errors", args=[run.pk])).content.decode()
    assert reverse("portal:run_errors_csv", args=[run.pk]) in page


def test_the_export_reads_in_chunks_and_writes_row_by_row(team, django_assert_max_num_queries):
    at = datetime(2026, 1, 1, 3, 0, tzinfo=JST)
    SyncRun.objects.bulk_create(
        SyncRun(
            tenant=team.acme,
            kind="employee",
            trigger="schedule",
            status="success",
            created_at=at + timedelta(hours=i),
            started_at=at,
            finished_at=at,
        )
        for i in range(exports.CHUNK + 10)
    )
    lines = exports.runs_csv(tenant_id=team.acme.pk)
    assert not isinstance(lines, list | tuple)  # an iterator, not a built list
    with django_assert_max_num_queries(3):  # chunked reads (SQLite: one; PostgreSQL: a cursor)
        count = sum(1 for _ in lines)
    assert count == exports.CHUNK + 10 + 1


def test_support_downloads_the_same_csvs_in_the_admin(team):
    at = datetime(2026, 11, 24, 3, 0, tzinfo=JST)
    run = make_run(team.acme, at, failed_count=1)
    SyncError.objects.create(run=run, employee_code="9", code="x", message="m")
    sam = logged_in(team.sam)
    header, *lines = parse(
        sam.get(reverse("admin:integrations_syncrun_export", args=[team.acme.pk]))
    )
    assert header[0] == "連携ログ番号" and [line[0] for line in lines] == [str(run.pk)]
    header, *lines = parse(sam.get(reverse("admin:integrations_syncrun_errors_csv", args=[run.pk])))
    assert header[1] == "従業員コード" and lines[0][1] == "9"
    page = sam.get(reverse("admin:integrations_syncrun_change", args=[run.pk])).content.decode()
    assert reverse("admin:integrations_syncrun_errors_csv", args=[run.pk]) in page
    # A tenant user in the admin: refused.
    response = logged_in(team.alice).get(
        reverse("admin:integrations_syncrun_export", args=[team.acme.pk])
    )
    assert response.status_code == 403
