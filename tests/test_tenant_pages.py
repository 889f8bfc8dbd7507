"""The tenant pages through Django's test client: login, コネクト一覧, 連携ログ, 手動実行, プレビュー."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from integrations.models import ConnectSetting, SyncError, SyncRun, TermsConsent
from tests.conftest import JST, PASSWORD


def consent(user, tenant):
    TermsConsent.objects.create(user=user, tenant=tenant, version=settings.TERMS_VERSION)


@pytest.fixture
def acme(world, client):
    """A logged-in acme-hr who has accepted the current terms."""
    consent(world.acme_user, world.acme)
    client.force_login(world.acme_user)
    world.client = client
    world.setting = world.acme.connect_settings.get()
    return world


def make_run(tenant, *, at: datetime, seconds: int = 8, **fields) -> SyncRun:
    fields.setdefault("kind", SyncRun.Kind.EMPLOYEE)
    fields.setdefault("trigger", SyncRun.Trigger.MANUAL)
    fields.setdefault("status", SyncRun.Status.SUCCESS)
    finished = (
        at + timedelta(seconds=seconds) if fields["status"] in SyncRun.FINISHED_STATUSES else None
    )
    started = at if fields["status"] != SyncRun.Status.QUEUED else None
    return SyncRun.objects.create(
        tenant=tenant, created_at=at, started_at=started, finished_at=finished, **fields
    )


# --- Login, logout, password, accounts without a tenant --------------------------------------


def test_login_page_is_japanese(db, client):
    page = client.get(reverse("portal:login")).content.decode()
    assert "ログイン" in page
    assert 'lang="ja"' in page


def test_login_leads_to_terms_then_connect_list(world, client):
    response = client.post(
        reverse("portal:login"), {"username": "acme-hr", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0].startswith(reverse("portal:terms"))
    assert "利用規約同意" in response.content.decode()


def test_login_with_wrong_password_says_so(world, client):
    response = client.post(reverse("portal:login"), {"username": "acme-hr", "password": "nope"})
    assert response.status_code == 200
    assert "正しいユーザー名とパスワードを入力してください" in response.content.decode()


def test_login_fields_are_required(db, client):
    page = client.post(reverse("portal:login"), {}).content.decode()
    assert page.count("このフィールドは必須です。") == 2


def test_logout_is_post_only(acme):
    assert acme.client.get(reverse("portal:logout")).status_code == 405
    response = acme.client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login")
    assert acme.client.get(reverse("portal:connect_list")).status_code == 302


def test_password_change(acme):
    url = reverse("portal:password_change")
    assert "パスワード変更" in acme.client.get(url).content.decode()
    response = acme.client.post(
        url,
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase-42",
            "new_password2": "another-long-passphrase-42",
        },
    )
    assert response["Location"] == reverse("portal:password_change_done")
    acme.acme_user.refresh_from_db()
    assert acme.acme_user.check_password("another-long-passphrase-42")


def test_password_change_validation_messages(acme):
    page = acme.client.post(
        reverse("portal:password_change"),
        {"old_password": "wrong", "new_password1": "abc", "new_password2": "abd"},
    ).content.decode()
    assert "元のパスワードが間違っています" in page
    assert "確認用パスワードが一致しません" in page


def test_user_without_tenant_is_sent_to_admin(world, client):
    staff = get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    for url in (reverse("portal:connect_list"), reverse("portal:run_log"), reverse("portal:terms")):
        response = client.get(url)
        assert response.status_code == 403
        page = response.content.decode()
        assert 'href="/admin/"' in page
        assert "acme" not in page and "SenseThunder連携</td>" not in page


# --- ご利用申込案内 ---------------------------------------------------------------------------


def test_tenant_not_active_sees_application_guide(world, client):
    client.force_login(world.globex_user)
    for url in (
        reverse("portal:connect_list"),
        reverse("portal:run_log"),
        reverse("portal:terms"),
        reverse("portal:manual_run", args=[world.globex.connect_settings.get().pk]),
    ):
        page = client.get(url).content.decode()
        assert "ご利用申込案内" in page
        assert "連携ログ" not in page


def test_suspended_tenant_sees_application_guide(acme):
    acme.acme.subscription_status = "suspended"
    acme.acme.save()
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "ご利用申込案内" in page


# --- コネクト一覧 ----------------------------------------------------------------------------------


def test_connect_list_shows_manual_connector_and_buttons(acme):
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "コネクト一覧" in page
    assert "SenseThunder連携" in page
    assert '<span class="summary">手動</span>' in page
    assert reverse("portal:connect_settings", args=[acme.setting.pk]) in page
    assert reverse("portal:manual_run", args=[acme.setting.pk]) in page
    assert "連携ログはまだありません。" in page
    assert "顔写真" in page and "SenseLink側で登録してください" in page


def test_connect_list_shows_schedule_and_next_runs_in_jst(acme):
    ConnectSetting.objects.filter(pk=acme.setting.pk).update(
        attendance_trigger="scheduled",
        attendance_hour=3,
        employee_trigger="scheduled",
        employee_interval="monthly",
        employee_day=1,
        employee_hour=2,
    )
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "勤怠 毎日3時(前日), 社員 毎月1日2時" in page
    # Now is 2026-11-25 12:00 JST.
    assert "次回 勤怠連携: 2026年11月26日 03:00" in page
    assert "次回 社員情報連携: 2026年12月01日 02:00" in page


def test_connect_list_marks_paused_schedule(acme):
    ConnectSetting.objects.filter(pk=acme.setting.pk).update(
        attendance_trigger="scheduled", attendance_hour=23, attendance_paused=True
    )
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "勤怠 毎日23時(前日)(一時停止中)" in page
    assert "次回 勤怠連携" not in page


def test_connect_list_without_setting_links_to_new_settings(acme):
    acme.setting.delete()
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "未設定" in page
    assert reverse("portal:connect_settings_new") in page
    assert "手動実行</a>" not in page


# --- 連携ログ ------------------------------------------------------------------------------------


def test_log_rows_newest_first_with_manual_time_format(acme):
    make_run(acme.acme, at=datetime(2021, 2, 24, 11, 35, 40, tzinfo=JST))
    make_run(
        acme.acme,
        at=datetime(2021, 2, 25, 23, 59, 50, tzinfo=JST),
        seconds=20,
        kind=SyncRun.Kind.ATTENDANCE,
        target_date=date(2021, 2, 24),
        status=SyncRun.Status.PARTIAL,
        created_count=3,
        failed_count=1,
    )
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    same_day = "2021年02月24日 11:35:40 - 11:35:48"
    other_day = "2021年02月25日 23:59:50 - 2021年02月26日 00:00:10"
    assert same_day in page and other_day in page
    assert page.index(other_day) < page.index(same_day)
    assert "社員情報連携" in page and "勤怠連携" in page
    assert "SUCCESS" in page and "PARTIAL" in page
    assert "登録 3・更新 0・削除 0・スキップ 0・エラー 1".replace(" ", "\u00a0") in page
    assert "対象日 2021年02月24日" in page


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("queued", "待機中"),
        ("waiting", "再開待ち"),
        ("running", "実行中"),
        ("success", "SUCCESS"),
        ("partial", "PARTIAL"),
        ("failure", "FAILURE"),
    ],
)
def test_log_result_labels(acme, status, label):
    make_run(acme.acme, at=datetime(2026, 11, 25, 11, 0, tzinfo=JST), status=status)
    page = acme.client.get(reverse("portal:run_log")).content.decode()
    assert f'<span class="status status-{status}">{label}</span>' in page


def test_queued_run_shows_request_time_with_open_end(acme):
    make_run(acme.acme, at=datetime(2026, 11, 25, 11, 0, tzinfo=JST), status="queued")
    page = acme.client.get(reverse("portal:run_log")).content.decode()
    assert "2026年11月25日 11:00:00 - <" in page


def test_error_link_only_for_runs_with_errors(acme):
    ok = make_run(acme.acme, at=datetime(2026, 11, 24, 3, 0, tzinfo=JST))
    bad = make_run(
        acme.acme, at=datetime(2026, 11, 25, 3, 0, tzinfo=JST), status="failure", failed_count=1
    )
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert reverse("portal:run_errors", args=[bad.pk]) in page
    assert reverse("portal:run_errors", args=[ok.pk]) not in page


def test_error_detail_lists_one_line_per_error_in_manual_wording(acme):
    run = make_run(
        acme.acme,
        at=datetime(2026, 11, 25, 3, 0, tzinfo=JST),
        kind="attendance",
        target_date=date(2026, 11, 24),
        status="partial",
        failed_count=2,
    )
    messages = [
        "従業員コード:2022 の出勤は既に打刻済みです。KING OF TIME管理画面をご確認ください。",
        "従業員コード:2022 の退勤は既に打刻済みです。KING OF TIME管理画面をご確認ください。",
    ]
    for text in messages:
        SyncError.objects.create(
            run=run, employee_code="2022", code="already_punched", message=text
        )
    page = acme.client.get(reverse("portal:run_errors", args=[run.pk])).content.decode()
    assert "エラー詳細" in page
    for text in messages:
        assert f"<li>{text}</li>" in page
    assert "勤怠連携 #" in page


def test_log_paginates_with_rows_per_page_in_japanese(acme):
    start = datetime(2026, 11, 1, 3, 0, tzinfo=JST)
    for i in range(51):
        make_run(acme.acme, at=start + timedelta(hours=i))
    page = acme.client.get(reverse("portal:connect_list") + "?per_page=5").content.decode()
    assert "51件中 1〜5件" in page
    assert page.count('<td data-label="種別">') == 5
    assert "表示件数" in page and "Rows per page" not in page
    assert "?per_page=5&amp;page=2" in page
    newest = f"{start + timedelta(hours=50):%Y年%m月%d日 %H:%M:%S}"
    assert newest in page

    page = acme.client.get(reverse("portal:connect_list") + "?per_page=5&page=2").content.decode()
    assert "51件中 6〜10件" in page
    page = acme.client.get(reverse("portal:connect_list") + "?per_page=50&page=2").content.decode()
    assert "51件中 51〜51件" in page
    # Unknown sizes fall back to the default (10); a page past the end shows the last.
    page = acme.client.get(reverse("portal:connect_list") + "?per_page=7").content.decode()
    assert "51件中 1〜10件" in page
    page = acme.client.get(reverse("portal:connect_list") + "?page=999").content.decode()
    assert "51件中 51〜51件" in page
    for size in (5, 10, 25, 50):
        assert f'<option value="{size}"' in page


def test_log_query_count_does_not_grow_with_history(acme, django_assert_max_num_queries):
    start = datetime(2024, 1, 1, 3, 0, tzinfo=JST)
    for i in range(60):
        run = make_run(acme.acme, at=start + timedelta(days=i), status="partial", failed_count=2)
        SyncError.objects.create(run=run, code="x", message="m1")
        SyncError.objects.create(run=run, code="x", message="m2")
    # Session, user, membership, consent, setting, count, page, active.
    with django_assert_max_num_queries(10):
        response = acme.client.get(reverse("portal:connect_list") + "?per_page=50")
    assert "60件中 1〜50件" in response.content.decode()


def test_log_partial_is_marked_active_while_a_run_is_in_progress(acme):
    url = reverse("portal:run_log")
    assert 'data-active="false"' in acme.client.get(url).content.decode()
    run = make_run(acme.acme, at=datetime(2026, 11, 25, 11, 59, tzinfo=JST), status="running")
    page = acme.client.get(url).content.decode()
    assert 'data-active="true"' in page
    assert "<html" not in page  # a fragment, swapped into the page by portal.js
    SyncRun.objects.filter(pk=run.pk).update(status="success")
    assert 'data-active="false"' in acme.client.get(url).content.decode()


def test_connect_list_loads_the_refresh_script(acme):
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "portal/portal.js" in page
    assert f'data-url="{reverse("portal:run_log")}"' in page


# --- 手動実行 ----------------------------------------------------------------------------------


def test_manual_run_page_texts_and_default_date(acme):
    page = acme.client.get(reverse("portal:manual_run", args=[acme.setting.pk])).content.decode()
    assert "KING OF TIMEからSenseLinkに社員情報を同期します" in page
    assert "SenseLinkより指定日の認証レコードを取得し、KING OF TIMEへ打刻します。" in page
    assert page.count("実行する</button>") == 2
    assert 'type="date"' in page
    assert 'value="2026-11-24"' in page  # yesterday in JST


def test_manual_employee_run_is_queued_and_reported(acme):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    response = acme.client.post(url, {"kind": "employee"}, follow=True)
    run = SyncRun.objects.get(tenant=acme.acme)
    assert run.kind == "employee" and run.trigger == "manual" and run.status == "queued"
    assert run.triggered_by == acme.acme_user
    assert response.redirect_chain[-1][0] == reverse("portal:connect_list")
    page = response.content.decode()
    # Queued, not done: the message does not read as if employees were registered.
    assert f"社員情報連携 #{run.pk} の実行を受け付けました。結果は連携ログに表示されます。" in page
    assert "を登録しました" not in page
    assert '<span class="status status-queued">待機中</span>' in page
    assert 'data-active="true"' in page


def test_manual_run_already_going_is_reported_not_duplicated(acme):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    acme.client.post(url, {"kind": "employee"})
    response = acme.client.post(url, {"kind": "employee"}, follow=True)
    assert SyncRun.objects.filter(tenant=acme.acme).count() == 1
    assert "は既に待機中です。新しい実行は登録せず" in response.content.decode()


def test_manual_attendance_run_takes_the_date(acme):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    response = acme.client.post(
        url, {"kind": "attendance", "target_date": "2026-11-20"}, follow=True
    )
    run = SyncRun.objects.get(tenant=acme.acme)
    assert run.kind == "attendance" and run.target_date == date(2026, 11, 20)
    assert (
        f"勤怠連携 #{run.pk} (2026年11月20日) の実行を受け付けました。" in response.content.decode()
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "日付を入力してください。"),
        ("2026-13-45", "日付を正しく入力してください(例: 2026-11-24)。"),
        ("2026-11-26", "未来の日付は指定できません。"),
    ],
)
def test_manual_attendance_date_validation(acme, value, message):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    response = acme.client.post(url, {"kind": "attendance", "target_date": value})
    assert response.status_code == 200
    assert f'<p class="error" id="id_target_date_error">{message}</p>' in response.content.decode()
    assert not SyncRun.objects.exists()


def test_manual_run_with_unknown_kind_is_refused(acme):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    response = acme.client.post(url, {"kind": "payroll"})
    assert response.status_code == 200
    assert not SyncRun.objects.exists()


def test_manual_run_refused_without_token(acme):
    acme.acme.kot_access_token = ""
    acme.acme.save()
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    response = acme.client.post(url, {"kind": "employee"}, follow=True)
    assert "KING OF TIMEのアクセストークンを先に登録してください。" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_manual_run_of_paused_sync_says_it_runs_anyway(acme):
    ConnectSetting.objects.filter(pk=acme.setting.pk).update(employee_paused=True)
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    page = acme.client.post(url, {"kind": "employee"}, follow=True).content.decode()
    assert "一時停止中ですが、手動実行は行います。" in page


def test_manual_run_is_post_or_get_only(acme):
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    assert acme.client.put(url).status_code == 405


# --- KOT's forbidden windows -------------------------------------------------------------------


def test_window_notice_on_every_page_and_run_waits(acme, noon):
    noon.move_to(datetime(2026, 11, 25, 9, 0, tzinfo=JST))
    anonymous = Client().get(reverse("portal:login")).content.decode()
    assert "ただいまKING OF TIMEのAPI利用禁止時間帯" in anonymous
    for url in (
        reverse("portal:connect_list"),
        reverse("portal:connect_settings", args=[acme.setting.pk]),
        reverse("portal:manual_run", args=[acme.setting.pk]),
    ):
        page = acme.client.get(url).content.decode()
        assert "ただいまKING OF TIMEのAPI利用禁止時間帯" in page, url
        assert "10:00以降に自動で実行されます。" in page
    url = reverse("portal:manual_run", args=[acme.setting.pk])
    page = acme.client.post(url, {"kind": "employee"}, follow=True).content.decode()
    assert "10:00以降に自動で実行します。" in page
    assert SyncRun.objects.get().status == "waiting"


def test_no_window_notice_at_noon(acme):
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "API利用禁止時間帯です" not in page


# --- プレビュー ---------------------------------------------------------------------------------


def test_employee_preview_shows_counts_and_lines_without_writing(acme):
    url = reverse("portal:connect_preview", args=[acme.setting.pk])
    acme.sandbox.reset_counts()
    page = acme.client.get(url, {"kind": "employee"}).content.decode()
    assert "プレビュー: 社員情報連携" in page
    assert "<dt>登録</dt>" in page
    assert "登録: 従業員コード:" in page
    assert not SyncRun.objects.exists()
    calls = acme.sandbox.request_counts()
    assert calls and all(route.startswith("GET ") for route in calls), calls


def test_attendance_preview_needs_a_date(acme):
    url = reverse("portal:connect_preview", args=[acme.setting.pk])
    page = acme.client.get(url, {"kind": "attendance"}).content.decode()
    assert "日付を入力してください。" in page
    page = acme.client.get(
        url, {"kind": "attendance", "target_date": "2026-11-24"}
    ).content.decode()
    assert "プレビュー: 勤怠連携" in page
    assert "対象日: 2026年11月24日" in page
    assert "<dt>打刻</dt>" in page
    assert not SyncRun.objects.exists()


def test_preview_says_when_settings_are_missing(acme):
    acme.acme.kot_access_token = ""
    acme.acme.save()
    url = reverse("portal:connect_preview", args=[acme.setting.pk])
    page = acme.client.get(url, {"kind": "employee"}).content.decode()
    assert "連携設定が未登録のため、プレビューできません。" in page
