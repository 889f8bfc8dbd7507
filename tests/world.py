"""The test world, named once (as healthchecks' ``hc/test.py`` names alice, bob and charlie).

Every tenant a test builds is one of these names, made by its ``make_*`` function below (the
one builder, ``make_tenant``, gives each its KOT token and SenseLink: the sandbox's when the
test has one, placeholders otherwise). Options a test needs (a status, setting fields) are
arguments; the names keep their meaning:

* ``acme`` — the customer the test is about. Active.
* ``globex`` — another customer: what acme must never see or change. Active unless the test
  says otherwise (the ``world`` fixture makes it 未申込, not subscribed, to show a tenant
  without a subscription as well).
* ``initech`` — a third customer, for lists of several and for a token no other tenant holds.
* ``bare`` — a customer whose KOT token and App Secret are not registered yet (tests blank
  them after creation where that matters).

People: ``acme-hr`` and ``globex-hr``, each tenant's administrator in the ``world`` fixture
(tests/conftest.py); alice (acme's 管理者), victor (acme's 閲覧者), gina (globex's 管理者) and
sam (the support desk) in the accounts tests' ``team`` (tests/accounts_world.py); ``support``,
the desk's non-superuser staff account (tests/admin_helpers.py).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

PASSWORD = "correct-horse-battery-staple-9"


def make_tenant(slug: str, *, sandbox=None, status: str = "active", **setting_fields):
    """A tenant and its SenseLink ConnectSetting (the one builder behind the names)."""
    from integrations.models import ConnectSetting, Tenant

    tenant = Tenant.objects.create(
        name=f"{slug} 株式会社",
        slug=slug,
        subscription_status=status,
        kot_access_token=sandbox.kot_token if sandbox else "kot-token-" + slug,
        contact_email=f"hr@{slug}.example.jp",
    )
    fields = {
        "senselink_url": sandbox.senselink_url if sandbox else "https://link.example.jp/",
        "app_key": sandbox.app_key if sandbox else "appkey-" + slug,
        "app_secret": sandbox.app_secret if sandbox else "appsecret-" + slug,
    }
    fields.update(setting_fields)
    ConnectSetting.objects.create(tenant=tenant, **fields)
    return tenant


def make_acme(**options):
    return make_tenant("acme", **options)


def make_globex(**options):
    return make_tenant("globex", **options)


def make_initech(**options):
    return make_tenant("initech", **options)


def make_bare(**options):
    return make_tenant("bare", **options)


def make_tenant_user(tenant, username: str):
    """A tenant administrator (the tenant pages' login) with the world's password."""
    from integrations.models import TenantMembership

    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    TenantMembership.objects.create(user=user, tenant=tenant)
    return user
