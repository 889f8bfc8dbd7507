"""reencrypt_secrets: re-save every secret under the first FIELD_ENCRYPTION_KEY (key rotation).

Rotation: put the new key first in FIELD_ENCRYPTION_KEY (keep the old ones after it), deploy,
run this command, then drop the old keys. It first checks that every stored secret decrypts with
the configured keys and changes nothing if one does not.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.fields import SecretDecryptionError, secret_digest
from integrations.models import ConnectSetting, Tenant

SECRET_COLUMNS = [(Tenant, "kot_access_token"), (ConnectSetting, "app_secret")]


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first FIELD_ENCRYPTION_KEY."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Only check that every secret decrypts."
        )

    def handle(self, *args, check: bool, **options):
        plain: list[tuple[type, str, int, str]] = []
        broken: list[str] = []
        for model, field in SECRET_COLUMNS:
            for pk in model.objects.values_list("pk", flat=True).iterator():
                try:
                    value = model.objects.filter(pk=pk).values_list(field, flat=True).get()
                except SecretDecryptionError:
                    broken.append(f"{model.__name__} #{pk} {field}")
                    continue
                if value:
                    plain.append((model, field, pk, value))
        if broken:
            raise CommandError(
                "These secrets do not decrypt with the configured keys; nothing was changed. "
                "Add the key they were written with to FIELD_ENCRYPTION_KEY: " + ", ".join(broken)
            )
        if check:
            self.stdout.write(f"All {len(plain)} stored secrets decrypt.")
            return
        with transaction.atomic():
            for model, field, pk, value in plain:
                # update() encrypts with the first key; the token's digest (keyed from the
                # first key too) is refreshed; no other column is touched.
                changes = {field: value}
                if model is Tenant:
                    changes["kot_token_digest"] = secret_digest(value)
                model.objects.filter(pk=pk).update(**changes)
        self.stdout.write(f"Re-encrypted {len(plain)} secrets with the first key.")
