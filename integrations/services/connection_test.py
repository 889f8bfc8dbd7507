"""接続テスト: call both APIs cheaply and say in plain Japanese what is wrong (SPEC 3.3)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from connectors.errors import ConnectorError
from connectors.kot import KotClient
from connectors.netcheck import UnsafeUrlError, check_senselink_url
from connectors.senselink import SenseLinkClient


@dataclass(frozen=True)
class CheckResult:
    service: str  # "KING OF TIME" / "SenseLink"
    ok: bool
    message: str


def check_kot(*, token: str) -> CheckResult:
    name = "KING OF TIME"
    if not token:
        return CheckResult(name, False, "アクセストークンが未登録です。")
    client = KotClient(base_url=settings.KOT_API_BASE_URL, token=token, max_retries=1)
    try:
        available = client.check_token()
    except ConnectorError as exc:
        return CheckResult(name, False, exc.message)
    if not available:
        return CheckResult(
            name,
            False,
            "アクセストークンが無効です。KING OF TIMEの全権管理者がトークンを再発行し、"
            "新しいトークンを登録してください。",
        )
    return CheckResult(name, True, "アクセストークンは有効です。")


def check_senselink(*, url: str, app_key: str, app_secret: str) -> CheckResult:
    name = "SenseLink"
    if not (url and app_key and app_secret):
        return CheckResult(
            name, False, "SenseLink URL・Appキー・Appシークレットを入力してください。"
        )
    try:
        check_senselink_url(url, allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS)
    except UnsafeUrlError as exc:
        return CheckResult(name, False, str(exc))
    client = SenseLinkClient(
        base_url=url,
        app_key=app_key,
        app_secret=app_secret,
        allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS,
        max_retries=1,
    )
    try:
        version = client.server_version()
    except ConnectorError as exc:
        return CheckResult(name, False, exc.message)
    return CheckResult(name, True, f"接続できました(サーバーバージョン {version})。")


def check_connections(*, token: str, url: str, app_key: str, app_secret: str) -> list[CheckResult]:
    """Both checks; takes plain values so a form can test what was typed before saving it."""
    return [
        check_kot(token=token),
        check_senselink(url=url, app_key=app_key, app_secret=app_secret),
    ]
