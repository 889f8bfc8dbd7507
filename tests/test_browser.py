"""The tenant pages in a real browser: Playwright driving Debian's Chromium against live_server.

Screenshots of each screen go to test-artifacts/browser/. With UPDATE_SCREENSHOTS=1 (and only
then: a test run never rewrites tracked files) the コネクト一覧 and 連携設定 screenshots, every tenant
page at 1280 and 390 px (tests/tenant_pages.py, `<page>_<width>.png`) and the admin run list at
1280 px are also copied to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from integrations.models import ConnectSetting, SyncRun, Tenant
from integrations.services.execution import execute_run
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium runs on the real clock: under `make test-at` (libfaketime) it would hang, and the
# times that matter are the portal's, in this process.
BROWSER_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "FAKETIME"))}
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "browser"
DOC_SHOTS = Path(django_settings.BASE_DIR) / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} is missing: run scripts/ensure_browser.sh as root "
        "(apt-get install -y chromium fonts-noto-cjk)",
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous calls. Set for these tests only: a
    # module-level setting would leak into other tests' subprocesses (check --deploy fails).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, env=BROWSER_ENV
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo"
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def served(world, live_server, settings):
    """acme over plain http, with nothing configured yet: the customer fills it all in."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    ConnectSetting.objects.filter(tenant=world.acme).delete()
    Tenant.objects.filter(pk=world.acme.pk).update(kot_access_token="", kot_token_digest="")
    # One KOT token, one tenant: globex (which shares the sandbox's token in `world`) gets its own,
    # so acme's customer can enter the sandbox token.
    world.globex.kot_access_token = "kot-token-globex"
    world.globex.save()
    world.url = live_server.url
    return world


def shot(page, name: str, *, doc: bool = False) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / f"{name}.png")


def newest_run(tenant, kind: str) -> SyncRun:
    return SyncRun.objects.filter(tenant=tenant, kind=kind).latest("created_at", "id")


