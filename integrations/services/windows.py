"""KOT's API-forbidden windows, as the portal shows and plans around them (SPEC 5)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def window_end(at: datetime | None = None) -> datetime | None:
    """End of the KOT forbidden window containing ``at`` (default now), or None."""
    from connectors.kot import forbidden_window_end

    return forbidden_window_end(at or timezone.now())


def current_window_notice(at: datetime | None = None) -> str:
    """The notice every tenant page shows during a window ("" outside)."""
    end = window_end(at)
    if end is None:
        return ""
    local = timezone.localtime(end)
    return (
        "ただいまKING OF TIMEのAPI利用禁止時間帯(08:30〜10:00、17:30〜18:30)です。"
        f"KING OF TIMEを使う処理は{local:%H:%M}以降に自動で実行されます。"
    )


def window_wait_message(end: datetime) -> str:
    """What a run that waits for a window's end says."""
    return (
        "KING OF TIMEのAPI利用禁止時間帯のため、"
        f"{timezone.localtime(end):%H:%M}以降に自動で実行します。"
    )
