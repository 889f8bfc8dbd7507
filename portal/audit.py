"""Who made a change, for the audit trail (integrations/audit.py).

django-auditlog's middleware, except for the client address: it would take the left-most
X-Forwarded-For entry, which any client can write; this takes the address django-axes uses
(PROXY_COUNT in settings).
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware
from axes.helpers import get_client_ip_address


class AuditActorMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        return get_client_ip_address(request)

    @staticmethod
    def _get_remote_port(request):
        return None
