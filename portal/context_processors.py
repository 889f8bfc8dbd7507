"""Template context shared by every tenant page."""

from __future__ import annotations

from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    from integrations.services.windows import current_window_notice

    return {"kot_window_notice": current_window_notice()}
