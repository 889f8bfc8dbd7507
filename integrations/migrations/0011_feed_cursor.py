"""The real-time record feed keeps one cursor that works whatever order SenseLink lists in."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0010_ledger_fenced_ownership"),
    ]

    operations = [
        migrations.AddField(
            model_name="realtimestate",
            name="feed_cursor",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        # The old cursor (day, page, last id) is not carried over: each tenant's first poll
        # after the deploy reads its day whole once; the punch ledger skips what was posted.
        migrations.RemoveField(model_name="realtimestate", name="feed_day"),
        migrations.RemoveField(model_name="realtimestate", name="feed_page"),
        migrations.RemoveField(model_name="realtimestate", name="feed_last_id"),
    ]
