"""URL configuration: the support admin, health check and the tenant pages."""

from django.contrib import admin
from django.urls import include, path

from portal.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("portal.tenant_urls")),
]
