"""SenseLink push (issue 15 item 2): a receiving token per setting, the subscription's state and
the received messages (deduplicated by messageId)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import integrations.models


def fill_push_tokens(apps, schema_editor):
    # One token per row: a callable default in AddField is evaluated once for every row.
    ConnectSetting = apps.get_model("integrations", "ConnectSetting")
    for setting in ConnectSetting.objects.filter(push_token="").only("pk"):
        ConnectSetting.objects.filter(pk=setting.pk).update(
            push_token=integrations.models.new_push_token()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_realtime_ledger"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectsetting",
            name="push_token",
            field=models.CharField(
                default="", editable=False, max_length=64, verbose_name="プッシュ受信トークン"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_push_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="connectsetting",
            name="push_token",
            field=models.CharField(
                default=integrations.models.new_push_token,
                editable=False,
                max_length=64,
                unique=True,
                verbose_name="プッシュ受信トークン",
            ),
        ),
        migrations.CreateModel(
            name="PushReceiver",
            fields=[
                (
                    "setting",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="push_receiver",
                        serialize=False,
                        to="integrations.connectsetting",
                        verbose_name="連携設定",
                    ),
                ),
                ("first_push_at", models.DateTimeField(verbose_name="最初のプッシュ受信")),
                ("last_push_at", models.DateTimeField(verbose_name="最新のプッシュ受信")),
                (
                    "push_count",
                    models.PositiveIntegerField(default=0, verbose_name="プッシュ受信数"),
                ),
                (
                    "unannounced_since",
                    models.DateTimeField(blank=True, null=True, verbose_name="未通知のレコード"),
                ),
                (
                    "stopped_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="停止を検出"),
                ),
            ],
            options={
                "verbose_name": "イベントサブスクリプション",
                "verbose_name_plural": "イベントサブスクリプション",
            },
        ),
        migrations.CreateModel(
            name="PushMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("message_id", models.CharField(max_length=128, verbose_name="messageId")),
                (
                    "event_type",
                    models.CharField(
                        blank=True, default="", max_length=16, verbose_name="eventType"
                    ),
                ),
                (
                    "send_time",
                    models.CharField(
                        blank=True, default="", max_length=32, verbose_name="sendTime"
                    ),
                ),
                (
                    "received_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="受信日時"
                    ),
                ),
                (
                    "setting",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="push_messages",
                        to="integrations.connectsetting",
                        verbose_name="連携設定",
                    ),
                ),
            ],
            options={
                "verbose_name": "プッシュ受信",
                "verbose_name_plural": "プッシュ受信",
                "indexes": [models.Index(fields=["received_at"], name="push_received_at")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("setting", "message_id"), name="one_push_per_message_id"
                    )
                ],
            },
        ),
    ]
