"""接続テスト: call both APIs cheaply and say in plain Japanese what is wrong (SPEC 3.3).

A SenseLink App Key can be limited to chosen APIs, so the test does not depend on one call: the
version call first, the person list when that is refused. Beyond "connected", it reports what
decides whether a sync can work: whether job numbers are visible in the person list, whether a
person group is set (and exists), and the outbound IP address to register.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    ForbiddenWindowError,
    NetworkError,
)
from connectors.kot import KotClient
from connectors.netcheck import UnsafeUrlError, check_senselink_url
from connectors.record_feed import ID_ASCENDING, NEWEST_FIRST, observed_order
from connectors.senselink import SenseLinkClient, SlGroup

from ..models import Tenant
from ..validators import parse_person_group_ids
from .clients import transport_limits, typed_senselink_client
from .workday import refresh_divisions

SENSELINK = "SenseLink"


@dataclass(frozen=True)
class CheckResult:
    service: str  # "KING OF TIME" / "SenseLink" / a SenseLink aspect
    ok: bool
    message: str
    level: str = ""  # "" (OK/NG by ok), "warning" (works, but see the message), "info"


@sensitive_variables("token", "app_secret")
def check_kot(*, token: str, tenant: Tenant | None = None) -> list[CheckResult]:
    """The token check; with ``tenant``, KOT's divisions are read and kept for it too."""
    name = "KING OF TIME"
    if not token:
        return [CheckResult(name, False, "アクセストークンが未登録です。")]
    client = KotClient(
        base_url=settings.KOT_API_BASE_URL,
        token=token,
        max_retries=1,
        **transport_limits(interactive=True),
    )
    try:
        available = client.check_token()
        if not available:
            return [
                CheckResult(
                    name,
                    False,
                    "アクセストークンが無効です。KING OF TIMEの全権管理者がトークンを再発行し、"
                    "新しいトークンを登録してください。",
                )
            ]
        results = [CheckResult(name, True, "アクセストークンは有効です。")]
        if tenant is not None:
            results.append(check_divisions(client=client, tenant=tenant))
        return results
    except ConnectorError as exc:
        return [CheckResult(name, False, exc.message)]
    finally:
        client.close()


def check_divisions(*, client: KotClient, tenant: Tenant) -> CheckResult:
    """Read KOT's divisions and their 日付変更時刻 (outside KOT's windows) and keep them."""
    name = "日付変更時刻"
    try:
        divisions = refresh_divisions(tenant=tenant, kot=client)
    except ForbiddenWindowError:
        return CheckResult(
            name,
            True,
            "KING OF TIMEのAPI利用禁止時間帯のため、所属の日付変更時刻は次回の勤怠連携で"
            "読み込みます。",
            level="info",
        )
    except ConnectorError as exc:
        return CheckResult(
            name,
            True,
            "KING OF TIMEの所属(日付変更時刻)を読み込めませんでした。勤務日は前回読み込んだ"
            "日付変更時刻(未取得の場合は0:00)で判定します。アクセストークンに所属の参照権限を"
            f"付けるか、連携設定の「日付変更時刻」を指定してください。({exc.message})",
            level="warning",
        )
    if not divisions:
        return CheckResult(name, True, "所属がないため、勤務日は0:00で区切ります。", level="info")
    borders = "、".join(f"{d.name or d.code} {d.day_border:%H:%M}" for d in divisions[:20])
    more = f" ほか{len(divisions) - 20}件" if len(divisions) > 20 else ""
    return CheckResult(
        name, True, f"所属{len(divisions)}件の日付変更時刻: {borders}{more}", level="info"
    )


def refused_message() -> str:
    """A correct key refused: the allow-list may be by source IP or by domain (unknown)."""
    return (
        "SenseLinkに接続を拒否されました(署名認証エラー)。Appキー・Appシークレットが正しい"
        "場合は、SenseLinkの「アプリケーションドメイン」の登録が原因です。このポータルの接続元"
        f"IPアドレス {settings.PORTAL_OUTBOUND_IP} が登録されているか、またIPアドレスではなく"
        "ドメインでの登録が求められていないかをご確認ください。"
    )


