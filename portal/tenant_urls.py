"""The slim tenant pages (SPEC 3): login, terms, コネクト一覧, 連携設定, 手動実行, 連携ログ."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views
from .decorators import tenant_page

app_name = "portal"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="portal/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        tenant_page(consent=False, subscription=False)(
            views.ThrottledPasswordChangeView.as_view(
                template_name="portal/password_change.html",
                success_url=reverse_lazy("portal:password_change_done"),
            )
        ),
        name="password_change",
    ),
    path(
        "password/done/",
        tenant_page(consent=False, subscription=False)(
            auth_views.PasswordChangeDoneView.as_view(
                template_name="portal/password_change_done.html"
            )
        ),
        name="password_change_done",
    ),
    path("terms/", views.terms, name="terms"),
    path("", views.connect_list, name="connect_list"),
    path("runs/log/", views.run_log, name="run_log"),
    path("runs/<int:run_id>/errors/", views.run_errors, name="run_errors"),
    path("connects/new/settings/", views.connect_settings_new, name="connect_settings_new"),
    path("connects/<int:setting_id>/settings/", views.connect_settings, name="connect_settings"),
    path("connects/<int:setting_id>/preview/", views.connect_preview, name="connect_preview"),
    path("connects/<int:setting_id>/run/", views.manual_run, name="manual_run"),
]
