"""Accounts in a real browser (Playwright driving Debian's Chromium against live_server):
invite → set a password → 閲覧者 → deactivated; a password reset; a staff member's two-factor
enrolment and login; the 連携ログ CSV downloaded and parsed."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from integrations.models import SyncRun, TenantMembership
from tests import test_browser
from tests.accounts_world import link_in
from tests.conftest import JST, PASSWORD
from tests.test_browser import shot
from tests.test_two_factor import code_for, code_from_page

NEW_PASSWORD = "browser-passphrase-3141"
pytestmark = test_browser.pytestmark
browser_page = test_browser.browser_page  # the same Chromium fixture


@pytest.fixture
def site(team, live_server, settings):
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PORTAL_BASE_URL = live_server.url
    team.url = live_server.url
    return team


def login(page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(url + "/login/")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


def logout(page) -> None:
    page.get_by_role("button", name="ログアウト").click()


def test_invite_accept_view_only_csv_then_deactivate(site, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    at = datetime(2026, 11, 24, 18, 30, tzinfo=JST)
    SyncRun.objects.create(
        tenant=site.acme,
        kind="attendance",
        trigger="schedule",
        status="success",
        target_date=at.date(),
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=8),
    )

    # alice (管理者) invites a colleague as 閲覧者.
    login(page, site.url, "alice")
    page.get_by_role("link", name="メンバー管理").click()
    expect(page.get_by_role("heading", name="メンバー管理")).to_be_visible()
    page.get_by_label("メールアドレス").fill("yuki@example.jp")
    page.get_by_label("権限", exact=True).select_option("viewer")
    page.get_by_role("button", name="招待メールを送信する").click()
    expect(page.get_by_text("yuki@example.jp に招待メールを送信しました。")).to_be_visible()
    expect(page.locator("#member-" + str(_member("yuki@example.jp").pk))).to_contain_text("招待中")
    shot(page, "accounts_01_members")
    logout(page)

    # The invitation's link: set a password, then log in.
    (invitation,) = mail.outbox
    page.goto(link_in(invitation))
    expect(page.get_by_role("heading", name="パスワードの設定(招待)")).to_be_visible()
    page.get_by_label("新しいパスワード", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("新しいパスワード(確認)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="パスワードを設定する").click()
    expect(page.get_by_role("heading", name="パスワードを設定しました")).to_be_visible()
    login(page, site.url, "yuki@example.jp", NEW_PASSWORD)
    page.get_by_label("規約を確認のうえ、同意します。").check()
    page.get_by_role("button", name="承諾する").click()

    # 閲覧者: the list and the log, no buttons; settings refused.
    expect(page.get_by_role("heading", name="コネクト一覧")).to_be_visible()
    expect(page.get_by_role("link", name="手動実行")).to_have_count(0)
    expect(page.get_by_role("link", name="メンバー管理")).to_have_count(0)
    shot(page, "accounts_02_viewer")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="連携ログをCSVでダウンロード").click()
    download = download_info.value
    rows = list(csv.reader(io.StringIO(_read(download).decode("utf-8-sig"), newline="")))
    assert _read(download).startswith(b"\xef\xbb\xbf")
    assert rows[0][:3] == ["連携ログ番号", "コネクト名", "種別"]
    assert rows[1][2] == "勤怠連携" and "2026-11-24 18:30:00" in rows[1]
    response = page.goto(f"{site.url}/connects/{site.setting.pk}/settings/")
    assert response.status == 403
    expect(page.get_by_text("この操作は管理者のみ行えます。")).to_be_visible()
    logout(page)

    # alice deactivates the colleague; their password no longer logs in.
    login(page, site.url, "alice")
    page.get_by_role("link", name="メンバー管理").click()
    row = page.locator("#member-" + str(_member("yuki@example.jp").pk))
    row.get_by_role("checkbox").uncheck()
    row.get_by_role("button", name="更新").click()
    expect(page.get_by_text("yuki@example.jp を更新しました。")).to_be_visible()
    logout(page)
    login(page, site.url, "yuki@example.jp", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="ログイン")).to_be_visible()
    expect(page.locator(".error")).to_be_visible()
    shot(page, "accounts_03_deactivated")


def test_password_reset_from_the_login_page(site, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(site.url + "/login/")
    page.get_by_role("link", name="パスワードをお忘れの方").click()
    page.get_by_label("メールアドレス").fill("alice@example.jp")
    page.get_by_role("button", name="再設定メールを送信する").click()
    expect(page.get_by_role("heading", name="メールをご確認ください")).to_be_visible()
    (message,) = mail.outbox
    page.goto(link_in(message))
    page.get_by_label("新しいパスワード", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("新しいパスワード(確認)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="パスワードを設定する").click()
    expect(page.get_by_role("heading", name="パスワードを設定しました")).to_be_visible()
    login(page, site.url, "alice", PASSWORD)  # the old one
    expect(page.get_by_role("heading", name="ログイン")).to_be_visible()
    login(page, site.url, "alice", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="コネクト一覧")).to_be_visible()


def test_staff_enrol_and_log_in_with_a_totp_code(site, browser_page, settings, noon):
    from playwright.sync_api import expect

    settings.STAFF_REQUIRE_2FA = True
    page = browser_page
    page.goto(site.url + "/admin/")
    page.get_by_label("ユーザー名").fill("sam")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("heading", name="二段階認証の設定")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    shot(page, "accounts_04_enrol")
    page.get_by_label("確認コード").fill(code_from_page(page.content()))
    page.get_by_role("button", name="設定する").click()
    expect(page.get_by_role("heading", name="リカバリーコード")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="保管しました").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_text("サポート管理").first).to_be_visible()

    # Log out; the next login asks for the code before any admin page.
    page.context.clear_cookies()
    noon.shift(timedelta(minutes=2))
    page.goto(site.url + "/admin/integrations/tenant/")
    page.get_by_label("ユーザー名").fill("sam")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("heading", name="確認コードの入力")).to_be_visible()
    shot(page, "accounts_05_verify")
    assert urlparse(page.url).path == "/account/two-factor/verify/"
    device = TOTPDevice.objects.get(user=site.sam)
    page.get_by_label("確認コード").fill(code_for(device))
    page.get_by_role("button", name="確認する").click()
    expect(page).to_have_url(re.compile(r"/admin/integrations/tenant/$"))


def _member(username: str) -> TenantMembership:
    return TenantMembership.objects.get(user__username=username)


def _read(download) -> bytes:
    with open(download.path(), "rb") as file:
        return file.read()
