"""demo: the demo tenant and accounts `make run` logs you in with, pointing at the sandbox."""

from __future__ import annotations

from io import StringIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connectors.sandbox import KOT_TOKEN, SENSELINK_APP_KEY, SENSELINK_APP_SECRET
from integrations.models import ConnectSetting, Tenant, TenantMembership

TENANT_USER = ("demo", "demo-portal-2026")
# The sandbox's person group "社員" (id 1), so that the demo's new persons reach the terminals.
DEMO_PERSON_GROUPS = "1"
# The sandbox starts with 3 hand-registered persons and 50 KOT employees: the first employee
# sync registers ~47 at once, which the default creation guard (10 persons and 20 %) would stop.
# The demo tenant allows its first sync through; a real tenant's first sync is let through once
# by support ("この実行のみ上限を超えて登録") or by raising these limits.
DEMO_CREATION_GUARD_COUNT = 200
# The support desk's everyday account: staff in the サポート group (setup_support_group), not a
# superuser, so the demo shows what the desk sees and may do. The superuser (secrets, the
# subscription status, users) is a separate account.
SUPPORT_USER = ("support", "support-portal-2026")
SUPERUSER = ("admin", "admin-portal-2026")


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo tenant, a tenant user, a support-desk account (the サポート "
        "group) and a superuser."
    )

    def add_arguments(self, parser):
        parser.add_argument("--senselink-port", type=int, default=8702)

    def handle(self, *args, senselink_port: int, **options):
        if not settings.DEBUG:
            raise CommandError("The demo accounts have well-known passwords: DEBUG only.")
        User = get_user_model()
        with transaction.atomic():
            tenant, _ = Tenant.objects.update_or_create(
                slug="demo",
                defaults={
                    "name": "デモ株式会社",
                    "subscription_status": Tenant.Subscription.ACTIVE,
                    "kot_access_token": KOT_TOKEN,
                    "contact_email": "hr@demo.example.jp",
                },
            )
            ConnectSetting.objects.update_or_create(
                tenant=tenant,
                connector=ConnectSetting.Connector.SENSELINK,
                defaults={
                    "senselink_url": f"http://127.0.0.1:{senselink_port}/",
                    "app_key": SENSELINK_APP_KEY,
                    "app_secret": SENSELINK_APP_SECRET,
                    "person_group_ids": DEMO_PERSON_GROUPS,
                    "creation_guard_count": DEMO_CREATION_GUARD_COUNT,
                },
            )
            user, created = User.objects.get_or_create(username=TENANT_USER[0])
            if created:
                user.set_password(TENANT_USER[1])
                user.save()
            TenantMembership.objects.get_or_create(user=user, defaults={"tenant": tenant})
            support, created = User.objects.get_or_create(username=SUPPORT_USER[0])
            if created:
                support.set_password(SUPPORT_USER[1])
            # An older demo made it a superuser: the desk's account is plain staff.
            support.is_superuser = False
            support.save()
            call_command("setup_support_group", SUPPORT_USER[0], stdout=StringIO())
            root, created = User.objects.get_or_create(
                username=SUPERUSER[0], defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                root.set_password(SUPERUSER[1])
                root.save()
        self.stdout.write(
            f"\nDemo ready (sandbox KOT on :8701, SenseLink on :{senselink_port}):\n"
            f"  tenant pages  http://127.0.0.1:8000/        user {TENANT_USER[0]} / password "
            f"{TENANT_USER[1]}  (the customer)\n"
            f"  support admin http://127.0.0.1:8000/admin/  user {SUPPORT_USER[0]} / password "
            f"{SUPPORT_USER[1]}  (サポート group: views, runs, unlocks)\n"
            f"  support admin http://127.0.0.1:8000/admin/  user {SUPERUSER[0]} / password "
            f"{SUPERUSER[1]}  (superuser: secrets, subscriptions, users)\n"
        )
