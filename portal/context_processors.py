"""Template context shared by every tenant page."""

from __future__ import annotations

from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    from integrations.services.push import stopped_notice
    from integrations.services.windows import current_window_notice

    tenant = getattr(request, "tenant", None)
    return {
        "kot_window_notice": current_window_notice(),
        # One query on tenant pages only: a stopped SenseLink push subscription.
        "push_stopped_notice": stopped_notice(tenant.pk) if tenant is not None else None,
    }
