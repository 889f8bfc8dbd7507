"""Customers and their connector settings (SPEC 2): Tenant and ConnectSetting."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..fields import SecretField, secret_digest
from ..kinds import KINDS
from ..validators import forbidden_hours, validate_person_group_ids, validate_senselink_url

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
