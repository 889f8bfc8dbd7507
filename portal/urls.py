"""URL configuration: the support admin, health check and the tenant pages."""

from django.contrib import admin
from django.urls import include, path

from portal.health import healthz
from portal.hooks import senselink_push

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # SenseLink's event subscription (push); the path is ConnectSetting.senselink_push_path.
    path("hooks/senselink/<str:token>/", senselink_push, name="senselink_push"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("portal.tenant_urls")),
]
