"""Staff's second factors (django-otp's devices), in Japanese: a list to see who enrolled, and
deleting a device as the one thing done here — a superuser's reset for someone who lost both
the phone and the recovery codes (they enrol again at their next login). Secrets are never
shown; devices are created only by enrolling."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)


class _DeviceAdmin(admin.ModelAdmin[Any]):
    list_display = ["user_name", "device_name", "is_confirmed"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    list_display_links = None

    @admin.display(description=_("ユーザー"), ordering="user__username")
    def user_name(self, obj: Any) -> str:
        return obj.user.get_username()

    @admin.display(description=_("名前"), ordering="name")
    def device_name(self, obj: Any) -> str:
        return obj.name

    @admin.display(description=_("確認済み"), boolean=True, ordering="confirmed")
    def is_confirmed(self, obj: Any) -> bool:
        return obj.confirmed

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(TOTPDevice)
class TotpDeviceAdmin(_DeviceAdmin):
    pass


@admin.register(StaticDevice)
class RecoveryCodesAdmin(_DeviceAdmin):
    pass
