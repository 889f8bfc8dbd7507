"""SenseLink's event subscription (push): receive, deduplicate, wake the poll, detect a stop.

SenseLink POSTs each recognition as JSON (``eventType`` "30000", ``messageId``, ``sendTime``,
``data``; real senders send 30000 and ``sendTime`` as numbers) to the URL the customer
registered (``ConnectSetting.senselink_push_path``). It cannot authenticate to us, so the
unguessable token in the path is the secret. A push is only a **wake-up**: the receiver stores
the message id (a repeated one does nothing) and asks for an immediate poll of the
tenant after commit (``poll_state.wake``); the record list stays the truth.

After one failed push (any answer but 200) SenseLink stops every later push until someone
restores the subscription, so every push to a known path is answered 200, whatever its body.
``note_poll`` (called by realtime after each poll) notices it: employee records
that no push announced within a grace delay, while the setting is known to receive pushes,
mark the subscription stopped and tell the tenant (a banner) and support (the admin and a mail).
"""

from __future__ import annotations

import enum
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from connectors.transport import parse_json

from .. import audit
from ..models import ConnectSetting, PushMessage, PushReceiver
from . import poll_state

log = logging.getLogger(__name__)

# A recognition push is a few hundred bytes; a larger body is answered 200 and counted, and no
# more than this (plus one byte) of it is read.
BODY_LIMIT = 64 * 1024
MESSAGE_ID_LIMIT = 128  # PushMessage.message_id
EVENT_TYPE_LIMIT = 16
SEND_TIME_LIMIT = 32
MAX_DEPTH = 32
RECOGNITION = "30000"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,64}")
# A record is "announced" by a push received no earlier than its sign time minus this (device
# clocks run a little ahead or behind ours).
CLOCK_SKEW = timedelta(seconds=60)
RESTORE_HOWTO = (
    "復旧するには、SenseLink Cloudの場合はJCVサポートにイベントサブスクリプションの復旧を"
    "依頼してください(オンプレミスの場合はOpen Platformのサブスクリプションサービス、"
    "または POST /api/v3/event/updateSub で再設定できます)。"
)


def stopped_grace() -> timedelta:
    """How long an unannounced record may wait for its push before the subscription counts as
    stopped (``PUSH_STOPPED_GRACE_SECONDS``)."""
    return timedelta(seconds=settings.PUSH_STOPPED_GRACE_SECONDS)


class Outcome(enum.Enum):
    """What the receiver did with a push; ``status`` is the HTTP answer (200 for every push to
    a known path: any other answer makes SenseLink stop every later push)."""

    STORED = "stored"  # a new recognition: stored, the poll woken
    DUPLICATE = "duplicate"  # a messageId seen before: nothing done
    IGNORED = "ignored"  # another event type (e.g. 30100 device alert): stored, nothing woken
    UNUSABLE = "unusable"  # not a bounded JSON object, or no usable messageId: counted
    UNSTORED = "unstored"  # beyond PUSH_MESSAGES_PER_MINUTE: counted, not stored
    NOT_FOUND = "not_found"

    @property
    def status(self) -> int:
        return 404 if self is Outcome.NOT_FOUND else 200


class BadBody(ValueError):
    pass


def parse_body(body: bytes | None) -> dict[str, Any]:
    """The push body as a JSON object: strict (UTF-8, no NaN), bounded in size and depth
    (None: a body larger than BODY_LIMIT, left unread)."""
    if body is None or len(body) > BODY_LIMIT:
        raise BadBody("too large")
    try:
        value = parse_json(body, max_depth=MAX_DEPTH)
    except ValueError as exc:  # JsonLimitError: syntax, encoding, depth, values
        raise BadBody(str(exc)) from None
    if not isinstance(value, dict):
        raise BadBody("not an object")
    return value


def _text(value: Any, limit: int) -> str:
    """A scalar of the body as bounded text without control characters ("" for anything else).

    Both shapes SenseLink is known to send are read: the manual's strings ("30000",
    "2026-11-25 08:45:03") and the numbers of real senders (30000, epoch milliseconds).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    # Cut first (the body may hold 64 KiB of it), then drop what no column should hold.
    kept = "".join(ch for ch in str(value)[: limit * 4] if not _is_control(ch))
    return kept.strip()[:limit]


def _is_control(ch: str) -> bool:
    # Unicode category C: control (NUL, which PostgreSQL refuses, and the rest of C0/C1),
    # format (bidi overrides, zero-width), surrogate, private use, unassigned.
    return unicodedata.category(ch).startswith("C")


def _message_id(value: Any) -> str:
    """The messageId, or "" when it is unusable: missing, blank, longer than 128 characters,
    or holding a control character (then it is not an id worth keeping, nor storable)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    text = str(value)
    if not text.strip() or len(text) > MESSAGE_ID_LIMIT or any(_is_control(c) for c in text):
        return ""
    return text


