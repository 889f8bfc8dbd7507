"""Build the connector clients for a tenant from its rows and the settings."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

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
    return typed_senselink_client(
        url=setting.senselink_url, app_key=setting.app_key, app_secret=setting.app_secret
    )


@sensitive_variables("app_secret")
def typed_senselink_client(
    *, url: str, app_key: str, app_secret: str, interactive: bool = False
) -> SenseLinkClient:
    """A SenseLink client for these values: a setting's, or typed in a form and not saved yet.

    ``interactive`` (a person waits for the page): one retry and the short deadline.
    """
    retries = {"max_retries": 1} if interactive else {}
    return SenseLinkClient(
        base_url=url,
        app_key=app_key,
        app_secret=app_secret,
        allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS,
        rate=settings.SENSELINK_RATE_LIMIT or None,
        timeout=_timeout(),
        **transport_limits(interactive=interactive),
        **retries,
        max_pages=settings.SENSELINK_MAX_PAGES,
        record_margin=timedelta(hours=settings.SENSELINK_RECORD_MARGIN_HOURS),
    )


# A call made while a person waits for the page (connection test) gets at most this long, so
# its two tries on both APIs stay inside the web server's 30 s request timeout (PRODUCTION.md).
INTERACTIVE_DEADLINE_SECONDS = 6.0


def transport_limits(*, interactive: bool = False) -> dict[str, float | int]:
    """The overall deadline and body cap of every call (connectors.transport)."""
    deadline = settings.UPSTREAM_CALL_DEADLINE_SECONDS
    if interactive:
        deadline = min(deadline, INTERACTIVE_DEADLINE_SECONDS)
    return {"deadline": deadline, "max_body_bytes": settings.UPSTREAM_MAX_BODY_BYTES}


def _timeout() -> tuple[float, float]:
    return (settings.CONNECT_TIMEOUT_SECONDS, settings.READ_TIMEOUT_SECONDS)


def connect_setting(tenant: Tenant) -> ConnectSetting | None:
    return tenant.connect_settings.filter(connector=ConnectSetting.Connector.SENSELINK).first()
