"""Runs and their errors (SPEC 2): the truth the log pages and the admin read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..fields import FittedCharField
from .tenants import Tenant


class SyncRun(models.Model):
    """One execution of a sync: the truth the log pages and the admin read."""

    class Kind(models.TextChoices):
        EMPLOYEE = "employee", _("社員情報連携")
        ATTENDANCE = "attendance", _("勤怠連携")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("手動")
        SCHEDULE = "schedule", _("スケジュール")
        RERUN = "rerun", _("再実行")
        REALTIME = "realtime", _("リアルタイム")

    class Status(models.TextChoices):
        QUEUED = "queued", _("待機中")
        WAITING = "waiting", _("再開待ち")
        RUNNING = "running", _("実行中")
        # A real-time run collects the day's clock-ins until its working day ends (never
        # "running": the daily attendance run of the tenant must still be able to run).
        COLLECTING = "collecting", _("受付中")
        SUCCESS = "success", "SUCCESS"
        PARTIAL = "partial", "PARTIAL"
        FAILURE = "failure", "FAILURE"

    class ErrorType(models.TextChoices):
        NONE = "", _("なし")
        CONFIGURATION = "configuration", _("設定エラー")
        TRANSIENT = "transient", _("一時的なエラー")
        WORKER_LOST = "worker_lost", _("処理の中断")
        MISSED = "missed", _("実行見送り")
        INTERNAL = "internal", _("内部エラー")

    ACTIVE_STATUSES = (Status.QUEUED, Status.WAITING, Status.RUNNING)
    FINISHED_STATUSES = (Status.SUCCESS, Status.PARTIAL, Status.FAILURE)

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="runs", verbose_name=_("テナント")
    )
    kind = models.CharField(_("種別"), max_length=20, choices=Kind.choices)
    trigger = models.CharField(_("起動"), max_length=20, choices=Trigger.choices)
    status = models.CharField(
        _("結果"), max_length=20, choices=Status.choices, default=Status.QUEUED
    )
    target_date = models.DateField(_("対象日"), null=True, blank=True)
    created_at = models.DateTimeField(_("登録日時"), default=timezone.now)
    started_at = models.DateTimeField(_("開始日時"), null=True, blank=True)
    finished_at = models.DateTimeField(_("終了日時"), null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("実行者"),
    )
    triggered_by_label = models.CharField(_("実行者(表示名)"), max_length=150, blank=True)
    created_count = models.PositiveIntegerField(_("登録"), default=0)
    updated_count = models.PositiveIntegerField(_("更新"), default=0)
    deleted_count = models.PositiveIntegerField(_("削除"), default=0)
    skipped_count = models.PositiveIntegerField(_("スキップ"), default=0)
    failed_count = models.PositiveIntegerField(_("失敗"), default=0)
    warning_count = models.PositiveIntegerField(_("警告"), default=0)
    not_updated_count = models.PositiveIntegerField(
        _("未更新(差分あり)"),
        default=0,
        help_text=_("KING OF TIMEと内容が異なるが、設定により更新しなかった人員の数。"),
    )
    allow_mass_create = models.BooleanField(
        _("一括登録の上限を超えて登録(この実行のみ)"),
        default=False,
        help_text=_("サポートが一括登録の上限を超える登録をこの実行に限り許可したもの。"),
    )
    rerun_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reruns",
        verbose_name=_("再実行元"),
    )
    error_type = models.CharField(
        _("エラー種別"), max_length=20, choices=ErrorType.choices, blank=True, default=""
    )
    message = models.TextField(_("メッセージ"), blank=True, default="")
    # The scheduled slot (JST hour) this run is for; unique per tenant and kind.
    slot = models.DateTimeField(_("スケジュール枠"), null=True, blank=True)
    # Not to be started before this time (KOT window end, or a retry's backoff).
    not_before = models.DateTimeField(_("再開予定"), null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Also the run's lease token: claim_run increments it, and every write of a worker is
    # conditional on the attempt it claimed (integrations/services/runs.py, Lease).
    attempt = models.PositiveSmallIntegerField(_("試行回数"), default=0)
    # Automatic resumptions: after its worker was lost (the reaper) or stopped (SIGTERM).
    resumes = models.PositiveSmallIntegerField(_("自動再開回数"), default=0)

    class Meta:
        verbose_name = _("連携ログ")
        verbose_name_plural = _("連携ログ")
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one running run per tenant and kind, enforced by the database.
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=Q(status="running"),
                name="one_running_run_per_tenant_kind",
            ),
            # One real-time run per tenant and working day collects that day's clock-ins.
            models.UniqueConstraint(
                fields=["tenant", "kind", "target_date"],
                condition=Q(trigger="realtime"),
                name="one_realtime_run_per_tenant_day",
            ),
            # A scheduled slot is run once, even with several dispatchers.
            models.UniqueConstraint(
                fields=["tenant", "kind", "slot"],
                condition=Q(slot__isnull=False),
                name="one_run_per_schedule_slot",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="run_tenant_newest"),
            models.Index(fields=["-created_at", "-id"], name="run_newest"),
            models.Index(fields=["status", "not_before"], name="run_status_due"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class SyncError(models.Model):
    """One problem of a run: an employee's punch or person, or the run as a whole.

    A warning (e.g. ``mail_too_long``: the person was created without the e-mail) is shown with
    the errors but is not a failure: it does not count in ``failed_count`` nor make a run
    PARTIAL.
    """

    class Severity(models.TextChoices):
        ERROR = "error", _("エラー")
        WARNING = "warning", _("警告")

    class Punch(models.TextChoices):
        NONE = "", "-"
        CLOCK_IN = "clock_in", _("出勤")
        CLOCK_OUT = "clock_out", _("退勤")

    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, related_name="errors", verbose_name=_("連携ログ")
    )
    # Upstream strings (a KOT code, a SenseLink job number, an error code) of any length fit:
    # longer ones are stored cut with "…" (fields.FittedCharField).
    employee_code = FittedCharField(_("従業員コード"), max_length=64, blank=True, default="")
    target_date = models.DateField(_("対象日"), null=True, blank=True)
    punch = models.CharField(
        _("打刻"), max_length=20, choices=Punch.choices, blank=True, default=""
    )
    code = FittedCharField(_("エラーコード"), max_length=64)
    severity = models.CharField(
        _("重要度"), max_length=10, choices=Severity.choices, default=Severity.ERROR
    )
    message = models.TextField(_("メッセージ"))
    created_at = models.DateTimeField(_("発生日時"), default=timezone.now)

    class Meta:
        verbose_name = _("エラー詳細")
        verbose_name_plural = _("エラー詳細")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["employee_code"], name="error_employee_code"),
            models.Index(fields=["code", "-created_at"], name="error_code_newest"),
        ]

    def __str__(self) -> str:
        return self.message


class ClusterHeartbeat(models.Model):
    """Written by the cluster's dispatcher every minute; /healthz reads it."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} {self.beat_at:%Y-%m-%d %H:%M:%S}"
