"""URL configuration: the support admin, health check and the tenant pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("portal.tenant_urls")),
]
