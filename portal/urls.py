"""URL configuration: the support admin, health check and the tenant pages."""

from django.contrib import admin
from django.urls import include, path, re_path

from portal.health import healthz
from portal.hooks import senselink_push

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # SenseLink's event subscription (push); the path is ConnectSetting.senselink_push_path.
    # Everything under it is the view's (repeated slashes too), with or without the trailing
    # slash: no redirect (a POST is not followed), and Django logs no request carrying a token.
    re_path(r"^hooks/+senselink(?:/+(?P<rest>.*))?$", senselink_push, name="senselink_push"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("portal.tenant_urls")),
]
