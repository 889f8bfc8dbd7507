"""The data contract (SPEC section 2): tenants, their connector settings, runs and errors."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import FittedCharField, SecretField, secret_digest
from .kinds import KINDS
from .validators import forbidden_hours, validate_person_group_ids, validate_senselink_url

HOURS = [(h, f"{h}") for h in range(24)]
PUSH_PATH_PREFIX = "/hooks/senselink/"


def new_push_token() -> str:
    """An unguessable receiving token for SenseLink's event subscription (32 random bytes)."""
    return secrets.token_urlsafe(32)


DAYS = [(d, f"{d}") for d in range(1, 32)]


class Tenant(models.Model):
    """One customer company."""

    class Subscription(models.TextChoices):
        ACTIVE = "active", _("利用中")
        NOT_SUBSCRIBED = "not_subscribed", _("未申込")
        SUSPENDED = "suspended", _("停止中")

    name = models.CharField(_("会社名"), max_length=200)
    slug = models.SlugField(_("スラッグ"), max_length=64, unique=True)
    subscription_status = models.CharField(
        _("契約状態"),
        max_length=20,
        choices=Subscription.choices,
        default=Subscription.NOT_SUBSCRIBED,
    )
    kot_access_token = SecretField(_("KING OF TIME アクセストークン"), blank=True, default="")
    # A keyed hash of the token (fields.secret_digest), kept by save(): one KOT token, one
    # tenant (two tenants with one token would post every punch twice), checked in clean().
    kot_token_digest = models.CharField(
        max_length=64, blank=True, default="", editable=False, db_index=True
    )
    contact_email = models.EmailField(_("連絡先メールアドレス"), blank=True, default="")
    notify_contact = models.BooleanField(_("失敗時に連絡先へ通知"), default=True)
    notify_support = models.BooleanField(_("失敗時にサポートへ通知"), default=True)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now)

    class Meta:
        verbose_name = _("テナント")
        verbose_name_plural = _("テナント")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # The digest follows the token wherever it is set (forms, admin, scripts).
        self.kot_token_digest = secret_digest(self.kot_access_token)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "kot_access_token" in update_fields:
            kwargs["update_fields"] = {*update_fields, "kot_token_digest"}
        super().save(*args, **kwargs)
        self._stored_kot_token = self.kot_access_token

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # What was stored, so clean() checks the token only when it changes.
        instance._stored_kot_token = instance.__dict__.get("kot_access_token")
        return instance

    def kot_token_problem(self, token: str) -> str | None:
        """Why ``token`` cannot be this tenant's (another tenant holds it), or None.

        Compared by keyed digest, never by ciphertext. The message names neither the token nor
        the other tenant: a tenant must learn neither.
        """
        if not token:
            return None
        taken = Tenant.objects.filter(kot_token_digest=secret_digest(token))
        if self.pk:
            taken = taken.exclude(pk=self.pk)
        if not taken.exists():
            return None
        return str(
            _(
                "このアクセストークンは登録できません。KING OF TIMEで発行した、この会社専用の"
                "アクセストークンを入力してください。"
            )
        )

    def clean(self) -> None:
        # One KOT token, one tenant (two would post every punch twice); checked when it changes.
        token = self.kot_access_token
        if token and token != getattr(self, "_stored_kot_token", None):
            problem = self.kot_token_problem(token)
            if problem:
                raise ValidationError({"kot_access_token": problem}, code="kot_token_taken")

    @property
    def is_active(self) -> bool:
        return self.subscription_status == self.Subscription.ACTIVE

    def get_additional_data(self) -> dict:
        # Stored with each audit row (django-auditlog): the tenant whose 変更履歴 shows it.
        return {"tenant_id": self.pk}


