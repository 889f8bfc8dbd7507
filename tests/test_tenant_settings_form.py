"""連携設定: write-only secrets, every validation message beside its field, nothing saved half,
the connection test with typed values."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from integrations.models import ConnectSetting, Tenant, TermsConsent


@pytest.fixture
def acme(world, client):
    TermsConsent.objects.create(
        user=world.acme_user, tenant=world.acme, version=settings.TERMS_VERSION
    )
    client.force_login(world.acme_user)
    world.client = client
    world.setting = world.acme.connect_settings.get()
    world.url = reverse("portal:connect_settings", args=[world.setting.pk])
    return world


def form_data(world, **changes) -> dict:
    """A valid submission of the settings form, with empty secret inputs (keep stored)."""
    data = {
        "kot_access_token": "",
        "senselink_url": world.sandbox.senselink_url,
        "app_key": world.sandbox.app_key,
        "app_secret": "",
        "attendance_mode": "clock_in_out",
        "attendance_trigger": "scheduled",
        "attendance_hour": "3",
        "attendance_target_day": "previous",
        "employee_trigger": "scheduled",
        "employee_interval": "monthly",
        "employee_day": "31",
        "employee_hour": "2",
        "resigned_policy": "keep",
        "deletion_guard_count": "10",
        "deletion_guard_percent": "20",
        "creation_guard_count": "10",
        "creation_guard_percent": "20",
        "person_group_ids": "",
        "action": "save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def field_error(page: str, name: str) -> str:
    """The error paragraph(s) rendered right after a field, as one string."""
    start = page.index(f'name="{name}"')
    end = page.find('<div class="field', start)
    end_fieldset = page.find("</fieldset>", start)
    stops = [p for p in (end, end_fieldset) if p != -1]
    return page[start : min(stops)] if stops else page[start:]


def test_settings_page_shows_sections_labels_and_notes(acme, settings):
    settings.PORTAL_INBOUND_IP = "198.51.100.7"  # the push section's address, counted apart
    page = acme.client.get(acme.url).content.decode()
    for text in (
        "SenseThunder連携 設定",
        "KING OF TIMEの情報",
        "SenseLinkの情報",
        "勤怠連携 設定",
        "社員情報連携(KING OF TIME → SenseThunder) 設定",
        "SenseLink URL",
        "Appキー",
        "Appシークレット",
        "出勤のみ連携",
        "出勤・退勤の連携",
        "手動実行する",
        "スケジュール実行する",
        "前日",
        "当日",
        "毎日",
        "毎月",
        "SenseLinkから削除する",
        "顔写真も削除され",
        "設定する</button>",
        "接続テスト</button>",
        "全権管理者",
        "アプリケーションドメイン",
        "9時、18時",
        "プレビュー",
    ):
        assert text in page, text
    assert page.count(settings.PORTAL_OUTBOUND_IP) == 2
    assert page.count(settings.PORTAL_INBOUND_IP) == 1  # what to submit to JCV for push
    assert page.count("設定済み") == 2


def test_secrets_show_unset_when_missing(acme):
    Tenant.objects.filter(pk=acme.acme.pk).update(kot_access_token="")
    ConnectSetting.objects.filter(pk=acme.setting.pk).update(app_secret="")
    page = acme.client.get(acme.url).content.decode()
    assert page.count("未設定") == 2


def test_secrets_are_never_rendered(acme):
    page = acme.client.get(acme.url).content.decode()
    assert acme.sandbox.kot_token not in page
    assert acme.sandbox.app_secret not in page
    # Not even after a failed submission that typed new ones.
    page = acme.client.post(
        acme.url,
        form_data(acme, senselink_url="", kot_access_token="typed-token-1", app_secret="typed-s-1"),
    ).content.decode()
    assert "typed-token-1" not in page and "typed-s-1" not in page
    assert 'type="password"' in page


def test_valid_save_keeps_secrets_when_inputs_are_empty(acme):
    response = acme.client.post(acme.url, form_data(acme))
    assert response.status_code == 302 and response["Location"] == acme.url
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    assert setting.attendance_mode == "clock_in_out"
    assert setting.attendance_trigger == "scheduled"
    assert (setting.employee_interval, setting.employee_day, setting.employee_hour) == (
        "monthly",
        31,
        2,
    )
    assert setting.app_secret == acme.sandbox.app_secret
    assert Tenant.objects.get(pk=acme.acme.pk).kot_access_token == acme.sandbox.kot_token
    page = acme.client.get(acme.url).content.decode()
    assert "連携設定を保存しました。" in page


def test_typed_secrets_replace_stored_ones(acme):
    acme.client.post(
        acme.url, form_data(acme, kot_access_token="new-token-abc", app_secret="new-secret-xyz")
    )
    assert ConnectSetting.objects.get(pk=acme.setting.pk).app_secret == "new-secret-xyz"
    assert Tenant.objects.get(pk=acme.acme.pk).kot_access_token == "new-token-abc"


def test_pause_and_resume(acme):
    acme.client.post(acme.url, form_data(acme, attendance_paused="on", employee_paused="on"))
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    assert setting.attendance_paused and setting.employee_paused
    page = acme.client.get(reverse("portal:connect_list")).content.decode()
    assert "勤怠 毎日3時(前日)(一時停止中)" in page
    acme.client.post(acme.url, form_data(acme))
    setting = ConnectSetting.objects.get(pk=acme.setting.pk)
    assert not setting.attendance_paused and not setting.employee_paused


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"senselink_url": ""}, "senselink_url", "SenseLink URLを入力してください。"),
        (
            {"senselink_url": "ftp://link.example.jp/"},
            "senselink_url",
            "URLは https:// で始まる必要があります。",
        ),
        (
            {"senselink_url": "https://user:pw@link.example.jp/"},
            "senselink_url",
            "URLにユーザー名やパスワードを含めることはできません。",
        ),
        ({"app_key": ""}, "app_key", "Appキーを入力してください。"),
        (
            {"attendance_hour": "9"},
            "attendance_hour",
            "KING OF TIMEのAPI利用禁止時間帯(08:30〜10:00、17:30〜18:30)にかかる9時は選べません。",
        ),
        (
            {"employee_hour": "18"},
            "employee_hour",
            "KING OF TIMEのAPI利用禁止時間帯(08:30〜10:00、17:30〜18:30)にかかる18時は選べません。",
        ),
        ({"attendance_hour": "24"}, "attendance_hour", "正しく選択してください。"),
        ({"employee_day": "32"}, "employee_day", "正しく選択してください。"),
        ({"employee_day": "0"}, "employee_day", "正しく選択してください。"),
        ({"attendance_mode": "both"}, "attendance_mode", "正しく選択してください。"),
        ({"attendance_mode": None}, "attendance_mode", "このフィールドは必須です。"),
        ({"attendance_trigger": None}, "attendance_trigger", "このフィールドは必須です。"),
        ({"employee_trigger": "hourly"}, "employee_trigger", "正しく選択してください。"),
        ({"employee_interval": "weekly"}, "employee_interval", "正しく選択してください。"),
        (
            {"attendance_target_day": "tomorrow"},
            "attendance_target_day",
            "正しく選択してください。",
        ),
        ({"resigned_policy": "archive"}, "resigned_policy", "正しく選択してください。"),
        ({"deletion_guard_count": "-1"}, "deletion_guard_count", "0 以上"),
        ({"deletion_guard_count": "abc"}, "deletion_guard_count", "整数を入力してください。"),
        ({"deletion_guard_count": ""}, "deletion_guard_count", "このフィールドは必須です。"),
        ({"deletion_guard_percent": "101"}, "deletion_guard_percent", "100 以下"),
    ],
)
def test_each_invalid_field_gets_its_message_beside_it(acme, changes, field, message):
    before = ConnectSetting.objects.filter(pk=acme.setting.pk).values().get()
    response = acme.client.post(acme.url, form_data(acme, **changes))
    assert response.status_code == 200
    page = response.content.decode()
    assert "入力内容に誤りがあります。" in page
    assert message in field_error(page, field), field_error(page, field)
    assert ConnectSetting.objects.filter(pk=acme.setting.pk).values().get() == before


def test_forbidden_hours_are_allowed_for_manual_syncs(acme):
    response = acme.client.post(
        acme.url,
        form_data(
            acme,
            attendance_trigger="manual",
            attendance_hour="9",
            employee_trigger="manual",
            employee_hour="18",
        ),
    )
    assert response.status_code == 302


def test_nothing_is_saved_half(acme):
    """A new token typed with an invalid hour: neither the token nor the setting changes."""
    response = acme.client.post(
        acme.url,
        form_data(acme, kot_access_token="half-token", app_key="other-key", attendance_hour="9"),
    )
    assert response.status_code == 200
    assert Tenant.objects.get(pk=acme.acme.pk).kot_access_token == acme.sandbox.kot_token
    assert ConnectSetting.objects.get(pk=acme.setting.pk).app_key == acme.sandbox.app_key


def test_new_setting_requires_the_app_secret_and_is_created(acme):
    acme.setting.delete()
    url = reverse("portal:connect_settings_new")
    page = acme.client.get(url).content.decode()
    assert "未設定" in page and "プレビュー" not in page.split("</form>")[-1]
    page = acme.client.post(url, form_data(acme)).content.decode()
    assert "Appシークレットを入力してください。" in field_error(page, "app_secret")
    assert not ConnectSetting.objects.filter(tenant=acme.acme).exists()
    response = acme.client.post(url, form_data(acme, app_secret="secret-typed-now"))
    setting = ConnectSetting.objects.get(tenant=acme.acme)
    assert response["Location"] == reverse("portal:connect_settings", args=[setting.pk])
    assert setting.app_secret == "secret-typed-now"
    # Once it exists, the "new" address leads to it.
    assert acme.client.get(url)["Location"] == reverse("portal:connect_settings", args=[setting.pk])


# --- 接続テスト ---------------------------------------------------------------------------------


def test_connection_test_with_stored_secrets_succeeds_without_saving(acme):
    before = ConnectSetting.objects.filter(pk=acme.setting.pk).values().get()
    page = acme.client.post(
        acme.url, form_data(acme, action="test", attendance_mode="clock_in")
    ).content.decode()
    assert "KING OF TIME:</strong> OK" in page
    assert "アクセストークンは有効です。" in page
    assert "SenseLink:</strong> OK" in page
    assert "接続できました" in page
    assert ConnectSetting.objects.filter(pk=acme.setting.pk).values().get() == before
    assert "連携設定を保存しました" not in page


def test_connection_test_says_what_is_wrong_with_typed_values(acme):
    page = acme.client.post(
        acme.url,
        form_data(acme, action="test", kot_access_token="wrong-token", app_secret="wrong-secret"),
    ).content.decode()
    assert "KING OF TIME:</strong> NG" in page
    assert "SenseLink:</strong> NG" in page
    assert "wrong-token" not in page and "wrong-secret" not in page
    # Nothing was stored.
    assert Tenant.objects.get(pk=acme.acme.pk).kot_access_token == acme.sandbox.kot_token
    assert ConnectSetting.objects.get(pk=acme.setting.pk).app_secret == acme.sandbox.app_secret


def test_connection_test_reports_missing_values(acme):
    page = acme.client.post(
        acme.url, form_data(acme, action="test", senselink_url="")
    ).content.decode()
    assert "SenseLink URL・Appキー・Appシークレットを入力してください。" in page


def test_connection_test_reports_unreachable_url(acme):
    page = acme.client.post(
        acme.url, form_data(acme, action="test", senselink_url="http://127.0.0.1:9/")
    ).content.decode()
    assert "SenseLink:</strong> NG" in page
