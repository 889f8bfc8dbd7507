"""Real-time clock-in and push: the punch ledger, the poll's state, received pushes."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .runs import SyncError, SyncRun
from .tenants import ConnectSetting, Tenant


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
