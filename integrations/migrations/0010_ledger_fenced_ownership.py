"""The punch ledger's rows are fenced by their owner's lease, never aged (issue 18).

``reserved_at`` keeps the reservation time (the old ``sent_at``); ``sent_at`` becomes the moment
of the POST (blank while reserved); ``version`` lets a writer change a row only while it is the
one it saw before reading KOT.
"""

from django.db import migrations, models
from django.db.models import F


def reserved_from_sent(apps, schema_editor):
    PunchLedger = apps.get_model("integrations", "PunchLedger")
    PunchLedger.objects.update(reserved_at=F("sent_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0009_ledger_codes_any_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="punchledger",
            name="reserved_at",
            field=models.DateTimeField(null=True, verbose_name="確保日時"),
        ),
        migrations.RunPython(reserved_from_sent, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="punchledger",
            name="reserved_at",
            field=models.DateTimeField(verbose_name="確保日時"),
        ),
        migrations.AlterField(
            model_name="punchledger",
            name="sent_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="送信日時"),
        ),
        migrations.AddField(
            model_name="punchledger",
            name="version",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="版"),
        ),
        migrations.AlterField(
            model_name="punchledger",
            name="owner",
            field=models.CharField(editable=False, max_length=64, verbose_name="送信者"),
        ),
        migrations.RemoveIndex(model_name="punchledger", name="ledger_tenant_state"),
        migrations.AddIndex(
            model_name="punchledger",
            index=models.Index(
                fields=["tenant", "state", "working_date"], name="ledger_tenant_state"
            ),
        ),
    ]
