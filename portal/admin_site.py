"""The support admin's site: Django's, except that a signed-in tenant user gets 403, not a
login form, so a customer account can never be mistaken for a support account."""

from __future__ import annotations

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied


class PortalAdminSite(admin.AdminSite):
    site_header = "KING OF TIME ⇄ SenseLink サポート管理"
    site_title = "サポート管理"
    index_title = "サポート管理"

    def has_permission(self, request):
        # With STAFF_REQUIRE_2FA, a session that has not passed the second factor is no staff
        # session (portal.two_factor's middleware sends it to the code page before this).
        if not super().has_permission(request):
            return False
        if settings.STAFF_REQUIRE_2FA:
            is_verified = getattr(request.user, "is_verified", None)
            return bool(is_verified and is_verified())
        return True

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            if request.user.is_authenticated and not request.user.is_staff:
                raise PermissionDenied
            if any("\x00" in value for values in request.GET.lists() for value in values[1]):
                # Search and filters take any Unicode; NUL alone PostgreSQL refuses in a string.
                query = request.GET.copy()
                for key, values in query.lists():
                    query.setlist(key, [value.replace("\x00", "") for value in values])
                request.GET = query
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, view)


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