@sensitive_variables("token", "app_secret")
def check_senselink(
    *, url: str, app_key: str, app_secret: str, person_group_ids: str | None = None
) -> list[CheckResult]:
    """The connection line first, then what else the readable answers say.

    ``person_group_ids`` None: not reported (the caller does not know the value).
    """
    if not (url and app_key and app_secret):
        return [
            CheckResult(
                SENSELINK, False, "SenseLink URL・Appキー・Appシークレットを入力してください。"
            )
        ]
    try:
        check_senselink_url(url, allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS)
    except UnsafeUrlError as exc:
        return [CheckResult(SENSELINK, False, str(exc))]
    client = typed_senselink_client(
        url=url, app_key=app_key, app_secret=app_secret, interactive=True
    )
    try:
        return _check_senselink(client, url, person_group_ids)
    finally:
        client.close()


def _check_senselink(
    client: SenseLinkClient, url: str, person_group_ids: str | None
) -> list[CheckResult]:
    results: list[CheckResult] = []
    version = None
    try:
        version = client.server_version()
    except NetworkError as exc:  # timeouts included: the person list would not do better
        return [CheckResult(SENSELINK, False, exc.message)]
    except ConnectorError as exc:
        if exc.code == "bad_url" and not isinstance(exc, AuthenticationError):
            return [CheckResult(SENSELINK, False, exc.message)]
        # A key limited to chosen APIs may not include this one: try the person list.
    try:
        probe = client.probe_persons()
    except ConnectorError as exc:
        if version is None:
            message = refused_message() if isinstance(exc, AuthenticationError) else exc.message
            return [CheckResult(SENSELINK, False, message)]
        results.append(
            CheckResult(SENSELINK, True, f"接続できました(サーバーバージョン {version})。")
        )
        results.append(
            CheckResult(
                "SenseLink 登録者一覧",
                False,
                "登録者一覧(/api/v1/user/list)を読めませんでした。Appキーで登録者の参照・追加・"
                f"更新・削除と認証レコードの参照を許可してください。({exc.message})",
            )
        )
        return results
    if version is not None:
        results.append(
            CheckResult(SENSELINK, True, f"接続できました(サーバーバージョン {version})。")
        )
    else:
        results.append(
            CheckResult(
                SENSELINK,
                True,
                "接続できました(このAppキーではバージョン取得APIが許可されていないため、"
                "登録者一覧で確認しました)。",
            )
        )
    if url.strip().rstrip("/").lower().endswith("/api"):
        results.append(
            CheckResult(
                "SenseLink URL",
                True,
                "URLの末尾の「/api」は不要です(自動で取り除いて接続しました)。",
                level="info",
            )
        )
    results.append(_job_numbers(probe))
    results.append(_record_order(client))
    if person_group_ids is not None:
        results.append(_groups(client, person_group_ids))
    results.append(outbound_ip())
    return results


def _job_numbers(probe) -> CheckResult:
    name = "SenseLink 従業員番号"
    if probe.persons == 0:
        return CheckResult(
            name,
            True,
            "SenseLinkに登録者はまだいません。最初の社員情報連携で、KING OF TIMEの在籍者を登録します。",
            level="info",
        )
    if probe.job_number_field:
        return CheckResult(name, True, "登録者一覧で従業員番号を読み取れます。")
    return CheckResult(
        name,
        False,
        "登録者一覧に従業員番号の項目がありません。KING OF TIMEの従業員と照合できないため、"
        "このままでは社員情報連携は何も変更せずに停止します(全員の二重登録を防ぐため)。"
        "サポートにお問い合わせください。",
    )


RECORD_ORDERS = {
    NEWEST_FIRST: "新しい順",
    ID_ASCENDING: "古い順(登録順)",
}


def _record_order(client: SenseLinkClient) -> CheckResult:
    """The order SenseLink lists today's (or yesterday's) recognition records in: the portal
    reads new records in any order, so this is information for support, not a condition."""
    name = "SenseLink 認証レコード"
    today = timezone.localdate()
    ids: list[int] = []
    try:
        for day in (today, today - timedelta(days=1)):
            ids = [record.id for record in client.record_page(day=day, page=1).records]
            if len(ids) >= 2:
                break
    except ConnectorError as exc:
        return CheckResult(
            name,
            False,
            "認証レコード一覧(/api/v5/record/list)を読めませんでした。勤怠連携とリアルタイム出勤"
            f"連携には、Appキーで認証レコードの参照を許可してください。({exc.message})",
        )
    order = observed_order(ids)
    if not order:
        said = "確認できませんでした(今日と昨日の認証レコードが2件未満です)"
    else:
        said = RECORD_ORDERS.get(order, "認証時刻順など(登録順ではありません)")
    return CheckResult(
        name,
        True,
        f"認証レコードの並び順: {said}。勤怠連携とリアルタイム出勤連携は、どの並び順でも"
        "新しい認証レコードを読み取ります。",
        level="info",
    )


