"""One KOT token, one tenant: a keyed digest of each tenant's token, filled for existing rows.
Upstream strings in SyncError fit their columns (cut with "…"; no schema change)."""

from django.db import migrations, models

import integrations.fields


def fill_digests(apps, schema_editor):
    from integrations.fields import secret_digest

    Tenant = apps.get_model("integrations", "Tenant")
    for tenant in Tenant.objects.exclude(kot_access_token="").only("pk", "kot_access_token"):
        Tenant.objects.filter(pk=tenant.pk).update(
            kot_token_digest=secret_digest(tenant.kot_access_token)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_fence_resumes"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="kot_token_digest",
            field=models.CharField(
                blank=True, db_index=True, default="", editable=False, max_length=64
            ),
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="syncerror",
            name="code",
            field=integrations.fields.FittedCharField(max_length=64, verbose_name="エラーコード"),
        ),
        migrations.AlterField(
            model_name="syncerror",
            name="employee_code",
            field=integrations.fields.FittedCharField(
                blank=True, default="", max_length=64, verbose_name="従業員コード"
            ),
        ),
    ]
