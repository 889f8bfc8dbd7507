"""With DEBUG off the admin and the tenant pages are styled: `collectstatic` (the Procfile's
release) writes hashed, compressed files and WhiteNoise serves them from the web process itself,
cached for ever. (The real gunicorn from the Procfile does the same in tests/test_production.py.)"""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client

import portal.settings as production_settings

MANIFEST = "whitenoise.storage.CompressedManifestStaticFilesStorage"


@pytest.fixture
def collected(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST}}
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def test_production_settings_use_hashed_compressed_static_files():
    assert production_settings.STORAGES["staticfiles"]["BACKEND"] == MANIFEST
    middleware = production_settings.MIDDLEWARE
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == 1  # after security


@pytest.mark.django_db
def test_the_admin_login_page_links_hashed_css_that_the_web_process_serves(collected):
    client = Client()  # a new handler: WhiteNoise indexes the collected files
    page = client.get("/admin/login/")
    assert page.status_code == 200
    (css,) = re.findall(
        r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.content.decode()
    )

    response = client.get(css, HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_tenant_pages_stylesheet_is_served_hashed(collected):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200
    (css,) = re.findall(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"', page.content.decode())
    response = client.get(css)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


@pytest.mark.django_db
def test_an_unknown_static_file_is_a_plain_404(collected):
    assert Client().get("/static/admin/css/nothing.css").status_code == 404
