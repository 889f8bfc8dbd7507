"""Walk every URL the portal has — tenant pages and the whole admin — as someone who must not
see it: another tenant's user (404/403), a tenant user in the admin (403), nobody (login)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from integrations.models import SyncError, SyncRun, Tenant, TermsConsent
from portal import tenant_urls

pytestmark = pytest.mark.django_db

# Tenant pages that take no id and are the user's own (they never show another tenant's data).
OWN_PAGES = {
    "login",
    "logout",
    "terms",
    "connect_list",
    "run_log",
    "connect_settings_new",
    "password_change",
    "password_change_done",
    "members",
    "history",
    "runs_csv",
    "two_factor",
    "two_factor_verify",
    "two_factor_recovery_codes",
    "two_factor_disable",
}
# Pages for people who are not logged in (password reset, an invitation's link).
PUBLIC_PAGES = {
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "invite_accept",
}


@pytest.fixture
def victim(world, settings):
    """globex (active, with a run and an error) is the tenant acme-hr must never reach."""
    Tenant.objects.filter(pk=world.globex.pk).update(subscription_status="active")
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    run = SyncRun.objects.create(
        tenant=world.globex, kind="attendance", trigger="manual", status="failure", failed_count=1
    )
    error = SyncError.objects.create(run=run, employee_code="0001", code="x", message="globex")
    world.ids = {
        "run_id": run.pk,
        "setting_id": world.globex.connect_settings.get().pk,
        "member_id": world.globex_user.membership.pk,
        "uidb64": "Mg",
        "token": "set-password",
    }
    world.objects = {
        "tenant": world.globex.pk,
        "syncrun": run.pk,
        "syncerror": error.pk,
        "connectsetting": world.ids["setting_id"],
        "tenantmembership": world.globex_user.membership.pk,
        "user": world.globex_user.pk,
    }
    return world


def tenant_patterns() -> list[URLPattern]:
    return [p for p in tenant_urls.urlpatterns if isinstance(p, URLPattern)]


def test_every_tenant_url_with_another_tenants_id_is_404(victim):
    client = Client()
    client.force_login(victim.acme_user)
    walked = 0
    for pattern in tenant_patterns():
        params = list(pattern.pattern.converters)
        if pattern.name in PUBLIC_PAGES:
            continue
        if not params:
            assert pattern.name in OWN_PAGES, f"new tenant URL {pattern.name}: add it to the walk"
            continue
        url = reverse(f"portal:{pattern.name}", kwargs={p: victim.ids[p] for p in params})
        for method in ("get", "post"):
            response = getattr(client, method)(
                url, {"kind": "employee", "target_date": "2026-11-24"}
            )
            assert response.status_code in (404, 405), (method, url, response.status_code)
            walked += 1
    assert walked >= 8


def test_every_tenant_url_sends_nobody_to_login(victim):
    client = Client()
    for pattern in tenant_patterns():
        if pattern.name in {"login", "logout"} | PUBLIC_PAGES:
            continue
        params = list(pattern.pattern.converters)
        url = reverse(f"portal:{pattern.name}", kwargs={p: victim.ids[p] for p in params})
        response = client.get(url)
        assert response.status_code in (302, 405), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("portal:login")), url


def admin_urls(victim) -> list[str]:
    """Every admin URL, object ids filled with globex's rows."""
    urls = []

    def walk(patterns, prefix: str, model_name: str | None):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                route = str(entry.pattern)
                name = route.split("/")[1] if route.count("/") >= 2 else None
                walk(entry.url_patterns, prefix + route, name or model_name)
                continue
            route = prefix + str(entry.pattern).replace("<str:kind>", "employee")
            if route.startswith("r/"):
                continue  # the content-type shortcut: it only redirects to an object's own URL
            object_id = victim.objects.get(model_name or "", victim.objects["tenant"])
            path = route.replace("<path:object_id>", str(object_id)).replace(
                "<int:object_id>", str(object_id)
            )
            path = path.replace("<id>", str(object_id)).replace("^", "").replace("$", "")
            if "<" in path or "(?P" in path:
                continue
            urls.append("/admin/" + path)

    walk(admin.site.get_urls(), "", None)
    urls += [f"/admin/{app}/" for app in ("auth", "django_q", "axes", "integrations")]
    return sorted(set(urls))


def test_a_tenant_user_gets_403_on_every_admin_url(victim):
    client = Client()
    client.force_login(victim.acme_user)
    urls = admin_urls(victim)
    assert len(urls) > 30
    for url in urls:
        if url.endswith("/login/"):
            continue
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert b"globex" not in response.content


def test_nobody_is_sent_to_the_admin_login_from_every_admin_url(victim):
    client = Client()
    for url in admin_urls(victim):
        if url.endswith(("/login/", "/logout/")):
            continue
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
