"""Basic admin registration (the full support admin is built on top of this)."""

from django.contrib import admin

from .models import ConnectSetting, SyncError, SyncRun, Tenant, TenantMembership, TermsConsent


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "subscription_status"]
    search_fields = ["name", "slug"]
    exclude = ["kot_access_token"]


@admin.register(ConnectSetting)
class ConnectSettingAdmin(admin.ModelAdmin):
    list_display = ["tenant", "connector", "attendance_trigger", "employee_trigger"]
    exclude = ["app_secret"]


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "kind", "trigger", "status", "target_date", "created_at"]
    list_select_related = ["tenant"]


@admin.register(SyncError)
class SyncErrorAdmin(admin.ModelAdmin):
    list_display = ["run", "employee_code", "code", "message"]


admin.site.register(TenantMembership)
admin.site.register(TermsConsent)
