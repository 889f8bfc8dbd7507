"""メンバー管理: invite → set a password → log in as 閲覧者 (settings refused) → deactivate
(login refused); roles; the last 管理者; another tenant's members; the same from the admin."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from integrations.models import TenantMembership
from tests.accounts_world import link_in
from tests.conftest import PASSWORD

NEW_PASSWORD = "colleague-passphrase-77"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def accept(url: str, password: str = NEW_PASSWORD) -> Client:
    client = Client()
    page = client.get(urlparse(url).path, follow=True)
    assert "パスワードの設定(招待)" in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    done = client.post(form_url, {"new_password1": password, "new_password2": password})
    assert done["Location"] == reverse("portal:password_reset_complete")
    return client


def test_invite_accept_view_as_viewer_then_deactivate(team, mailoutbox):
    alice = logged_in(team.alice)
    response = alice.post(
        reverse("portal:members"), {"email": "New.Colleague@Example.jp", "role": "viewer"}
    )
    assert response.status_code == 302
    (mail,) = mailoutbox
    assert mail.to == ["new.colleague@example.jp"]
    assert "招待" in mail.subject and "閲覧者" in mail.body
    membership = TenantMembership.objects.get(user__username="new.colleague@example.jp")
    assert (membership.tenant, membership.role, membership.is_active) == (team.acme, "viewer", True)
    assert not membership.user.has_usable_password()
    assert "招待中" in alice.get(reverse("portal:members")).content.decode()

    accept(link_in(mail))
    # Accepted: the link is spent.
    spent = Client().get(urlparse(link_in(mail)).path, follow=True).content.decode()
    assert "このリンクは無効です" in spent

    colleague = Client()
    response = colleague.post(
        reverse("portal:login"),
        {"username": "new.colleague@example.jp", "password": NEW_PASSWORD},
        follow=True,
    )
    assert "利用規約同意" in response.content.decode()  # a new user accepts the terms first
    colleague.post(reverse("portal:terms"), {"agree": "on"})
    page = colleague.get(reverse("portal:connect_list")).content.decode()
    assert "コネクト一覧" in page
    assert reverse("portal:connect_settings", args=[team.setting.pk]) not in page  # no buttons
    assert reverse("portal:manual_run", args=[team.setting.pk]) not in page
    refused = colleague.get(reverse("portal:connect_settings", args=[team.setting.pk]))
    assert refused.status_code == 403
    assert "管理者のみ" in refused.content.decode()

    # Deactivated: the open session ends, and the password no longer logs in.
    alice.post(reverse("portal:member_update", args=[membership.pk]), {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.is_active is False
    response = colleague.get(reverse("portal:connect_list"))
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]
    assert not Client().login(username="new.colleague@example.jp", password=NEW_PASSWORD)
    response = Client().post(
        reverse("portal:login"), {"username": "new.colleague@example.jp", "password": NEW_PASSWORD}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "_auth_user_id" not in response.wsgi_request.session


@pytest.mark.parametrize(
    "name,args",
    [
        ("portal:connect_settings", "setting"),
        ("portal:connect_preview", "setting"),
        ("portal:manual_run", "setting"),
        ("portal:members", None),
        ("portal:member_update", "member"),
        ("portal:member_invite", "member"),
    ],
)
def test_a_viewer_is_refused_every_page_that_changes_something(team, name, args):
    victor = logged_in(team.victor)
    ids = {"setting": [team.setting.pk], "member": [team.alice.membership.pk], None: []}
    url = reverse(name, args=ids[args])
    for method in ("get", "post"):
        response = getattr(victor, method)(url, {"kind": "employee", "role": "viewer"})
        assert response.status_code in (403, 405), (method, url)
    team.alice.membership.refresh_from_db()
    assert team.alice.membership.role == "admin"


@pytest.mark.parametrize("name", ["portal:connect_list", "portal:history", "portal:runs_csv"])
def test_a_viewer_reads_the_list_the_log_and_the_history(team, name):
    assert logged_in(team.victor).get(reverse(name)).status_code == 200


def test_the_last_active_administrator_can_be_neither_demoted_nor_deactivated(team):
    alice = logged_in(team.alice)
    url = reverse("portal:member_update", args=[team.alice.membership.pk])
    for data in ({"role": "viewer", "is_active": "on"}, {"role": "admin"}):
        page = alice.post(url, data, follow=True).content.decode()
        assert "最後の管理者" in page
        team.alice.membership.refresh_from_db()
        assert (team.alice.membership.role, team.alice.membership.is_active) == ("admin", True)
    # With a second administrator, alice may step down.
    victor = team.victor.membership
    alice.post(
        reverse("portal:member_update", args=[victor.pk]), {"role": "admin", "is_active": "on"}
    )
    alice.post(url, {"role": "viewer", "is_active": "on"})
    team.alice.membership.refresh_from_db()
    assert team.alice.membership.role == "viewer"


def test_another_tenants_member_is_404(team):
    alice = logged_in(team.alice)
    gina = team.gina.membership
    for name in ("portal:member_update", "portal:member_invite"):
        response = alice.post(reverse(name, args=[gina.pk]), {"role": "viewer"})
        assert response.status_code == 404
    gina.refresh_from_db()
    assert (gina.role, gina.is_active) == ("admin", True)
    assert "gina" not in alice.get(reverse("portal:members")).content.decode()


def test_an_address_already_registered_is_refused(team, mailoutbox):
    alice = logged_in(team.alice)
    page = alice.post(
        reverse("portal:members"), {"email": "gina@example.jp", "role": "admin"}
    ).content.decode()
    assert "このメールアドレスは登録できません" in page
    assert mailoutbox == []
    assert not TenantMembership.objects.filter(tenant=team.acme, user__email="gina@example.jp")


def test_an_invitation_expires_and_can_be_sent_again(team, noon, mailoutbox, settings):
    settings.INVITE_TIMEOUT_DAYS = 3
    alice = logged_in(team.alice)
    alice.post(reverse("portal:members"), {"email": "late@example.jp", "role": "admin"})
    membership = TenantMembership.objects.get(user__username="late@example.jp")
    noon.shift(timedelta(days=3, minutes=1))
    expired = Client().get(urlparse(link_in(mailoutbox[0])).path, follow=True)
    assert "このリンクは無効です" in expired.content.decode()
    alice = logged_in(team.alice)  # three days later: a new session
    alice.post(reverse("portal:member_invite", args=[membership.pk]))
    assert len(mailoutbox) == 2
    accept(link_in(mailoutbox[1]))
    assert Client().login(username="late@example.jp", password=NEW_PASSWORD)
    # A reset token is no invitation, and an invitation no reset token.
    page = alice.post(reverse("portal:member_invite", args=[membership.pk]), follow=True)
    assert "パスワードを設定済み" in page.content.decode()


def test_support_changes_roles_and_sends_invitations_from_the_admin(team, mailoutbox):
    sam = logged_in(team.sam)
    victor = team.victor.membership
    url = reverse("admin:integrations_tenantmembership_change", args=[victor.pk])
    response = sam.post(
        url, {"user": team.victor.pk, "tenant": team.acme.pk, "role": "admin", "is_active": "on"}
    )
    assert response.status_code == 302
    victor.refresh_from_db()
    assert victor.role == "admin"
    # The last-administrator rule holds in the admin too.
    alice = team.alice.membership
    TenantMembership.objects.filter(pk=victor.pk).update(role="viewer")
    response = sam.post(
        reverse("admin:integrations_tenantmembership_change", args=[alice.pk]),
        {"user": team.alice.pk, "tenant": team.acme.pk, "role": "admin"},
    )
    assert response.status_code == 200
    assert "最後の管理者" in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active is True

    # 招待メールを送信: POST only.
    pending = get_user_model().objects.create_user(username="pending", email="p@example.jp")
    membership = TenantMembership.objects.create(user=pending, tenant=team.acme, role="viewer")
    invite = reverse("admin:integrations_tenantmembership_invite", args=[membership.pk])
    assert sam.get(invite).status_code == 405
    assert sam.post(invite).status_code == 302
    (mail,) = mailoutbox
    assert mail.to == ["p@example.jp"]
    accept(link_in(mail))
    assert Client().login(username="pending", password=NEW_PASSWORD)


def test_createtenantuser_makes_an_administrator_or_a_viewer(team):
    from io import StringIO

    from django.core.management import call_command

    call_command("createtenantuser", "acme", "boss", "--password", PASSWORD, stdout=StringIO())
    call_command(
        "createtenantuser",
        "acme",
        "reader",
        "--password",
        PASSWORD,
        "--role",
        "viewer",
        stdout=StringIO(),
    )
    roles = dict(
        TenantMembership.objects.filter(user__username__in=["boss", "reader"]).values_list(
            "user__username", "role"
        )
    )
    assert roles == {"boss": "admin", "reader": "viewer"}