class ConnectSetting(models.Model):
    """A tenant's settings for one connector (today only SenseLink)."""

    class Connector(models.TextChoices):
        SENSELINK = "senselink", _("SenseThunder連携")

    class AttendanceMode(models.TextChoices):
        CLOCK_IN = "clock_in", _("出勤のみ連携")
        CLOCK_IN_OUT = "clock_in_out", _("出勤・退勤の連携")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("手動実行する")
        SCHEDULED = "scheduled", _("スケジュール実行する")

    class TargetDay(models.TextChoices):
        PREVIOUS = "previous", _("前日")
        SAME = "same", _("当日")

    class Interval(models.TextChoices):
        DAILY = "daily", _("毎日")
        MONTHLY = "monthly", _("毎月")

    class ResignedPolicy(models.TextChoices):
        KEEP = "keep", _("SenseLinkに残す")
        DELETE = "delete", _("SenseLinkから削除する")

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="connect_settings",
        verbose_name=_("テナント"),
    )
    connector = models.CharField(
        _("コネクト"), max_length=20, choices=Connector.choices, default=Connector.SENSELINK
    )
    senselink_url = models.CharField(
        _("SenseLink URL"),
        max_length=200,
        blank=True,
        default="",
        validators=[validate_senselink_url],
        help_text=_("例: https://link.japancv.co.jp/"),
    )
    app_key = models.CharField(_("Appキー"), max_length=100, blank=True, default="")
    app_secret = SecretField(_("Appシークレット"), blank=True, default="")

    attendance_mode = models.CharField(
        _("勤怠連携の項目"),
        max_length=20,
        choices=AttendanceMode.choices,
        default=AttendanceMode.CLOCK_IN,
    )
    attendance_trigger = models.CharField(
        _("勤怠連携の連携タイミング"),
        max_length=20,
        choices=Trigger.choices,
        default=Trigger.MANUAL,
    )
    attendance_hour = models.PositiveSmallIntegerField(
        _("勤怠連携の実行時刻(時)"),
        choices=HOURS,
        default=3,
        validators=[MinValueValidator(0), MaxValueValidator(23)],
    )
    attendance_target_day = models.CharField(
        _("勤怠連携の対象日"), max_length=10, choices=TargetDay.choices, default=TargetDay.PREVIOUS
    )
    employee_trigger = models.CharField(
        _("社員情報連携の連携タイミング"),
        max_length=20,
        choices=Trigger.choices,
        default=Trigger.MANUAL,
    )
    employee_interval = models.CharField(
        _("社員情報連携の実行間隔"), max_length=10, choices=Interval.choices, default=Interval.DAILY
    )
    employee_day = models.PositiveSmallIntegerField(
        _("社員情報連携の実行日"),
        choices=DAYS,
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
    )
    employee_hour = models.PositiveSmallIntegerField(
        _("社員情報連携の実行時刻(時)"),
        choices=HOURS,
        default=2,
        validators=[MinValueValidator(0), MaxValueValidator(23)],
    )
    resigned_policy = models.CharField(
        _("退職者の扱い"),
        max_length=10,
        choices=ResignedPolicy.choices,
        default=ResignedPolicy.KEEP,
    )
    deletion_guard_count = models.PositiveIntegerField(
        _("一括削除の上限(人数)"),
        default=10,
        help_text=_("1回の社員情報連携でこの人数を超えて削除する場合は、削除せずに停止します。"),
    )
    deletion_guard_percent = models.PositiveSmallIntegerField(
        _("一括削除の上限(割合%)"),
        default=20,
        validators=[MaxValueValidator(100)],
        help_text=_("SenseLinkの登録者のこの割合を超えて削除する場合は、削除せずに停止します。"),
    )
    creation_guard_count = models.PositiveIntegerField(
        _("一括登録の上限(人数)"),
        default=10,
        help_text=_(
            "SenseLinkに既に登録者がいるとき、1回の社員情報連携で新しく登録する人数がこの人数と"
            "下の割合の両方を超える場合は、何も登録せずに停止します(従業員番号の不一致による"
            "二重登録を防ぎます)。"
        ),
    )
    creation_guard_percent = models.PositiveSmallIntegerField(
        _("一括登録の上限(割合%)"),
        default=20,
        validators=[MaxValueValidator(100)],
        help_text=_(
            "SenseLinkの登録者数に対する、1回で新しく登録する人数の割合の上限です。"
            "上の人数とこの割合の両方を超えた場合に停止します。"
        ),
    )
    person_group_ids = models.CharField(
        _("登録先の人員グループID"),
        max_length=500,
        blank=True,
        default="",
        validators=[validate_person_group_ids],
        help_text=_(
            "新しく登録する人員を追加するSenseLinkの人員グループ(登録者グループ)のID。"
            "複数の場合はカンマ区切り(例: 3,12)。IDはSenseLinkの登録者グループの画面か、"
            "連携設定の[人員グループを読み込む]で確認できます。空欄の場合、新しい人員はどの"
            "人員グループにも入らず、どの端末でも認識されません(登録後にSenseLinkで"
            "グループに追加してください)。"
        ),
    )
    update_persons = models.BooleanField(
        _("既存の人員を更新する"),
        default=False,
        help_text=_(
            "オンの場合、氏名・生年月日・入社年月日・メールアドレスが異なる既存の人員を、"
            "異なる項目だけ更新します(顔写真と人員グループは送りません)。SenseLinkの更新APIは"
            "公開資料に記載がないため、実行ごとに更新した人員を読み直し、送っていない項目"
            "(顔写真など)が変わった場合は更新を止めて自動でオフにします。サポートが設定します。"
        ),
    )
    realtime_clock_in = models.BooleanField(
        _("リアルタイム出勤連携"),
        default=False,
        help_text=_("出勤は数分以内に、退勤は翌日の勤怠連携で打刻されます"),
    )
    realtime_interval_minutes = models.PositiveSmallIntegerField(
        _("リアルタイム出勤連携の間隔(分)"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    day_change_time = models.TimeField(
        _("日付変更時刻"),
        null=True,
        blank=True,
        help_text=_(
            "勤務日が始まる時刻です。空欄の場合はKING OF TIMEの所属ごとの日付変更時刻を"
            "使います(勤怠連携と接続テストで読み込みます)。入力すると全従業員にこの時刻を"
            "使います。例: 5:00の場合、22:00〜翌3:00の夜勤は前日の勤務日として出勤・退勤を"
            "打刻します。"
        ),
    )
    # The secret part of the push receiving path (SenseLink cannot authenticate its pushes):
    # never logged or shown outside the tenant's settings page and the admin.
    push_token = models.CharField(
        _("プッシュ受信トークン"),
        max_length=64,
        unique=True,
        default=new_push_token,
        editable=False,
    )
    attendance_paused = models.BooleanField(_("勤怠連携を一時停止"), default=False)
    employee_paused = models.BooleanField(_("社員情報連携を一時停止"), default=False)
    updated_at = models.DateTimeField(_("更新日時"), auto_now=True)

    class Meta:
        verbose_name = _("連携設定")
        verbose_name_plural = _("連携設定")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "connector"], name="one_setting_per_tenant_connector"
            ),
            models.CheckConstraint(
                condition=Q(attendance_hour__gte=0, attendance_hour__lte=23),
                name="attendance_hour_0_23",
            ),
            models.CheckConstraint(
                condition=Q(employee_hour__gte=0, employee_hour__lte=23),
                name="employee_hour_0_23",
            ),
            models.CheckConstraint(
                condition=Q(employee_day__gte=1, employee_day__lte=31), name="employee_day_1_31"
            ),
            models.CheckConstraint(
                condition=Q(deletion_guard_percent__lte=100), name="deletion_guard_percent_le_100"
            ),
            models.CheckConstraint(
                condition=Q(creation_guard_percent__lte=100), name="creation_guard_percent_le_100"
            ),
            models.CheckConstraint(
                condition=Q(realtime_interval_minutes__gte=1, realtime_interval_minutes__lte=60),
                name="realtime_interval_1_60",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} / {self.get_connector_display()}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # Saved: the next change is judged against what is stored now.
        self._stored = {"senselink_url": self.senselink_url, "app_secret": self.app_secret}
        self.entered_secrets = set()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # What was stored, so clean() sees a changed URL and whether a secret came with it.
        instance._stored = {
            name: instance.__dict__.get(name) for name in ("senselink_url", "app_secret")
        }
        instance.entered_secrets = set()
        return instance

    def enter_app_secret(self, value: str) -> None:
        """Set the App Secret as typed in this change (it may equal the stored one)."""
        self.app_secret = value
        self.entered_secrets = {*getattr(self, "entered_secrets", set()), "app_secret"}

    def url_change_without_secret(self) -> bool:
        """Whether this change points a stored secret at another SenseLink URL.

        The stored secret signs requests only to the URL it was saved with: a new URL needs the
        secret typed in the same change, so nobody who can edit the URL (a tenant session, a
        support account, a script) can send valid signatures to a server of their choosing.
        """
        stored = getattr(self, "_stored", None)
        if not self.pk or not stored or not stored["app_secret"]:
            return False
        if self.senselink_url.strip() == (stored["senselink_url"] or "").strip():
            return False
        entered = "app_secret" in getattr(self, "entered_secrets", set())
        return not entered and self.app_secret == stored["app_secret"]

    def clean(self) -> None:
        # A schedule must not start inside KOT's API-forbidden windows (SPEC 5): refused here,
        # so the admin, the tenant form and scripts share one rule.
        errors = {}
        if self.url_change_without_secret():
            errors["app_secret"] = _(
                "SenseLink URLを変更する場合は、Appシークレットも入力してください"
                "(登録済みのAppシークレットは、登録済みのURLにだけ使います)。"
            )
        message = _(
            "KING OF TIMEのAPI利用禁止時間帯(08:30〜10:00、17:30〜18:30)にかかる%(hour)s時は選べません。"
        )
        if (
            self.attendance_trigger == self.Trigger.SCHEDULED
            and self.attendance_hour in forbidden_hours()
        ):
            errors["attendance_hour"] = message % {"hour": self.attendance_hour}
        if (
            self.employee_trigger == self.Trigger.SCHEDULED
            and self.employee_hour in forbidden_hours()
        ):
            errors["employee_hour"] = message % {"hour": self.employee_hour}
        if (
            self.realtime_clock_in
            and self.attendance_mode == self.AttendanceMode.CLOCK_IN_OUT
            and self.attendance_trigger != self.Trigger.SCHEDULED
        ):
            # Real-time sends clock-ins only; the clock-outs come from the scheduled daily run.
            errors["realtime_clock_in"] = _(
                "出勤・退勤の連携でリアルタイム出勤連携を使うには、勤怠連携をスケジュール実行に"
                "してください(退勤は翌日の勤怠連携で打刻されます)。"
            )
        if errors:
            raise ValidationError(errors)

    def get_additional_data(self) -> dict:
        # Stored with each audit row (django-auditlog): the tenant whose 変更履歴 shows it.
        return {"tenant_id": self.tenant_id}

    @property
    def has_senselink_credentials(self) -> bool:
        return bool(self.senselink_url and self.app_key and self.app_secret)

    @property
    def senselink_push_path(self) -> str:
        """The path SenseLink's event subscription POSTs to: ``/hooks/senselink/<token>/``."""
        return f"{PUSH_PATH_PREFIX}{self.push_token}/"

    def is_paused(self, kind: str) -> bool:
        return getattr(self, KINDS[kind].paused_field)

    def trigger_for(self, kind: str) -> str:
        """manual / scheduled, from the kind's own field (integrations/kinds.py)."""
        return getattr(self, KINDS[kind].trigger_field)

    def hour_for(self, kind: str) -> int:
        """The JST hour of the kind's scheduled slot."""
        return getattr(self, KINDS[kind].hour_field)


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


