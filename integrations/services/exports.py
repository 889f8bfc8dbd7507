"""CSV exports of the 連携ログ (a tenant's runs) and of one run's エラー詳細, for Excel in Japan.

UTF-8 with a BOM (Excel reads BOM-less UTF-8 as Shift_JIS), Japanese headers, times in JST.
Rows are read with ``values_list(...).iterator(chunk_size=...)`` and written one at a time, so a
year of history streams through a fixed amount of memory. A cell that a spreadsheet would take
as a formula (``=``, ``+``, ``-``, ``@``, tab, CR at its start; upstream text can say anything)
is prefixed with ``'``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _

from connectors.clock import JST

from ..models import ConnectSetting, SyncError, SyncRun

BOM = "\ufeff"
CHUNK = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[bytes]:
    """The CSV as UTF-8 bytes, one line at a time, the BOM before the header."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    yield (BOM + writer.writerow(header)).encode("utf-8")
    for row in rows:
        yield writer.writerow([_cell(value) for value in row]).encode("utf-8")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value.astimezone(JST):%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


RUN_HEADER = [
    _("連携ログ番号"),
    _("コネクト名"),
    _("種別"),
    _("起動"),
    _("対象日"),
    _("結果"),
    _("登録日時"),
    _("開始日時"),
    _("終了日時"),
    _("処理時間(秒)"),
    _("登録"),
    _("更新"),
    _("削除"),
    _("スキップ"),
    _("エラー"),
    _("警告"),
    _("実行者"),
    _("メッセージ"),
]


def runs_csv(*, tenant_id: int) -> Iterator[bytes]:
    """Every run of the tenant, newest first (the 連携ログ page's order)."""
    # Labels translated now: the rows are written after the view returned (another language
    # may be active by then).
    kinds = _labels(SyncRun.Kind.choices)
    triggers = _labels(SyncRun.Trigger.choices)
    statuses = _labels(SyncRun.Status.choices)
    connector = str(ConnectSetting.Connector.SENSELINK.label)
    values = (
        SyncRun.objects.filter(tenant_id=tenant_id)
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "kind",
            "trigger",
            "target_date",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "created_count",
            "updated_count",
            "deleted_count",
            "skipped_count",
            "failed_count",
            "warning_count",
            "triggered_by_label",
            "message",
        )
        .iterator(chunk_size=CHUNK)
    )

    def rows():
        for run_id, kind, trigger, target_date, status, *times, by, message in values:
            created_at, started_at, finished_at, *counts = times
            seconds = (
                int((finished_at - started_at).total_seconds())
                if started_at and finished_at
                else None
            )
            yield [
                run_id,
                connector,
                kinds.get(kind, kind),
                triggers.get(trigger, trigger),
                target_date,
                statuses.get(status, status),
                created_at,
                started_at,
                finished_at,
                seconds,
                *counts,
                by,
                message,
            ]

    return csv_lines(RUN_HEADER, rows())


def errors_csv(*, run: SyncRun) -> Iterator[bytes]:
    """One run's problems, in the エラー詳細 page's order."""
    header = [
        _("連携ログ番号"),
        _("従業員コード"),
        _("対象日"),
        _("打刻"),
        _("重要度"),
        _("エラーコード"),
        _("メッセージ"),
        _("発生日時"),
    ]
    punches = _labels(SyncError.Punch.choices)
    severities = _labels(SyncError.Severity.choices)
    values = (
        SyncError.objects.filter(run_id=run.pk)
        .order_by("id")
        .values_list(
            "employee_code", "target_date", "punch", "severity", "code", "message", "created_at"
        )
        .iterator(chunk_size=CHUNK)
    )
    rows = (
        [
            run.pk,
            code,
            day,
            punches.get(punch, punch),
            severities.get(severity, severity),
            error_code,
            message,
            at,
        ]
        for code, day, punch, severity, error_code, message, at in values
    )
    return csv_lines(header, rows)


def _labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices}


def runs_filename(slug: str, today: date) -> str:
    return f"renkei-log-{slug}-{today:%Y%m%d}.csv"


def errors_filename(run: SyncRun) -> str:
    return f"error-detail-{run.pk}.csv"


def csv_response(lines: Iterator[bytes], filename: str) -> StreamingHttpResponse:
    """A download streamed from ``lines`` (never held in memory whole)."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
