"""The working day (日付変更時刻, SPEC 4.6): KOT's division borders and day_change_time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import time_machine

from integrations.models import KotDivision, KotEmployeeDivision, SyncRun
from integrations.services.execution import execute_run
from integrations.services.preview import preview_sync
from integrations.services.workday import WorkdayRules, rules_for, schedule_wait_warning
from tests.conftest import JST
from tests.sync_world import DAY, at, configure, only_records, punches, run_now, small_kot

pytestmark = pytest.mark.django_db

NEXT = DAY + timedelta(days=1)
DIVISIONS = "GET /v1.0/divisions"
RECORDS = "GET /api/v5/record/list"


@pytest.fixture
def night(world):
    """Division 200 (夜勤) starts its working day at 05:00; division 100 keeps 00:00.

    0042 works nights in 200; A0004 works days in 100.
    """
    world.sandbox.kot.set_day_border("200", "05:00", name="夜勤センター")
    small_kot(
        world.sandbox,
        {"code": "0042", "last_name": "山田", "first_name": "太郎", "division_code": "200"},
        {"code": "A0004", "last_name": "佐藤", "first_name": "花子", "division_code": "100"},
    )
    configure(world.acme, attendance_mode="clock_in_out")
    only_records(
        world.sandbox,
        DAY,
        ("0042", at(4, 10)),  # the end of the night of the 23rd: working date 23
        ("A0004", at(9, 1)),
        ("A0004", at(18, 2)),
        ("0042", at(22, 0)),
    )
    only_records(
        world.sandbox,
        NEXT,
        ("A0004", at(1, 0, day=NEXT)),  # after midnight in a 00:00 division: the 25th
        ("0042", at(3, 0, day=NEXT)),  # the night of the 24th ends
        ("0042", at(6, 0, day=NEXT)),  # the 25th's working day in the 05:00 division
    )
    return world


def test_a_night_shift_in_a_05_00_division_is_one_working_day(night):
    run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS, run.message
    # One clock-in and one clock-out, both on the first date (the punch's date field).
    assert punches(night.sandbox, "0042", DAY) == [
        ("1", "2026-11-24T22:00:00+09:00"),
        ("2", "2026-11-25T03:00:00+09:00"),
    ]
    assert punches(night.sandbox, "0042", NEXT) == []
    # The day worker of the 00:00 division is unaffected: 01:00 on the 25th is not the 24th.
    assert punches(night.sandbox, "A0004", DAY) == [
        ("1", "2026-11-24T09:01:00+09:00"),
        ("2", "2026-11-24T18:02:00+09:00"),
    ]
    assert run.created_count == 4
    # The divisions and who belongs where are kept for the tenant (read outside the windows).
    stored = {d.code: d.day_border for d in KotDivision.objects.filter(tenant=night.acme)}
    assert stored == {"100": time(0, 0), "200": time(5, 0)}
    members = dict(
        KotEmployeeDivision.objects.filter(tenant=night.acme).values_list(
            "employee_code", "division_code"
        )
    )
    assert members == {"0042": "200", "A0004": "100"}


def test_the_next_working_day_starts_at_the_border(night):
    with time_machine.travel(datetime(2026, 11, 26, 12, 0, tzinfo=JST), tick=True):
        run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, NEXT)
    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert punches(night.sandbox, "0042", NEXT) == [("1", "2026-11-25T06:00:00+09:00")]
    assert punches(night.sandbox, "A0004", NEXT) == [("1", "2026-11-25T01:00:00+09:00")]


def test_the_senselink_query_covers_the_union_of_the_spans(night):
    night.sandbox.reset_counts()
    run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    counts = night.sandbox.request_counts()
    assert counts[RECORDS] == 1  # one query, 24th 00:00 to 25th 05:00
    assert counts[DIVISIONS] == 1


def test_day_change_time_overrides_kot_for_the_whole_tenant(night):
    configure(night.acme, day_change_time=time(5, 0))
    night.sandbox.reset_counts()
    run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS, run.message
    # Now A0004's 01:00 on the 25th belongs to the 24th too (latest recognition: clock-out).
    assert punches(night.sandbox, "A0004", DAY) == [
        ("1", "2026-11-24T09:01:00+09:00"),
        ("2", "2026-11-25T01:00:00+09:00"),
    ]
    assert punches(night.sandbox, "0042", DAY) == [
        ("1", "2026-11-24T22:00:00+09:00"),
        ("2", "2026-11-25T03:00:00+09:00"),
    ]
    assert night.sandbox.request_counts()[DIVISIONS] == 0  # KOT's borders are not needed


def test_a_run_waits_until_the_working_day_ended_for_every_division(night):
    configure(night.acme, attendance_target_day="previous")
    night.sandbox.reset_counts()
    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=JST), tick=True):
        run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
        assert run.status == SyncRun.Status.WAITING
        assert run.not_before == datetime(2026, 11, 25, 5, 0, tzinfo=JST)
        assert "05:00" in run.message and "2026年11月24日" in run.message
        assert night.sandbox.request_counts()[RECORDS] == 0  # no record of the day was read
        assert execute_run(run_id=run.pk) is None  # not due yet
    with time_machine.travel(datetime(2026, 11, 25, 5, 1, tzinfo=JST), tick=True):
        run = execute_run(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCESS, run.message
    assert punches(night.sandbox, "0042", DAY)[-1] == ("2", "2026-11-25T03:00:00+09:00")


def test_a_run_of_the_current_day_reads_the_day_so_far(night):
    # 当日 (or a manual run of today) has always meant "so far"; it does not wait for the border.
    with time_machine.travel(datetime(2026, 11, 24, 23, 0, tzinfo=JST), tick=True):
        run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    assert run.status == SyncRun.Status.SUCCESS, run.message


def test_the_preview_shows_working_dates(night):
    preview = preview_sync(tenant=night.acme, kind=SyncRun.Kind.ATTENDANCE, target_date=DAY)
    assert preview.error == ""
    assert "打刻: 従業員コード:0042 退勤 2026-11-25 03:00:00" in preview.lines
    assert not any("A0004 退勤 2026-11-25" in line for line in preview.lines)
    assert not KotDivision.objects.exists()  # the preview writes nothing


def test_the_preview_says_when_the_working_day_has_not_ended(night):
    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=JST), tick=True):
        preview = preview_sync(tenant=night.acme, kind=SyncRun.Kind.ATTENDANCE, target_date=DAY)
    assert any("11月25日 05:00" in notice for notice in preview.notices)


def test_a_token_that_may_not_read_divisions_falls_back_and_says_so(night):
    night.sandbox.faults.add("kot", "signature", path="/divisions")
    run = run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    # Without stored borders the day runs from 00:00; the run says how to fix it.
    assert run.status == SyncRun.Status.SUCCESS
    [warning] = run.errors.all()
    assert warning.code == "kot_divisions_unreadable"
    assert "日付変更時刻" in warning.message
    assert punches(night.sandbox, "0042", DAY) == [
        ("1", "2026-11-24T04:10:00+09:00"),
        ("2", "2026-11-24T22:00:00+09:00"),
    ]


def test_the_settings_page_warns_when_the_schedule_waits_every_day(night):
    setting = configure(
        night.acme,
        attendance_trigger="scheduled",
        attendance_hour=3,
        attendance_target_day="previous",
    )
    run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)  # stores KOT's divisions
    assert "05:00" in schedule_wait_warning(setting)
    setting = configure(night.acme, attendance_hour=6)
    assert schedule_wait_warning(setting) == ""
    setting = configure(night.acme, attendance_hour=3, day_change_time=time(2, 0))
    assert schedule_wait_warning(setting) == ""


# --- the rules on their own -------------------------------------------------------------------

RULES = WorkdayRules(
    borders={"100": time(0, 0), "200": time(5, 0)}, members={"0042": "200", "A0004": "100"}
)


@pytest.mark.parametrize(
    "code,moment,expected",
    [
        ("0042", at(4, 59, 59, day=NEXT), DAY),
        ("0042", at(5, 0, day=NEXT), NEXT),
        ("A0004", at(0, 0, day=NEXT), NEXT),
        ("A0004", at(23, 59, 59), DAY),
        ("stranger", at(1, 0, day=NEXT), NEXT),  # no division known: the earliest border
    ],
)
def test_working_date(code, moment, expected):
    assert RULES.working_date(code, moment) == expected


def test_span_is_the_union_of_the_employees_spans():
    assert RULES.span(DAY) == (at(0, 0), at(5, 0, day=NEXT))
    assert RULES.span(DAY, ["0042"]) == (at(5, 0), at(5, 0, day=NEXT))
    assert RULES.span(DAY, ["A0004"]) == (at(0, 0), at(0, 0, day=NEXT))
    assert WorkdayRules().span(DAY) == (at(0, 0), at(0, 0, day=NEXT))
    assert WorkdayRules(override=time(4, 30), borders=RULES.borders).span(DAY) == (
        at(4, 30),
        at(4, 30, day=NEXT),
    )


def test_day_ended_for_every_division():
    assert not RULES.day_ended(DAY, at(4, 59, day=NEXT))
    assert RULES.day_ended(DAY, at(5, 0, day=NEXT))
    assert RULES.must_wait(DAY, at(3, 0, day=NEXT)) == at(5, 0, day=NEXT)
    assert RULES.must_wait(DAY, at(23, 0)) is None  # the calendar day itself: "so far"
    assert RULES.must_wait(DAY, at(5, 0, day=NEXT)) is None


def test_rules_for_reads_the_stored_divisions(world):
    KotDivision.objects.create(tenant=world.acme, code="200", day_border=time(5, 0))
    KotDivision.objects.create(tenant=world.acme, code="100", day_border=time(0, 0))
    KotEmployeeDivision.objects.create(tenant=world.acme, employee_code="0042", division_code="200")
    rules = rules_for(world.acme)
    assert rules.working_date("0042", at(4, 0, day=NEXT)) == DAY
    assert rules.working_date("A0004", at(4, 0, day=NEXT)) == NEXT
    setting = configure(world.acme, day_change_time=time(6, 0))
    assert rules_for(setting).working_date("A0004", at(5, 0, day=NEXT)) == DAY
    assert rules_for(world.acme).day_ended(DAY, at(6, 0, day=NEXT))


def test_divisions_are_not_readable_in_kots_windows_but_the_stored_rules_are(night):
    run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)
    night.sandbox.reset_counts()
    with time_machine.travel(datetime(2026, 11, 26, 8, 45, tzinfo=JST), tick=True):
        rules = rules_for(night.acme)
        assert rules.working_date("0042", at(4, 0, day=date(2026, 11, 26))) == NEXT
    assert night.sandbox.request_counts() == {}


def test_the_connection_test_reads_and_keeps_the_divisions(night):
    from integrations.services.connection_test import check_connections

    setting = night.acme.connect_settings.get()
    results = check_connections(
        token=night.acme.kot_access_token,
        url=setting.senselink_url,
        app_key=setting.app_key,
        app_secret=setting.app_secret,
        tenant=night.acme,
    )
    [line] = [r for r in results if r.service == "日付変更時刻"]
    assert "夜勤センター 05:00" in line.message
    stored = dict(KotDivision.objects.filter(tenant=night.acme).values_list("code", "day_border"))
    assert stored == {"100": time(0, 0), "200": time(5, 0)}
    # In KOT's window the token check works, the divisions wait for the next run.
    KotDivision.objects.all().delete()
    with time_machine.travel(datetime(2026, 11, 26, 9, 0, tzinfo=JST), tick=True):
        results = check_connections(
            token=night.acme.kot_access_token,
            url=setting.senselink_url,
            app_key=setting.app_key,
            app_secret=setting.app_secret,
            tenant=night.acme,
        )
    assert results[0].ok
    [line] = [r for r in results if r.service == "日付変更時刻"]
    assert line.level == "info" and "次回の勤怠連携" in line.message
    assert not KotDivision.objects.exists()


def test_the_settings_page_sets_day_change_time_and_shows_the_borders(night, client):
    from django.conf import settings as django_settings
    from django.urls import reverse

    from integrations.models import TermsConsent
    from tests.test_tenant_settings_form import form_data

    TermsConsent.objects.create(
        user=night.acme_user, tenant=night.acme, version=django_settings.TERMS_VERSION
    )
    client.force_login(night.acme_user)
    setting = night.acme.connect_settings.get()
    url = reverse("portal:connect_settings", args=[setting.pk])
    run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)  # reads KOT's divisions
    response = client.post(url, form_data(night, attendance_hour="3"))
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "夜勤センター 05:00" in page
    assert "毎回05:00まで待ってから実行されます" in page  # 03:00 前日 with a 05:00 border
    response = client.post(url, form_data(night, attendance_hour="3", day_change_time="02:00"))
    assert response.status_code == 302
    setting.refresh_from_db()
    assert setting.day_change_time == time(2, 0)
    page = client.get(url).content.decode()
    assert "待ってから実行されます" not in page
    assert 'value="02:00"' in page


def test_the_sandbox_command_takes_day_borders():
    from django.core.management.base import CommandError

    from integrations.management.commands.sandbox import parse_day_border

    assert parse_day_border("100=05:00") == ("100", "05:00")
    assert parse_day_border(" 300 = 4:30 ") == ("300", "4:30")
    for bad in ("100", "=05:00", "100=25:00", "100=5"):
        with pytest.raises(CommandError):
            parse_day_border(bad)


def test_with_known_borders_a_run_is_created_waiting(night):
    from integrations.services.dispatch import create_slot_runs

    run_now(night.acme, SyncRun.Kind.ATTENDANCE, DAY)  # stores KOT's divisions
    configure(
        night.acme,
        attendance_trigger="scheduled",
        attendance_hour=3,
        attendance_target_day="previous",
    )
    three = datetime(2026, 11, 26, 3, 0, 10, tzinfo=JST)
    with time_machine.travel(three, tick=True):
        assert create_slot_runs(now=three, last_beat=three - timedelta(minutes=1)) == (1, 0)
        scheduled = SyncRun.objects.get(trigger=SyncRun.Trigger.SCHEDULE)
        assert scheduled.target_date == NEXT
        assert scheduled.status == SyncRun.Status.WAITING
        assert scheduled.not_before == datetime(2026, 11, 26, 5, 0, tzinfo=JST)
        assert scheduled.attempt == 0  # no attempt spent on waiting
        assert "05:00以降に自動で実行します" in scheduled.message
        assert execute_run(run_id=scheduled.pk) is None
    with time_machine.travel(datetime(2026, 11, 26, 5, 0, 30, tzinfo=JST), tick=True):
        done = execute_run(run_id=scheduled.pk)
    assert done.status == SyncRun.Status.SUCCESS, done.message
    assert done.attempt == 1
    assert punches(night.sandbox, "0042", NEXT) == [("1", "2026-11-25T06:00:00+09:00")]


# --- the KOT client's division read ------------------------------------------------------------


def _kot(sandbox):
    from connectors.kot import KotClient

    return KotClient(base_url=sandbox.kot_url, token=sandbox.kot_token, max_retries=0)


def test_list_divisions_reads_codes_names_and_borders(world):
    from connectors.kot import KotDivisionInfo

    world.sandbox.kot.set_day_border("200", "5:00")
    with world.sandbox.kot.lock:
        del world.sandbox.kot.divisions[0]["dayBorderTime"]  # absent: KOT's default 00:00
    assert _kot(world.sandbox).list_divisions() == [
        KotDivisionInfo(code="100", name="本社", day_border=time(0, 0)),
        KotDivisionInfo(code="200", name="大阪支社", day_border=time(5, 0)),
    ]


@pytest.mark.parametrize("border", ["25:00", "05:60", "five", "05:00:30", 5])
def test_a_bad_day_border_is_a_format_error(world, border):
    from connectors.errors import ResponseFormatError

    world.sandbox.kot.set_day_border("200", border)
    with pytest.raises(ResponseFormatError):
        _kot(world.sandbox).list_divisions()


def test_divisions_of_the_wrong_shape_are_a_format_error(world):
    from connectors.errors import ResponseFormatError

    world.sandbox.faults.add("kot", "wrong_type", path="/divisions")
    with pytest.raises(ResponseFormatError):
        _kot(world.sandbox).list_divisions()


def test_an_unusable_division_code_of_an_employee_is_left_out(world):
    small_kot(world.sandbox, {"code": "0042", "division_code": "100"})
    with world.sandbox.kot.lock:
        world.sandbox.kot.employees[0]["divisionCode"] = "9" * 65
    [employee] = _kot(world.sandbox).list_employees()
    assert employee.division_code is None
