"""The gate in front of every tenant page: login, membership, subscription, terms consent."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from integrations.models import TenantMembership, TermsConsent


def has_accepted_terms(user) -> bool:
    return TermsConsent.objects.filter(user=user, version=settings.TERMS_VERSION).exists()


def tenant_page(
    view=None, *, consent: bool = True, subscription: bool = True, admin_only: bool = False
):
    """Let only a tenant's own users in, and set ``request.tenant`` and ``request.membership``.

    Anonymous users go to the login page; accounts without a tenant (support staff) get a page
    pointing to the admin; a tenant that is not active gets ご利用申込案内; a user who has not
    accepted the current terms goes to 利用規約同意 first. ``admin_only`` pages (settings, runs,
    members) answer 閲覧者 with 403 and a message saying why.
    """

    def decorate(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = (
                TenantMembership.objects.select_related("tenant").filter(user=request.user).first()
            )
            if membership is not None and not membership.is_active:
                # Deactivated while logged in: the session ends here.
                logout(request)
                return redirect_to_login(request.get_full_path())
            if membership is None:
                return render(request, "portal/no_tenant.html", status=403)
            request.tenant = membership.tenant
            request.membership = membership
            if subscription and not request.tenant.is_active:
                return render(
                    request,
                    "portal/subscription.html",
                    {"tenant": request.tenant, "support_email": settings.SUPPORT_EMAIL},
                )
            if consent and not has_accepted_terms(request.user):
                url = reverse("portal:terms")
                if request.method == "GET":
                    url += "?" + urlencode({"next": request.get_full_path()})
                return redirect(url)
            if admin_only and not membership.is_admin:
                return render(
                    request,
                    "portal/admin_only.html",
                    {"message": _("この操作は管理者のみ行えます。閲覧者は表示のみできます。")},
                    status=403,
                )
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