NO_GROUP_MESSAGE = (
    "登録先の人員グループが指定されていません。新しく登録する人員はどの人員グループにも入らず、"
    "どの端末でも認識されません。人員グループを指定するか、登録後にSenseLinkでグループに"
    "追加してください。"
)


def _groups(client: SenseLinkClient, value: str) -> CheckResult:
    name = "SenseLink 人員グループ"
    try:
        wanted = parse_person_group_ids(value)
    except ValueError:
        return CheckResult(name, False, "人員グループIDは数字をカンマ区切りで入力してください。")
    if not wanted:
        return CheckResult(name, False, NO_GROUP_MESSAGE, level="warning")
    try:
        groups = {group.id: group for group in client.list_groups()}
    except ConnectorError:
        return CheckResult(
            name,
            True,
            f"人員グループID {','.join(map(str, wanted))} に登録します(このAppキーでは"
            "グループ一覧を読めないため、IDが存在するかは確認できませんでした)。",
            level="warning",
        )
    unknown = [gid for gid in wanted if gid not in groups]
    if unknown:
        return CheckResult(
            name,
            False,
            f"人員グループID {','.join(map(str, unknown))} はSenseLinkにありません。"
            "SenseLinkの登録者グループのIDをご確認ください。",
        )
    names = "、".join(f"{groups[gid].name}(ID {gid})" for gid in wanted)
    return CheckResult(name, True, f"新しく登録する人員は {names} に追加します。")


def outbound_ip() -> CheckResult:
    return CheckResult(
        "接続元IPアドレス",
        True,
        f"このポータルは {settings.PORTAL_OUTBOUND_IP} から接続します。SenseLinkの"
        "「アプリケーションドメイン」とKING OF TIMEのアクセストークンのIPアドレス制限に"
        "登録してください。",
        level="info",
    )


@sensitive_variables("token", "app_secret")
def check_connections(
    *,
    token: str,
    url: str,
    app_key: str,
    app_secret: str,
    person_group_ids: str | None = None,
    tenant: Tenant | None = None,
) -> list[CheckResult]:
    """Both checks; takes plain values so a form can test what was typed before saving it.

    With ``tenant``, KOT's divisions (日付変更時刻) read on the way are kept for it.
    """
    return [
        *check_kot(token=token, tenant=tenant),
        *check_senselink(
            url=url, app_key=app_key, app_secret=app_secret, person_group_ids=person_group_ids
        ),
    ]


@dataclass(frozen=True)
class GroupList:
    """SenseLink's person groups for the settings page to pick from, or why they are missing."""

    groups: list[SlGroup]
    error: str = ""


@sensitive_variables("token", "app_secret")
def load_person_groups(*, url: str, app_key: str, app_secret: str, token: str = "") -> GroupList:
    """The person groups (manual 2.5.2) read with the given values; ``token`` is not used."""
    if not (url and app_key and app_secret):
        return GroupList([], "SenseLink URL・Appキー・Appシークレットを入力してください。")
    try:
        check_senselink_url(url, allow_private_hosts=settings.SENSELINK_ALLOW_PRIVATE_HOSTS)
    except UnsafeUrlError as exc:
        return GroupList([], str(exc))
    client = typed_senselink_client(
        url=url, app_key=app_key, app_secret=app_secret, interactive=True
    )
    try:
        groups = client.list_groups()
    except AuthenticationError:
        return GroupList([], refused_message())
    except ConnectorError as exc:
        return GroupList(
            [],
            "SenseLinkの人員グループの一覧を読めませんでした。グループのIDを直接入力してください"
            f"(SenseLinkの登録者グループの画面で確認できます)。({exc.message})",
        )
    finally:
        client.close()
    if not groups:
        return GroupList([], "SenseLinkに人員グループがありません。SenseLinkで作成してください。")
    return GroupList(sorted(groups, key=lambda g: g.id))
