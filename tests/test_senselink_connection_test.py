"""The SenseLink half of the connection test (issue 12 item 8), against the sandbox: it works
for a key limited to chosen APIs, reports job numbers, the person group and the outbound IP,
and names both the IP and the アプリケーションドメイン when a correct key is refused."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from integrations.services.connection_test import check_senselink
from tests.conftest import JST

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
        "SenseLink 認証レコード",
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


@pytest.mark.parametrize(
    ("sandbox", "said"),
    [
        (None, "認証レコードの並び順: 古い順(登録順)"),
        ("records-newest-first", "認証レコードの並び順: 新しい順"),
        ("records-oldest-first", "認証レコードの並び順: 認証時刻順など"),
    ],
    indirect=["sandbox"],
)
def test_the_record_order_senselink_answers_in_is_reported(sandbox, noon, said):
    today = timezone.localdate()
    sandbox.senselink.set_records(today, [])
    morning = datetime.combine(today, datetime.min.time(), tzinfo=JST) + timedelta(hours=8)
    for minutes in (0, 5, 10, -30):  # the last one a terminal's late upload of 07:30
        sandbox.senselink.add_record(when=morning + timedelta(minutes=minutes), job_number="0001")

    line = check(sandbox)["SenseLink 認証レコード"]

    assert line.ok and line.level == "info"
    assert line.message.startswith(said)
    assert "どの並び順でも" in line.message


def test_too_few_records_to_tell_the_order_is_said(sandbox, noon):
    today = timezone.localdate()
    for day in (today, today - timedelta(days=1)):
        sandbox.senselink.set_records(day, [])
    line = check(sandbox)["SenseLink 認証レコード"]
    assert line.ok and "確認できませんでした" in line.message
    assert sandbox.request_counts()["GET /api/v5/record/list"] == 2  # today, then yesterday


def test_a_key_that_may_not_read_records_is_ng(sandbox):
    sandbox.senselink.configure(
        allowed_apis=frozenset({"/api/v3/server/version", "/api/v1/user/list", "/api/v1/group"})
    )
    line = check(sandbox)["SenseLink 認証レコード"]
    assert not line.ok and "認証レコードの参照を許可" in line.message