def setting_for_token(token: str) -> ConnectSetting | None:
    # The same single indexed query whether or not the token has the right shape, so an
    # unknown token answers in the same time as a known one.
    candidate = token if TOKEN_SHAPE.fullmatch(token) else ""
    return (
        ConnectSetting.objects.filter(push_token=candidate)
        .exclude(push_token="")
        .only("pk", "tenant_id", "realtime_clock_in")
        .first()
    )


def receive_push(*, token: str, body: bytes | None, now: datetime | None = None) -> Outcome:
    """Take one push: store its messageId, note the subscription alive, wake the poll after
    commit. Never calls an upstream API; never logs the token.

    Every push to a known token is answered 200 (``Outcome.status``): a body that cannot be
    used is counted on the setting's PushReceiver and logged (at most once a minute per setting
    and kind), never refused. A recognition, or a body too broken to tell what it is, wakes the
    poll (the poll is idempotent; realtime coalesces wakes). At most
    PUSH_MESSAGES_PER_MINUTE message ids are stored per setting in any 60 seconds; beyond that
    a push is counted, not stored.
    """
    now = now or timezone.now()
    try:
        payload, problem = parse_body(body), ""
    except BadBody as exc:
        payload, problem = {}, str(exc)
    setting = setting_for_token(token)
    if setting is None:
        return Outcome.NOT_FOUND
    message_id = _message_id(payload.get("messageId"))
    event_type = _text(payload.get("eventType"), EVENT_TYPE_LIMIT)
    # A body we cannot read may well be a recognition (a device's non-UTF-8 name, a cut body).
    wakes = event_type == RECOGNITION or bool(problem)
    if not problem and not message_id:
        problem = "no usable messageId"
    with transaction.atomic():
        # First: the UPDATE locks the receiver row until commit, so the per-minute count below
        # is exact under concurrent pushes of one setting.
        _note_alive(setting_id=setting.pk, now=now)
        if problem:
            _note_unusual(setting.pk, "unusable", now, f"unusable push ({problem})")
            outcome = Outcome.UNUSABLE
        elif _stored_in_last_minute(setting.pk, now) >= settings.PUSH_MESSAGES_PER_MINUTE:
            if PushMessage.objects.filter(setting_id=setting.pk, message_id=message_id).exists():
                return Outcome.DUPLICATE
            _note_unusual(
                setting.pk,
                "unstored",
                now,
                f"more than {settings.PUSH_MESSAGES_PER_MINUTE} message ids in a minute; "
                "the push is not stored",
            )
            outcome = Outcome.UNSTORED
        else:
            try:
                with transaction.atomic():
                    PushMessage.objects.create(
                        setting_id=setting.pk,
                        message_id=message_id,
                        event_type=event_type,
                        send_time=_text(payload.get("sendTime"), SEND_TIME_LIMIT),
                        received_at=now,
                    )
            except IntegrityError:
                return Outcome.DUPLICATE
            outcome = Outcome.STORED if event_type == RECOGNITION else Outcome.IGNORED
        if wakes and setting.realtime_clock_in:
            setting_id = setting.pk
            transaction.on_commit(lambda: wake(setting_id), robust=True)
    return outcome


def _stored_in_last_minute(setting_id: int, now: datetime) -> int:
    return PushMessage.objects.filter(
        setting_id=setting_id, received_at__gt=now - timedelta(minutes=1)
    ).count()


def _note_unusual(setting_id: int, kind: str, now: datetime, text: str) -> None:
    """Count a push answered 200 but not stored (``kind`` "unusable" or "unstored") on the
    receiver, and log it at most once a minute per setting and kind (a flood writes one line a
    minute; the totals are on the receiver)."""
    receiver = PushReceiver.objects.filter(setting_id=setting_id)
    last = receiver.values_list(f"last_{kind}_at", flat=True).first()
    receiver.update(**{f"{kind}_count": F(f"{kind}_count") + 1, f"last_{kind}_at": now})
    if last is None or not timedelta(0) <= now - last < timedelta(minutes=1):
        log.warning("push for setting %s: %s (answered 200, counted)", setting_id, text)


def _note_alive(*, setting_id: int, now: datetime) -> None:
    """Any push proves the subscription works: restored if it was stopped."""
    receiver = PushReceiver.objects.filter(setting_id=setting_id)
    was_stopped = receiver.filter(stopped_at__isnull=False).exists()
    updated = receiver.update(
        last_push_at=now, push_count=F("push_count") + 1, unannounced_since=None, stopped_at=None
    )
    if not updated:
        try:
            with transaction.atomic():
                PushReceiver.objects.create(
                    setting_id=setting_id, first_push_at=now, last_push_at=now, push_count=1
                )
        except IntegrityError:  # a concurrent first push created it
            receiver.update(last_push_at=now, push_count=F("push_count") + 1)
    if was_stopped:
        log.info("setting %s: SenseLink event subscription delivers again (restored)", setting_id)


def wake(setting_id: int) -> bool:
    """Ask for an immediate poll of the setting's tenant (coalesced: ``poll_state.wake``)."""
    return poll_state.wake(setting_id, reason="push")