def test_customer_sets_up_and_runs_both_syncs(served, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    w = served

    # ログイン
    page.goto(w.url + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
    shot(page, "01_login")
    page.get_by_label("ユーザー名").fill("acme-hr")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    # 利用規約同意
    expect(page.get_by_role("heading", name="利用規約同意")).to_be_visible()
    shot(page, "02_terms")
    page.get_by_role("button", name="承諾する").click()
    expect(page.get_by_text("規約を確認のうえ、同意のチェックを入れてください。")).to_be_visible()
    page.get_by_label("規約を確認のうえ、同意します。").check()
    page.get_by_role("button", name="承諾する").click()

    # コネクト一覧, nothing configured yet
    expect(page.get_by_role("heading", name="コネクト一覧")).to_be_visible()
    expect(page.locator(".summary")).to_have_text("未設定")
    page.get_by_role("link", name="連携設定").click()

    # 連携設定: fill in against the sandbox, test the connection, save
    expect(page.get_by_role("heading", name="SenseThunder連携 設定")).to_be_visible()

    def fill_secrets():
        page.locator("#id_kot_access_token").fill(w.sandbox.kot_token)
        page.locator("#id_app_secret").fill(w.sandbox.app_secret)

    page.locator("#id_senselink_url").fill(w.sandbox.senselink_url)
    page.locator("#id_app_key").fill(w.sandbox.app_key)
    fill_secrets()
    page.get_by_role("button", name="接続テスト").click()
    checks = page.locator(".checks")
    expect(checks).to_contain_text("KING OF TIME: OK")
    expect(checks).to_contain_text("SenseLink: OK")
    shot(page, "03_connection_test")
    assert not ConnectSetting.objects.filter(tenant=w.acme).exists()  # a test saves nothing

    fill_secrets()
    page.get_by_label("出勤・退勤の連携").check()
    page.locator("#id_attendance_trigger_1").check()  # スケジュール実行する
    page.locator("#id_attendance_hour").select_option("9")
    page.get_by_role("button", name="設定する", exact=True).click()
    # The forbidden hour is refused beside its field, and nothing is saved.
    expect(page.locator(".has-error .error")).to_contain_text("9時は選べません")
    assert not ConnectSetting.objects.filter(tenant=w.acme).exists()

    fill_secrets()
    page.locator("#id_attendance_hour").select_option("3")
    page.locator("#id_attendance_target_day").select_option("previous")
    # 人員グループ: SenseLink's list to pick from (nothing is saved by loading it).
    expect(page.get_by_text("人員グループが指定されていません。")).to_be_visible()
    page.get_by_role("button", name="人員グループを読み込む").click()
    page.locator('input[name="person_group_pick"][value="1"]').check()  # 社員
    expect(page.locator(".person-groups")).to_contain_text("社員")
    # The first sync registers the whole company next to 3 hand-registered persons.
    page.locator("#id_creation_guard_count").fill("100")
    fill_secrets()
    page.get_by_role("button", name="設定する", exact=True).click()
    expect(page.get_by_text("連携設定を保存しました。")).to_be_visible()
    expect(page.locator(".state .set")).to_have_count(2)  # 設定済み ×2
    shot(page, "connect_settings", doc=True)
    setting = ConnectSetting.objects.get(tenant=w.acme)
    assert setting.app_secret == w.sandbox.app_secret
    assert (setting.person_group_ids, setting.creation_guard_count) == ("1", 100)
    assert Tenant.objects.get(pk=w.acme.pk).kot_access_token == w.sandbox.kot_token
    assert w.sandbox.app_secret not in page.content()

    # プレビュー (reads only)
    page.get_by_role("button", name="社員情報連携をプレビュー").click()
    expect(page.get_by_role("heading", name="プレビュー: 社員情報連携")).to_be_visible()
    expect(page.locator("ul.errors")).to_contain_text("登録: 従業員コード:")
    shot(page, "04_preview_employee")
    assert not SyncRun.objects.exists()

    # 手動実行: 社員情報連携
    page.goto(w.url + "/")
    expect(page.locator(".summary")).to_have_text("勤怠 毎日3時(前日)")
    expect(page.locator(".upcoming")).to_contain_text("次回 勤怠連携: 2026年11月26日 03:00")
    page.get_by_role("link", name="手動実行").click()
    expect(page.get_by_text("KING OF TIMEからSenseLinkに社員情報を同期します")).to_be_visible()
    shot(page, "05_manual_run")
    page.locator("#run-employee").click()
    expect(page.get_by_text("の実行を受け付けました。")).to_be_visible()
    log = page.locator("#run-log")
    expect(log.locator(".status").first).to_have_text("待機中")
    page.evaluate("window.__notReloaded = true")

    # What a worker does; the page picks the result up by itself.
    run = execute_run(run_id=newest_run(w.acme, "employee").pk)
    assert run.status == "success", run.message
    expect(log.locator(".status").first).to_have_text("SUCCESS", timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True

    # 手動実行: 勤怠情報連携 for yesterday (the default date)
    page.get_by_role("link", name="手動実行").click()
    expect(page.get_by_label("日付")).to_have_value("2026-11-24")
    page.locator("#run-attendance").click()
    expect(page.get_by_text("勤怠連携 #")).to_be_visible()
    expect(log.locator(".status").first).to_have_text("待機中")
    page.evaluate("window.__notReloaded = true")
    run = execute_run(run_id=newest_run(w.acme, "attendance").pk)
    assert run.status in ("success", "partial"), run.message
    expect(log.locator(".status").first).to_have_text(run.get_status_display(), timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    expect(log.locator("tbody tr")).to_have_count(2)
    expect(log).to_contain_text("2件中 1〜2件")
    shot(page, "connect_list", doc=True)

    # エラー詳細
    if run.status == "partial":
        log.get_by_role("link", name="エラー詳細").first.click()
        expect(page.get_by_role("heading", name="エラー詳細")).to_be_visible()
        first = run.errors.order_by("id").first()
        expect(page.locator("ul.errors li").first).to_have_text(first.message)
        expect(page.locator("ul.errors li")).to_have_count(run.errors.count())
        shot(page, "06_error_detail")
        page.get_by_role("link", name="閉じる").click()

    # ログアウト
    page.get_by_role("button", name="ログアウト").click()
    expect(page).to_have_url(re.compile(r"/login/"))


def test_keyboard_and_small_screen(served, browser_page):
    """Tab reaches the connector's buttons; the list fits a phone-sized screen."""
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.url + "/login/")
    page.keyboard.press("Tab")  # the skip link
    page.get_by_label("ユーザー名").focus()
    page.keyboard.type("acme-hr")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_label("規約を確認のうえ、同意します。").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="コネクト一覧")).to_be_visible()
    settings_link = page.get_by_role("link", name="連携設定")
    for _ in range(10):
        page.keyboard.press("Tab")
        if settings_link.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached 連携設定")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="SenseThunder連携 設定")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px screen"
    shot(page, "07_settings_mobile")


# --- every tenant page at a laptop's and a phone's width -----------------------------------------

WIDTHS = (1280, 390)
# What a person reads as labels: none of their words may be split over two lines (「エ/ラー」).
LABELS = (
    "th, .runs td, .connects td, .run-title, dt, dd, legend, label, .button, button, .status, "
    ".range, h1, h2, .brand, .who, .summary, .upcoming li, .state"
)
# Every word of every label's text (separators: spaces and Japanese punctuation) must sit on
# one line: a Range over it has no box starting below its first box. Visually hidden text
# (a 1px box) is skipped, and so are code (a URL with its token breaks anywhere on purpose) and
# a run's message (a sentence).
BROKEN_WORDS_JS = """(selector) => {
  const broken = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.closest('.visually-hidden') || el.getClientRects().length === 0) continue;
    if (el.getBoundingClientRect().width <= 1) continue;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest('code, .run-message')) continue;
      const words = /[^\\s・、。,()()/:：「」|]+/g;
      for (let m = words.exec(node.data); m; m = words.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const boxes = [...range.getClientRects()].filter((r) => r.width > 0);
        if (boxes.some((r) => r.top >= boxes[0].bottom - 1)) {
          broken.push(`${el.tagName.toLowerCase()}.${el.className}: ${m[0]}`);
        }
      }
    }
  }
  return broken;
}"""


@pytest.fixture
def shown_live(world, live_server, settings):
    """tests/tenant_pages.py's world over plain http, pages as production renders them."""
    from tests.tenant_pages import show_world

    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    world.url = live_server.url
    return show_world(world)


def log_in(context, url: str, username: str):
    page = context.new_page()
    page.goto(url + "/login/")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(lambda u: "/login/" not in u)
    return page


def doc_shot(page, name: str) -> None:
    """A screenshot in test-artifacts/browser/pages/; docs/screenshots/ only when asked."""
    path = ARTIFACTS / "pages" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / path.name)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_tenant_page_fits_the_screen_and_breaks_no_word(shown_live, browser_page, width):
    from tests.tenant_pages import TENANT_PAGES

    w = shown_live
    browser = browser_page.context.browser
    problems: list[str] = []
    pages: dict[str, object] = {}
    for spec in TENANT_PAGES:
        if spec.user not in pages:
            ctx = browser.new_context(
                viewport={"width": width, "height": 844}, locale="ja-JP", timezone_id="Asia/Tokyo"
            )
            pages[spec.user] = log_in(ctx, w.url, spec.user) if spec.user else ctx.new_page()
        page = pages[spec.user]
        response = page.goto(w.url + spec.url(w))
        assert response is not None and response.status == spec.status, spec.name
        page.evaluate("document.fonts.ready")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            problems.append(f"{spec.name}: {scroll_width}px wide on a {width}px screen")
        for wrap in page.locator(".table-wrap").all():
            inner = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
            if inner > 0:
                problems.append(f"{spec.name}: a table scrolls sideways by {inner}px")
        problems += [f"{spec.name}: {word}" for word in page.evaluate(BROKEN_WORDS_JS, LABELS)]
        doc_shot(page, f"{spec.name}_{width}")
    for page in pages.values():
        page.context.close()
    assert problems == [], "\n".join(problems)


def test_the_admin_run_list_fits_1280_with_no_column_cut_or_word_broken(shown_live, browser_page):
    from tests.admin_helpers import support_user

    support_user("desk")
    page = browser_page  # 1280 × 900
    page.goto(shown_live.url + "/admin/login/")
    page.locator("#id_username").fill("desk")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.goto(shown_live.url + "/admin/integrations/syncrun/")
    results = page.locator("#changelist .results")
    assert results.locator("tbody tr").count() == len(shown_live.runs)
    cut = results.evaluate("el => el.scrollWidth - el.clientWidth")
    assert cut <= 0, f"the run list's last columns are cut by {cut}px"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    broken = page.evaluate(BROKEN_WORDS_JS, "#result_list th, #result_list td")
    assert broken == [], broken
    doc_shot(page, "admin_run_list_1280")
