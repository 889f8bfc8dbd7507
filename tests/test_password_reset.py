"""パスワードの再設定: a mailed link that works once and for PASSWORD_RESET_TIMEOUT, the same
answer for any address, and a limit per address and per client."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from integrations.models import TenantMembership
from tests.accounts_world import link_in
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-42"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


def ask_reset(client: Client, email: str):
    return client.post(reverse("portal:password_reset"), {"email": email})


def set_password_from(client: Client, url: str, password: str = NEW_PASSWORD):
    page = client.get(urlparse(url).path, follow=True)
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else urlparse(url).path
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_login_page_links_to_the_password_reset(db):
    page = Client().get(reverse("portal:login")).content.decode()
    assert reverse("portal:password_reset") in page
    assert "パスワードをお忘れの方" in page


def test_reset_by_mail_sets_a_new_password_and_the_old_one_stops_working(team, mailoutbox):
    client = Client()
    response = ask_reset(client, "ALICE@example.jp")  # any case
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:password_reset_done")
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.jp"]
    assert "パスワード再設定" in mail.subject
    url = link_in(mail)
    assert url.startswith("http://127.0.0.1:8000/password/reset/")  # PORTAL_BASE_URL

    done = set_password_from(client, url)
    assert done.status_code == 302
    assert done["Location"] == reverse("portal:password_reset_complete")

    assert not Client().login(username="alice", password=PASSWORD)
    assert Client().login(username="alice", password=NEW_PASSWORD)
    # The link worked once.
    again = Client().get(urlparse(url).path, follow=True)
    assert "このリンクは無効です" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_mail(team, mailoutbox):
    known = ask_reset(Client(), "alice@example.jp")
    unknown = ask_reset(Client(), "nobody@example.jp")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert len(mailoutbox) == 1
    page = Client().get(unknown["Location"]).content.decode()
    assert "登録されている場合" in page


def test_support_staff_and_deactivated_members_get_no_mail(team, mailoutbox):
    TenantMembership.objects.filter(user=team.victor).update(is_active=False)
    for email in ("sam@support.example.jp", "victor@example.jp"):
        response = ask_reset(Client(), email)
        assert response["Location"] == reverse("portal:password_reset_done")
    assert mailoutbox == []


def test_the_link_expires_after_password_reset_timeout(team, noon, mailoutbox, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    ask_reset(Client(), "alice@example.jp")
    url = link_in(mailoutbox[0])
    noon.shift(timedelta(seconds=3600 + 60))
    page = Client().get(urlparse(url).path, follow=True).content.decode()
    assert "このリンクは無効です" in page
    assert Client().login(username="alice", password=PASSWORD)


def test_requests_past_the_limit_are_answered_alike_and_send_nothing(team, mailoutbox, settings):
    settings.PASSWORD_RESET_LIMIT = 3
    client = Client()
    answers = {ask_reset(client, "alice@example.jp")["Location"] for _ in range(5)}
    assert answers == {reverse("portal:password_reset_done")}
    assert len(mailoutbox) == 3
    # Per client address too: other addresses from the same client get nothing either.
    ask_reset(client, "victor@example.jp")
    assert len(mailoutbox) == 3
    # Another client may still ask for another address.
    ask_reset(Client(REMOTE_ADDR="198.51.100.7"), "victor@example.jp")
    assert len(mailoutbox) == 4


def test_the_mail_link_ignores_a_forged_host_header(team, mailoutbox, settings):
    settings.ALLOWED_HOSTS = ["*"]
    Client().post(
        reverse("portal:password_reset"), {"email": "alice@example.jp"}, HTTP_HOST="evil.example"
    )
    assert "evil.example" not in mailoutbox[0].body