# --- stopped detection --------------------------------------------------------------------------


def _sign_time(record: Any) -> datetime | None:
    value = record.get("sign_time") if isinstance(record, dict) else record.sign_time
    return value if isinstance(value, datetime) else None


def _is_employee(record: Any) -> bool:
    number = record.get("job_number") if isinstance(record, dict) else record.job_number
    return bool(number)


def note_poll(
    *, setting: ConnectSetting, records: Iterable[Any], now: datetime | None = None
) -> PushReceiver | None:
    """After a poll: mark the push subscription stopped when employee records that no push
    announced are older than the grace delay. Returns the receiver (None: no pushes known).

    A setting is known to receive pushes once one arrived. A record counts as announced when a
    push arrived after its sign time (minus CLOCK_SKEW): SenseLink stops every push after one
    failure, so any later push proves the subscription alive.
    """
    now = now or timezone.now()
    receiver = PushReceiver.objects.filter(setting_id=setting.pk).first()
    if receiver is None or receiver.stopped_at is not None:
        return receiver
    horizon = receiver.last_push_at + CLOCK_SKEW
    times = [
        t
        for record in records
        if _is_employee(record) and (t := _sign_time(record)) is not None and t > horizon
    ]
    if receiver.unannounced_since is not None:
        times.append(receiver.unannounced_since)
    if not times:
        return receiver
    since = min(times)
    alive = PushReceiver.objects.filter(
        setting_id=setting.pk, last_push_at=receiver.last_push_at, stopped_at__isnull=True
    )
    if now - since < stopped_grace():
        if since != receiver.unannounced_since:
            alive.update(unannounced_since=since)
            receiver.unannounced_since = since
        return receiver
    with transaction.atomic():
        if alive.update(stopped_at=now, unannounced_since=since):
            receiver.stopped_at, receiver.unannounced_since = now, since
            log.warning(
                "setting %s: SenseLink event subscription stopped (a record of %s was never "
                "pushed; last push %s)",
                setting.pk,
                timezone.localtime(since).isoformat(),
                timezone.localtime(receiver.last_push_at).isoformat(),
            )
            from ..queue import enqueue_push_stopped_mail

            enqueue_push_stopped_mail(setting_id=setting.pk)
    return receiver


def stopped_receivers_for(tenant_id: int):
    """The tenant's stopped push subscriptions (for the tenant pages' banner)."""
    return PushReceiver.objects.filter(setting__tenant_id=tenant_id, stopped_at__isnull=False)


def regenerate_token(*, setting: ConnectSetting) -> str:
    """A new receiving path (support's button): the old URL answers 404 from now on, and what
    was known of the old subscription (received, stopped) is forgotten until a push arrives at
    the new one."""
    from ..models import new_push_token

    token = new_push_token()
    with transaction.atomic():
        ConnectSetting.objects.filter(pk=setting.pk).update(push_token=token)
        PushReceiver.objects.filter(setting_id=setting.pk).delete()
        audit.record_update(setting, {"push_token": (None, None)})  # stored masked
    setting.push_token = token
    return setting.senselink_push_path


# --- what to submit to JCV --------------------------------------------------------------------


def push_url(setting: ConnectSetting) -> str:
    """The full receiving URL (PORTAL_BASE_URL + the setting's path)."""
    return settings.PORTAL_BASE_URL.rstrip("/") + setting.senselink_push_path


@dataclass(frozen=True)
class Details:
    """What the tenant submits to JCV, and what the portal knows of the subscription."""

    url: str
    ip: str
    port: int
    receiver: PushReceiver | None


def details_for(setting: ConnectSetting) -> Details:
    return Details(
        url=push_url(setting),
        ip=settings.PORTAL_INBOUND_IP,
        port=receiver_port(),
        receiver=PushReceiver.objects.filter(setting_id=setting.pk).first(),
    )


def stopped_notice(tenant_id: int) -> str | None:
    """The banner of the tenant pages while a push subscription is stopped, or None."""
    receiver = stopped_receivers_for(tenant_id).only("stopped_at").first()
    if receiver is None:
        return None
    at = timezone.localtime(receiver.stopped_at)
    return (
        f"SenseLinkのイベントサブスクリプション(プッシュ)が停止しています"
        f"({at:%m月%d日 %H:%M}に検出)。出勤は定期取得で打刻されますが、数秒での打刻は"
        f"止まっています。{RESTORE_HOWTO}"
    )


def receiver_port() -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(settings.PORTAL_BASE_URL)
    return parts.port or (443 if parts.scheme == "https" else 80)


def prune_messages(*, now: datetime | None = None) -> int:
    """Delete push messages older than PUSH_MESSAGE_DAYS (SenseLink retries within seconds)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.PUSH_MESSAGE_DAYS)
    deleted, _ = PushMessage.objects.filter(received_at__lt=cutoff).delete()
    return deleted
