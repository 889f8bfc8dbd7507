"""Build the connector clients for a tenant from its rows and the settings."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from connectors.kot import KotClient
from connectors.senselink import SenseLinkClient

from ..models import ConnectSetting, Tenant


def kot_client(tenant: Tenant) -> KotClient:
    return KotClient(
        base_url=settings.KOT_API_BASE_URL,
        token=tenant.kot_access_token,
        rate=settings.KOT_RATE_LIMIT or None,
        max_concurrency=settings.KOT_MAX_CONCURRENCY,
        throttle_retries=settings.KOT_THROTTLE_MAX_RESENDS,
        throttle_max_wait=settings.KOT_THROTTLE_MAX_WAIT_SECONDS,
        timeout=_timeout(),
        **transport_limits(),
    )


def senselink_client(setting: ConnectSetting) -> SenseLinkClient:
    return SenseLinkClient(
        base_url=setting.senselink_url,
        app_key=setting.app_key,
        app_secret=setting.app_secret,
        allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS,
        rate=settings.SENSELINK_RATE_LIMIT or None,
        timeout=_timeout(),
        **transport_limits(),
        max_pages=settings.SENSELINK_MAX_PAGES,
        record_margin=timedelta(hours=settings.SENSELINK_RECORD_MARGIN_HOURS),
    )


def transport_limits() -> dict[str, float | int]:
    """The overall deadline and body cap of every call (connectors.transport)."""
    return {
        "deadline": settings.UPSTREAM_CALL_DEADLINE_SECONDS,
        "max_body_bytes": settings.UPSTREAM_MAX_BODY_BYTES,
    }


def _timeout() -> tuple[float, float]:
    return (settings.CONNECT_TIMEOUT_SECONDS, settings.READ_TIMEOUT_SECONDS)


def connect_setting(tenant: Tenant) -> ConnectSetting | None:
    return tenant.connect_settings.filter(connector=ConnectSetting.Connector.SENSELINK).first()
