"""The login backend: Django's, except that a deactivated tenant member cannot log in.

A member is deactivated on the membership (TenantMembership.is_active, audited with the
tenant's other changes), not on the user. Sessions already open are ended by the tenant pages'
gate (portal.decorators.tenant_page), which reads the membership on every page anyway, so
loading the session's user costs no extra query.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from integrations.models import TenantMembership


class MemberBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return not TenantMembership.objects.filter(user_id=user.pk, is_active=False).exists()

    def get_user(self, user_id):
        User = get_user_model()
        try:
            user = User._default_manager.get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if super().user_can_authenticate(user) else None