class PushReceiver(models.Model):
    """What the portal knows of a setting's SenseLink event subscription (push).

    A row exists once a push arrived. ``stopped_at`` is set when a poll finds employee records
    that no push announced (SenseLink stops every later push after one failed push) and cleared
    by the next push (the subscription was restored).
    """

    setting = models.OneToOneField(
        ConnectSetting,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="push_receiver",
        verbose_name=_("連携設定"),
    )
    first_push_at = models.DateTimeField(_("最初のプッシュ受信"))
    last_push_at = models.DateTimeField(_("最新のプッシュ受信"))
    # Every push to the known path counts (a flood included), so the counters are 64-bit.
    push_count = models.PositiveBigIntegerField(_("プッシュ受信数"), default=0)
    # Pushes answered 200 but unusable: a body that is not a bounded JSON object (too large,
    # not JSON, not UTF-8, too deep, an array), or one without a usable messageId.
    unusable_count = models.PositiveBigIntegerField(_("読めないプッシュ"), default=0)
    last_unusable_at = models.DateTimeField(_("最新の読めないプッシュ"), null=True, blank=True)
    # Pushes beyond PUSH_MESSAGES_PER_MINUTE: answered 200 and counted, no PushMessage row.
    unstored_count = models.PositiveBigIntegerField(
        _("上限超過で保存しなかったプッシュ"), default=0
    )
    last_unstored_at = models.DateTimeField(_("最新の上限超過"), null=True, blank=True)
    # The sign time of the oldest employee record a poll found after the last push, while no
    # push has announced it yet; the subscription counts as stopped once it is older than the
    # grace delay.
    unannounced_since = models.DateTimeField(_("未通知のレコード"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("停止を検出"), null=True, blank=True)

    class Meta:
        verbose_name = _("イベントサブスクリプション")
        verbose_name_plural = _("イベントサブスクリプション")

    def __str__(self) -> str:
        return f"{self.setting} push"

    @property
    def is_stopped(self) -> bool:
        return self.stopped_at is not None


class PushMessage(models.Model):
    """One push received from SenseLink, kept to answer a repeated ``messageId`` with nothing."""

    setting = models.ForeignKey(
        ConnectSetting,
        on_delete=models.CASCADE,
        related_name="push_messages",
        verbose_name=_("連携設定"),
    )
    message_id = models.CharField(_("messageId"), max_length=128)
    event_type = models.CharField(_("eventType"), max_length=16, blank=True, default="")
    send_time = models.CharField(_("sendTime"), max_length=32, blank=True, default="")
    received_at = models.DateTimeField(_("受信日時"), default=timezone.now)

    class Meta:
        verbose_name = _("プッシュ受信")
        verbose_name_plural = _("プッシュ受信")
        constraints = [
            models.UniqueConstraint(
                fields=["setting", "message_id"], name="one_push_per_message_id"
            )
        ]
        indexes = [
            models.Index(fields=["received_at"], name="push_received_at"),
            # The receiver counts a setting's messages of the last minute (the flood bound).
            models.Index(fields=["setting", "received_at"], name="push_setting_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class TenantMembership(models.Model):
    """Makes a user a member of exactly one tenant (the tenant pages' login), with a role.

    管理者 change settings, run syncs and manage members; 閲覧者 only read (コネクト一覧, 連携ログ,
    エラー詳細, 変更履歴). An inactive membership cannot log in (portal.backends). The rules about
    the last administrator live in integrations/services/members.py.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", _("管理者")
        VIEWER = "viewer", _("閲覧者")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("権限"), max_length=10, choices=Role.choices, default=Role.ADMIN)
    is_active = models.BooleanField(
        _("有効"), default=True, help_text=_("無効にした利用者はログインできません。")
    )
    invited_at = models.DateTimeField(_("招待メール送信日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("テナント利用者")
        verbose_name_plural = _("テナント利用者")

    def __str__(self) -> str:
        return f"{self.user} ({self.tenant})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    def get_additional_data(self) -> dict:
        # Stored with each audit row (django-auditlog): the tenant whose 変更履歴 shows it.
        return {"tenant_id": self.tenant_id}


class TermsConsent(models.Model):
    """Who accepted which version of the terms, and when."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_consents"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="terms_consents")
    version = models.CharField(_("規約バージョン"), max_length=32)
    accepted_at = models.DateTimeField(_("同意日時"), default=timezone.now)

    class Meta:
        verbose_name = _("利用規約同意")
        verbose_name_plural = _("利用規約同意")
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="one_consent_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.version}"


class ClusterHeartbeat(models.Model):
    """Written by the cluster's dispatcher every minute; /healthz reads it."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} {self.beat_at:%Y-%m-%d %H:%M:%S}"


class KotDivision(models.Model):
    """A KOT division (所属) of a tenant and its 日付変更時刻, as last read from KOT (SPEC 4.6).

    Refreshed by each attendance run and each connection test, outside KOT's windows; read by
    ``services.workday`` to place a recognition on its working date.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="kot_divisions", verbose_name=_("テナント")
    )
    code = models.CharField(_("所属コード"), max_length=64)
    name = models.CharField(_("所属名"), max_length=200, blank=True, default="")
    day_border = models.TimeField(_("日付変更時刻"))
    refreshed_at = models.DateTimeField(_("取得日時"), default=timezone.now)

    class Meta:
        verbose_name = _("KING OF TIMEの所属")
        verbose_name_plural = _("KING OF TIMEの所属")
        ordering = ["tenant", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="one_division_per_tenant_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name} ({self.day_border:%H:%M})"


class KotEmployeeDivision(models.Model):
    """Which division a KOT employee belongs to, as last read from KOT.

    Kept so that a working date can be computed while KOT refuses reads (its windows).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # A KOT code as KOT sends it, whatever its length (a cut code could name another employee):
    # text, not a bounded column, so an over-long code is still keyed exactly (PostgreSQL).
    employee_code = models.TextField(_("従業員コード"))
    division_code = models.CharField(_("所属コード"), max_length=64)

    class Meta:
        verbose_name = _("従業員の所属")
        verbose_name_plural = _("従業員の所属")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_code"], name="one_division_per_tenant_employee"
            )
        ]

    def __str__(self) -> str:
        return f"{self.employee_code} → {self.division_code}"


class PunchLedger(models.Model):
    """One punch the portal sends to KOT: written *before* the POST, so it is sent once.

    One row per tenant, employee, working date and punch kind (unique in the database). Every
    writer (the attendance run, the real-time poll, reruns) goes through one protocol,
    ``services/punches.py``: the row is ``sending`` while its owner (``owner``: a run's attempt or
    a poll's lease token) holds it, ``posted`` on 2xx, ``failed`` on a definite refusal, and
    ``unknown`` when the answer may have landed (timeout, lost connection, any 5xx, or an owner
    that lost its lease after its POST). A row refused before KOT processed it is deleted
    (released). An unknown row is settled only by a KOT read that started after it became
    unknown: the writer notes ``version`` before reading and changes the row only if it is
    unchanged (docs/SYNC_ENGINE.md, "One sending protocol").
    """

    class State(models.TextChoices):
        SENDING = "sending", _("送信中")
        POSTED = "posted", _("登録済み")
        FAILED = "failed", _("失敗")
        UNKNOWN = "unknown", _("確認待ち")

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="punch_ledger", verbose_name=_("テナント")
    )
    # A KOT code as KOT sends it, whatever its length (a cut code could name another employee):
    # text, not a bounded column, so an over-long code is still keyed exactly (PostgreSQL).
    employee_code = models.TextField(_("従業員コード"))
    working_date = models.DateField(_("勤務日"))
    punch = models.CharField(_("打刻"), max_length=20, choices=SyncError.Punch.choices)
    state = models.CharField(_("状態"), max_length=10, choices=State.choices)
    punch_time = models.DateTimeField(_("打刻時刻"))
    # Who holds the row while it is sending: "poll:<setting>:<token>" or "run:<id>:<attempt>".
    # Another writer takes it only once that owner lost its lease (leases.fence), never by age.
    owner = models.CharField(_("送信者"), max_length=64, editable=False)
    run = models.ForeignKey(
        SyncRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ledger_rows",
        verbose_name=_("連携ログ"),
    )
    reserved_at = models.DateTimeField(_("確保日時"))
    # The moment of its POST (blank: reserved, not sent yet — a lost owner's row is released).
    sent_at = models.DateTimeField(_("送信日時"), null=True, blank=True)
    settled_at = models.DateTimeField(_("確定日時"), null=True, blank=True)
    # Bumped by every change of state or owner: a writer changes a row it saw before its KOT
    # read only while the version is the one it saw (its read is fresh for that row).
    version = models.PositiveIntegerField(_("版"), default=0, editable=False)

    class Meta:
        verbose_name = _("打刻台帳")
        verbose_name_plural = _("打刻台帳")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_code", "working_date", "punch"],
                name="one_ledger_row_per_punch",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "working_date"], name="ledger_tenant_state"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_code} {self.working_date} {self.get_punch_display()} {self.get_state_display()}"


class RealtimeState(models.Model):
    """A tenant's real-time poll: when it is due, whether one is queued or running, and where
    the last one stopped reading SenseLink's records (the feed cursor)."""

    setting = models.OneToOneField(
        ConnectSetting, on_delete=models.CASCADE, related_name="realtime_state"
    )
    next_poll_at = models.DateTimeField(_("次回確認予定"), null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    queued_reason = models.CharField(max_length=20, blank=True, default="", editable=False)
    poll_token = models.PositiveIntegerField(default=0, editable=False)
    poll_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_polled_at = models.DateTimeField(_("最終確認日時"), null=True, blank=True)
    last_record_time = models.DateTimeField(_("最新の認証時刻"), null=True, blank=True)
    # The record feed's cursor (connectors.record_feed.FeedCursor.to_json()).
    feed_cursor = models.JSONField(default=dict, blank=True, editable=False)
    # KOT employee code -> key, read outside KOT's windows (punches inside them need the key).
    employee_keys = models.JSONField(default=dict, blank=True, editable=False)
    keys_read_at = models.DateTimeField(null=True, blank=True, editable=False)
    # First recognitions that could not be sent yet: [[code, working date, ISO time], ...].
    pending = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        verbose_name = _("リアルタイム出勤連携の状態")
        verbose_name_plural = _("リアルタイム出勤連携の状態")
        indexes = [models.Index(fields=["next_poll_at"], name="realtime_due")]

    def __str__(self) -> str:
        return f"{self.setting} realtime"
