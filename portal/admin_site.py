"""The support admin's site: Django's, except that a signed-in tenant user gets 403, not a
login form, so a customer account can never be mistaken for a support account."""

from __future__ import annotations

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.templatetags.static import static
from django.utils.html import format_html

# The index lists the portal's own app first, its models in the order the desk uses them; the
# libraries' apps (ログイン制限, タスクキュー, 認証と認可) follow in Django's order.
FIRST_APP = "integrations"
MODEL_ORDER = [
    "tenant",
    "syncrun",
    "syncerror",
    "punchledger",
    "tenantmembership",
    "termsconsent",
]


class PortalAdminSite(admin.AdminSite):
    site_header = "KING OF TIME ⇄ SenseLink サポート管理"
    site_title = "サポート管理"
    index_title = "サポート管理"
    # The lists need the width (the run list's columns at 1280 px); the index and the
    # breadcrumbs lead everywhere.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            if app["app_label"] == FIRST_APP:
                app["models"].sort(key=_model_rank)
        return sorted(apps, key=lambda app: app["app_label"] != FIRST_APP)  # stable

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


def _model_rank(model: dict) -> int:
    name = model["object_name"].lower()
    return MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER)


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"

    def ready(self) -> None:
        super().ready()
        # Django gives its yes/no icons the alt text "True"/"False"/"None", which a screen
        # reader reads out in English; the admin's helpers import this function when called.
        from django.contrib.admin.templatetags import admin_list

        admin_list._boolean_icon = _boolean_icon


def _boolean_icon(value: bool | None) -> str:
    """Django's yes/no/unknown icon (admin_list._boolean_icon) with a Japanese alt text."""
    name = {True: "yes", False: "no", None: "unknown"}[value]
    alt = {True: "はい", False: "いいえ", None: "不明"}[value]
    return format_html('<img src="{}" alt="{}">', static(f"admin/img/icon-{name}.svg"), alt)
