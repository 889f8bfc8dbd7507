"""demo: the demo tenant and accounts `make run` logs you in with, pointing at the sandbox."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
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
SUPPORT_USER = ("support", "support-portal-2026")


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant, a tenant user and a support superuser."

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
            support, created = User.objects.get_or_create(
                username=SUPPORT_USER[0], defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                support.set_password(SUPPORT_USER[1])
                support.save()
        (tenant_user, tenant_password), (support_user, support_password) = TENANT_USER, SUPPORT_USER
        self.stdout.write(
            f"\nDemo ready (sandbox KOT on :8701, SenseLink on :{senselink_port}):\n"
            f"  tenant pages  http://127.0.0.1:8000/        user {tenant_user} / password {tenant_password}\n"
            f"  support admin http://127.0.0.1:8000/admin/  user {support_user} / password {support_password}\n"
        )
