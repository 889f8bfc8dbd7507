from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.apps import DefaultConfig as OtpStaticConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as OtpTotpConfig
from django_q.apps import DjangoQConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "ポータル"


# The libraries' apps under Japanese names in the admin (their models' and fields' names are
# translated in locale/ja/LC_MESSAGES/django.po).


class TaskQueueConfig(DjangoQConfig):
    """django-q2: the syncs', mails' and schedules' task queue."""

    verbose_name = _("タスクキュー")


class TotpDevicesConfig(OtpTotpConfig):
    """django-otp's TOTP devices (the staff's second factor)."""

    verbose_name = _("二要素認証(認証アプリ)")


class RecoveryCodesConfig(OtpStaticConfig):
    """django-otp's static devices: the recovery codes."""

    verbose_name = _("二要素認証(回復コード)")


class LoginLockoutConfig(AxesConfig):
    """django-axes: failed logins and lock-outs (support unlocks them in the admin)."""

    verbose_name = _("ログイン制限")

    def ready(self) -> None:
        super().ready()
        # django-axes names its rows in English ("Attempted Access: …", "Access Log for …"):
        # the admin's titles, breadcrumbs and checkboxes show these names.
        from axes.models import AccessAttempt, AccessFailureLog, AccessLog

        AccessAttempt.__str__ = _attempt_name  # type: ignore[method-assign]
        AccessFailureLog.__str__ = _attempt_name  # type: ignore[method-assign]
        AccessLog.__str__ = _login_name  # type: ignore[method-assign]


def _attempt_name(attempt) -> str:
    return f"{attempt.username or '-'}({attempt.ip_address or '-'})のログイン失敗"


def _login_name(log) -> str:
    at = timezone.localtime(log.attempt_time)
    return f"{log.username or '-'}({log.ip_address or '-'})のログイン {at:%Y-%m-%d %H:%M}"
