"""The SenseLink half of the connection test (issue 12 item 8), against the sandbox: it works
for a key limited to chosen APIs, reports job numbers, the person group and the outbound IP,
and names both the IP and the アプリケーションドメイン when a correct key is refused."""

from __future__ import annotations

import pytest

from integrations.services.connection_test import check_senselink

pytestmark = pytest.mark.django_db

IP = "198.51.100.23"


@pytest.fixture(autouse=True)
def outbound_ip(settings):
    settings.PORTAL_OUTBOUND_IP = IP


def check(sandbox, **overrides):
    values = {
        "url": sandbox.senselink_url,
        "app_key": sandbox.app_key,
        "app_secret": sandbox.app_secret,
        "person_group_ids": "1",
    }
    values.update(overrides)
    return {r.service: r for r in check_senselink(**values)}


def test_a_full_key_reports_version_job_numbers_groups_and_ip(sandbox):
    results = check(sandbox)

    assert list(results) == [
        "SenseLink",
        "SenseLink 従業員番号",
        "SenseLink 人員グループ",
        "接続元IPアドレス",
    ]
    assert results["SenseLink"].ok and "サーバーバージョン 5.6.1" in results["SenseLink"].message
    assert results["SenseLink 従業員番号"].ok
    assert results["SenseLink 人員グループ"].ok
    assert "社員(ID 1)" in results["SenseLink 人員グループ"].message
    assert IP in results["接続元IPアドレス"].message
    assert "アプリケーションドメイン" in results["接続元IPアドレス"].message


@pytest.mark.parametrize("sandbox", ["key-limited"], indirect=True)
def test_a_key_limited_to_the_sync_apis_falls_back_to_the_person_list(sandbox):
    results = check(sandbox)

    assert results["SenseLink"].ok
    assert "バージョン取得APIが許可されていない" in results["SenseLink"].message
    assert results["SenseLink 従業員番号"].ok
    group = results["SenseLink 人員グループ"]
    assert group.level == "warning" and "確認できませんでした" in group.message
    assert sandbox.request_counts()["GET /api/v3/server/version"] == 1  # not retried as if down


def test_no_group_set_is_said_plainly(sandbox):
    group = check(sandbox, person_group_ids="")["SenseLink 人員グループ"]
    assert group.level == "warning"
    assert "どの端末でも認識されません" in group.message


def test_a_group_senselink_does_not_have_is_named(sandbox):
    group = check(sandbox, person_group_ids="1,99")["SenseLink 人員グループ"]
    assert not group.ok and "99" in group.message and "ありません" in group.message


@pytest.mark.parametrize("sandbox", ["persons-without-job-number"], indirect=True)
def test_a_person_list_without_job_numbers_is_ng(sandbox):
    numbers = check(sandbox)["SenseLink 従業員番号"]
    assert not numbers.ok and "従業員番号の項目がありません" in numbers.message
    assert "停止します" in numbers.message


def test_an_empty_senselink_is_only_information(sandbox):
    sandbox.senselink.persons.clear()
    numbers = check(sandbox)["SenseLink 従業員番号"]
    assert numbers.ok and numbers.level == "info" and "まだいません" in numbers.message


def test_a_refused_correct_key_names_the_ip_and_the_application_domain(sandbox):
    sandbox.senselink.allowed_ips = {"203.0.113.99"}  # the portal's address is not registered

    [result] = check_senselink(
        url=sandbox.senselink_url, app_key=sandbox.app_key, app_secret=sandbox.app_secret
    )

    assert not result.ok
    assert IP in result.message and "アプリケーションドメイン" in result.message
    assert "ドメインでの登録" in result.message
    assert sandbox.app_secret not in result.message


def test_a_url_ending_in_api_is_stripped_and_said(sandbox):
    results = check(sandbox, url=sandbox.senselink_url + "api/")
    assert results["SenseLink"].ok
    assert "/api" in results["SenseLink URL"].message and results["SenseLink URL"].level == "info"
    assert "GET /api/api/v3/server/version" not in sandbox.request_counts()


def test_an_unreachable_senselink_is_one_ng_line(sandbox):
    sandbox.stop()
    [result] = check_senselink(
        url=sandbox.senselink_url, app_key=sandbox.app_key, app_secret=sandbox.app_secret
    )
    assert not result.ok and "接続できませんでした" in result.message
