"""利用規約同意: asked on first login and again when the terms' version changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import TermsConsent
from tests.conftest import PASSWORD


@pytest.fixture
def acme(world, client):
    client.force_login(world.acme_user)
    world.client = client
    return world


def test_first_login_asks_for_consent(world, client):
    response = client.post(
        reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD}, follow=True
    )
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("portal:terms") + "?next=%2F"
    assert "利用規約同意" in page
    assert "規約を確認のうえ、同意します。" in page
    assert "承諾する</button>" in page
    assert "第1条" in page


def test_every_tenant_page_requires_consent_first(acme):
    setting = acme.acme.connect_settings.get()
    for url in (
        reverse("portal:connect_list"),
        reverse("portal:run_log"),
        reverse("portal:connect_settings", args=[setting.pk]),
        reverse("portal:manual_run", args=[setting.pk]),
        reverse("portal:connect_preview", args=[setting.pk]),
    ):
        response = acme.client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("portal:terms")), url
    response = acme.client.post(
        reverse("portal:manual_run", args=[setting.pk]), {"kind": "employee"}
    )
    assert response["Location"] == reverse("portal:terms")
    assert not acme.acme.runs.exists()


def test_unchecked_box_is_refused_with_a_message(acme):
    response = acme.client.post(reverse("portal:terms"), {})
    assert response.status_code == 200
    assert "規約を確認のうえ、同意のチェックを入れてください。" in response.content.decode()
    assert not TermsConsent.objects.exists()


def test_accepting_records_who_which_version_when(acme, settings):
    response = acme.client.post(
        reverse("portal:terms"), {"agree": "on", "next": reverse("portal:run_log")}
    )
    assert response["Location"] == reverse("portal:run_log")
    consent = TermsConsent.objects.get()
    assert consent.user == acme.acme_user
    assert consent.tenant == acme.acme
    assert consent.version == settings.TERMS_VERSION
    assert consent.accepted_at.year == 2026
    assert acme.client.get(reverse("portal:connect_list")).status_code == 200


def test_a_new_terms_version_asks_again(acme, settings):
    acme.client.post(reverse("portal:terms"), {"agree": "on"})
    settings.TERMS_VERSION = "2027-04-01"
    response = acme.client.get(reverse("portal:connect_list"))
    assert response["Location"].startswith(reverse("portal:terms"))
    assert "2027-04-01" in acme.client.get(reverse("portal:terms")).content.decode()
    acme.client.post(reverse("portal:terms"), {"agree": "on"})
    assert sorted(TermsConsent.objects.values_list("version", flat=True)) == [
        "2026-11-01",
        "2027-04-01",
    ]


def test_terms_page_after_consent_shows_it_is_accepted(acme):
    acme.client.post(reverse("portal:terms"), {"agree": "on"})
    page = acme.client.get(reverse("portal:terms")).content.decode()
    assert "この版の利用規約には同意済みです。" in page
    assert "承諾する</button>" not in page
    # A second POST records nothing new.
    acme.client.post(reverse("portal:terms"), {"agree": "on"})
    assert TermsConsent.objects.count() == 1


def test_next_must_stay_on_this_site(acme):
    response = acme.client.post(
        reverse("portal:terms"), {"agree": "on", "next": "https://evil.example.com/"}
    )
    assert response["Location"] == reverse("portal:connect_list")


def test_consent_of_another_user_does_not_count(acme, settings):
    TermsConsent.objects.create(
        user=acme.globex_user, tenant=acme.globex, version=settings.TERMS_VERSION
    )
    response = acme.client.get(reverse("portal:connect_list"))
    assert response["Location"].startswith(reverse("portal:terms"))
