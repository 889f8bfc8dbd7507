"""The slim tenant pages (SPEC 3): login, terms, コネクト一覧, 連携設定, 手動実行, 連携ログ, and
the accounts (password reset, invitations, メンバー管理, 二段階認証, 変更履歴)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import accounts, two_factor, views
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
    path(
        "password/reset/",
        accounts.ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="portal/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        accounts.MemberPasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="portal/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("invite/<uidb64>/<token>/", accounts.InviteAcceptView.as_view(), name="invite_accept"),
    path("account/two-factor/", two_factor.setup, name="two_factor"),
    path("account/two-factor/verify/", two_factor.verify, name="two_factor_verify"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("account/two-factor/disable/", two_factor.disable, name="two_factor_disable"),
    path("members/", accounts.member_list, name="members"),
    path("members/<int:member_id>/", accounts.member_update, name="member_update"),
    path("members/<int:member_id>/invite/", accounts.member_invite, name="member_invite"),
    path("history/", views.history, name="history"),
    path("terms/", views.terms, name="terms"),
    path("", views.connect_list, name="connect_list"),
    path("runs/log/", views.run_log, name="run_log"),
    path("runs/<int:run_id>/errors/", views.run_errors, name="run_errors"),
    path("runs/export.csv", views.runs_csv, name="runs_csv"),
    path("runs/<int:run_id>/errors.csv", views.run_errors_csv, name="run_errors_csv"),
    path("connects/new/settings/", views.connect_settings_new, name="connect_settings_new"),
    path("connects/<int:setting_id>/settings/", views.connect_settings, name="connect_settings"),
    path("connects/<int:setting_id>/preview/", views.connect_preview, name="connect_preview"),
    path("connects/<int:setting_id>/run/", views.manual_run, name="manual_run"),
]
