"""When a tenant's real-time poll runs: due, queued (at most one), claimed (one at a time).

``RealtimeState`` holds it. Both the push receiver (``push.py``, a wake) and the poll
(``realtime.py``) use this module; neither imports the other.

* ``wake`` asks for a poll now (a push): coalesced, at most one queued poll per tenant; a poll
  running now polls once more when it ends.
* ``queue_due`` (the dispatcher's minute tick) queues one poll per tenant whose interval is over.
* ``claim`` gives one poll the tenant (a lease token, ``runs.poll_holder``); two clusters never
  poll one tenant at once. Polls of one tenant start at least ``REALTIME_MIN_POLL_SPACING_SECONDS``
  apart, so a flood of pushes costs at most one poll per few seconds.
* ``release`` ends it: the next poll at once if asked meanwhile, else after the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import queue
from ..models import ConnectSetting, RealtimeState, Tenant
from .leases import Holder, poll_holder
from .runs import lease_seconds

# The dispatcher ticks every minute: a poll is due this much before its interval is over, so
# the tick that follows the interval's end never waits a whole extra minute.
TICK_SLACK = timedelta(seconds=30)
# A queued poll not taken after this long is queued again (its task was lost).
QUEUED_STALE = timedelta(minutes=10)


def min_spacing() -> timedelta:
    return timedelta(seconds=settings.REALTIME_MIN_POLL_SPACING_SECONDS)


def _lease() -> timedelta:
    return timedelta(seconds=lease_seconds())


def state_for(setting_id: int, now: datetime) -> RealtimeState:
    state, _created = RealtimeState.objects.get_or_create(
        setting_id=setting_id, defaults={"next_poll_at": now}
    )
    return state


def polled_at(setting: ConnectSetting | None) -> datetime | None:
    """When the tenant's last real-time poll ran (the pages and the admin show it)."""
    if setting is None or not setting.realtime_clock_in:
        return None
    return (
        RealtimeState.objects.filter(setting=setting)
        .values_list("last_polled_at", flat=True)
        .first()
    )


def _queue_polls(setting_ids: list[int]) -> None:
    jobs = [queue.poll_job(setting_id=pk) for pk in setting_ids]
    transaction.on_commit(lambda: queue.enqueue(jobs), robust=True)


def _not_queued_nor_running(now: datetime) -> Q:
    return (Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_STALE)) & (
        Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now)
    )


def wake(setting_id: int, *, reason: str = "push") -> bool:
    """Ask for an immediate poll of this tenant; False when one is already queued (coalesced:
    at most one queued poll per tenant). A poll running now polls again when it ends."""
    now = timezone.now()
    state = state_for(setting_id, now)
    with transaction.atomic():  # its few statements in one commit: the receiver answers sooner
        RealtimeState.objects.filter(pk=state.pk, next_poll_at__gt=now).update(next_poll_at=now)
        queued = (
            RealtimeState.objects.filter(pk=state.pk)
            .filter(_not_queued_nor_running(now))
            .update(queued_at=now, queued_reason=reason[:20])
        )
        if queued:
            _queue_polls([setting_id])
    return bool(queued)


def _spread(setting_id: int, interval_minutes: int) -> timedelta:
    return timedelta(minutes=setting_id % max(1, interval_minutes))


def queue_due(*, now: datetime) -> int:
    """The dispatcher's every-minute step: queue the due polls (one per tenant at most)."""
    realtime = ConnectSetting.objects.filter(
        realtime_clock_in=True, tenant__subscription_status=Tenant.Subscription.ACTIVE
    )
    missing = realtime.filter(realtime_state__isnull=True)
    # A tenant's first poll falls within its first interval, spread by its id: a thousand
    # tenants turned on together poll a fifth of them each minute, not all in one.
    RealtimeState.objects.bulk_create(
        [
            RealtimeState(setting_id=pk, next_poll_at=now + _spread(pk, minutes))
            for pk, minutes in missing.values_list("pk", "realtime_interval_minutes")
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    due = RealtimeState.objects.filter(
        setting__realtime_clock_in=True,
        setting__tenant__subscription_status=Tenant.Subscription.ACTIVE,
        next_poll_at__lte=now,
    ).filter(_not_queued_nor_running(now))
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).values_list("pk", "setting_id"))
        for start in range(0, len(rows), 500):
            ids = [pk for pk, _setting in rows[start : start + 500]]
            RealtimeState.objects.filter(pk__in=ids).update(queued_at=now, queued_reason="tick")
        _queue_polls([setting_id for _pk, setting_id in rows])
    return len(rows)


@dataclass(frozen=True)
class Claim:
    """A poll's hold on its tenant: the state row as claimed and the lease's holder."""

    state: RealtimeState
    token: int
    holder: Holder


def wait_before_claim(setting_id: int, now: datetime) -> float:
    """Seconds until this tenant may be polled again (polls start ``min_spacing`` apart)."""
    last = (
        RealtimeState.objects.filter(setting_id=setting_id)
        .values_list("last_polled_at", flat=True)
        .first()
    )
    if last is None:
        return 0.0
    return max(0.0, (last + min_spacing() - now).total_seconds())


def claim(setting_id: int, now: datetime) -> Claim | None:
    """Take the tenant's poll lease; None when another poll of the tenant is running (it polls
    once more when it ends)."""
    state = state_for(setting_id, now)
    with transaction.atomic():
        # next_poll_at = the lease's end: a poll whose worker dies is polled again after it;
        # anyone asking for a poll meanwhile sets it earlier, and the release notices.
        claimed = (
            RealtimeState.objects.filter(pk=state.pk)
            .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
            .update(
                poll_token=F("poll_token") + 1,
                poll_lease_until=now + _lease(),
                queued_at=None,
                next_poll_at=now + _lease(),
            )
        )
    if claimed != 1:
        RealtimeState.objects.filter(pk=state.pk).update(queued_at=None, next_poll_at=now)
        return None
    state.refresh_from_db()
    holder = poll_holder(state_id=state.pk, setting_id=setting_id, token=state.poll_token)
    return Claim(state=state, token=state.poll_token, holder=holder)


def release(*, claim: Claim, now: datetime, fields: dict[str, Any]) -> None:
    """End the poll (conditional on its token): store ``fields`` (the feed cursor, pending
    punches), then queue the next poll at once if one was asked for meanwhile, else after the
    tenant's interval."""
    state = claim.state
    setting = (
        ConnectSetting.objects.filter(pk=state.setting_id).only("realtime_interval_minutes").first()
    )
    interval = timedelta(minutes=setting.realtime_interval_minutes if setting else 5)
    mine = RealtimeState.objects.filter(pk=state.pk, poll_token=claim.token)
    with transaction.atomic():
        mine.update(poll_lease_until=None, last_polled_at=now, **fields)
        # Asked again while this poll ran (a push): poll at once; otherwise after the interval.
        asked = mine.filter(next_poll_at__lt=now + _lease()).update(
            queued_at=now, queued_reason="again"
        )
        if not asked:
            mine.update(next_poll_at=now + interval - TICK_SLACK)
        else:
            _queue_polls([state.setting_id])
