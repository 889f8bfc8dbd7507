"""The audit trail (変更履歴): which changes of a tenant's settings and members are recorded.

django-auditlog records every save and delete of the models registered here (who: the request's
user, set by portal.audit.AuditActorMiddleware; nobody for the workers: システム). A secret never
reaches an audit row: every field whose name says token, secret, key or password is masked
*whole* before the row is written (``mask_secret``), and the token digest is not tracked at
all, so a row says only that the secret changed (shown as 「変更」). The few writes made with
``QuerySet.update`` (a new push token, a setting switched off by a sync) record themselves
through ``record_update``.

Each row carries its tenant in ``additional_data`` (the models' ``get_additional_data``): the
tenant's 変更履歴 page and the admin filter on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import ConnectSetting, Tenant, TenantMembership

# What a masked value is stored as: a constant, so nothing of the secret (not its length, not
# its ciphertext) is kept.
MASK = "***"
SECRET_NAME = re.compile(r"token|secret|key|password", re.IGNORECASE)
# Derived from a secret, or noise: never recorded.
EXCLUDED = {
    Tenant: ["kot_token_digest"],
    ConnectSetting: ["updated_at"],
    TenantMembership: [],
}
MASK_CALLABLE = "integrations.audit.mask_secret"
ACTION_LABELS = {
    LogEntry.Action.CREATE: gettext_lazy("作成"),
    LogEntry.Action.UPDATE: gettext_lazy("変更"),
    LogEntry.Action.DELETE: gettext_lazy("削除"),
}


def mask_secret(value: str) -> str:
    """django-auditlog's mask callable: the whole value, whatever it is."""
    return MASK


def secret_fields(model: type[models.Model]) -> list[str]:
    """The model's fields whose values the audit trail never stores."""
    excluded = set(EXCLUDED.get(model, ()))
    return [
        field.name
        for field in model._meta.concrete_fields
        if SECRET_NAME.search(field.name) and field.name not in excluded
    ]


def register() -> None:
    """Register the tenant's models with django-auditlog (from IntegrationsConfig.ready)."""
    for model, excluded in EXCLUDED.items():
        if auditlog.contains(model):
            continue
        auditlog.register(
            model,
            # The model's own columns only (a creation would otherwise list reverse relations).
            include_fields=[
                field.name
                for field in model._meta.concrete_fields
                if not field.primary_key and field.name not in excluded
            ],
            exclude_fields=list(excluded),
            mask_fields=secret_fields(model),
            mask_callable=MASK_CALLABLE,
        )


def record_update(instance: models.Model, changes: dict[str, tuple[object, object]]) -> None:
    """An audit row for a change written with ``QuerySet.update`` (no signal fires for it):
    ``changes`` maps a field to its (old, new) values; a secret's are masked like any save."""
    masked = set(secret_fields(type(instance)))
    LogEntry.objects.log_create(
        instance,
        action=LogEntry.Action.UPDATE,
        changes={
            name: [MASK, MASK] if name in masked else [str(old), str(new)]
            for name, (old, new) in changes.items()
        },
    )


def entries_for_tenant(tenant_id: int) -> QuerySet[LogEntry]:
    """The tenant's audit rows, newest first."""
    return (
        LogEntry.objects.filter(additional_data__tenant_id=tenant_id)
        .select_related("actor", "actor__membership", "content_type")
        .order_by("-timestamp", "-id")
    )


@dataclass(frozen=True)
class Change:
    label: str
    text: str


def describe_changes(entry: LogEntry) -> list[Change]:
    """One line per changed field: its label, then 「変更」 for a secret or "old → new"."""
    model = entry.content_type.model_class() if entry.content_type_id else None
    masked = set(secret_fields(model)) if model else set()
    lines = []
    for name, values in (entry.changes_dict or {}).items():
        field = _field(model, name)
        if field is not None and not field.concrete:
            continue
        label = str(field.verbose_name) if field is not None else name
        if name in masked or field is None:
            lines.append(Change(label, _("「変更」")))
            continue
        old, new = (list(values) + [None, None])[:2] if isinstance(values, list) else (None, None)
        if entry.action == LogEntry.Action.CREATE:
            lines.append(Change(label, _display(field, new)))
        elif entry.action == LogEntry.Action.DELETE:
            lines.append(Change(label, _display(field, old)))
        else:
            lines.append(Change(label, f"{_display(field, old)} → {_display(field, new)}"))
    return lines


def _field(model: type[models.Model] | None, name: str) -> models.Field | None:
    if model is None:
        return None
    try:
        return model._meta.get_field(name)  # type: ignore[return-value]
    except Exception:
        return None


def _display(field: models.Field, value: object) -> str:
    if value in (None, "None", ""):
        return _("(空)")
    text = str(value)
    if isinstance(field, models.BooleanField):
        return _("はい") if text == "True" else _("いいえ")
    choices = dict(field.flatchoices or ())
    if choices:
        for key, label in choices.items():
            if str(key) == text:
                return str(label)
    return text


def actor_label(entry: LogEntry, *, tenant_id: int | None = None) -> str:
    """Who made the change: a member's user name, サポート for anyone else, システム for a job.

    For the tenant's own page (``tenant_id`` given) support staff are not named.
    """
    actor = entry.actor
    if actor is None:
        return _("システム") if entry.actor_email is None else _("削除された利用者")
    membership = getattr(actor, "membership", None) if not actor.is_staff else None
    if tenant_id is not None and (membership is None or membership.tenant_id != tenant_id):
        return _("サポート")
    if membership is None:
        return _("サポート({name})").format(name=actor.get_username())
    return actor.get_username()


def action_label(entry: LogEntry) -> str:
    return str(ACTION_LABELS.get(entry.action, entry.get_action_display()))


def object_label(entry: LogEntry) -> str:
    model = entry.content_type.model_class() if entry.content_type_id else None
    kind = str(model._meta.verbose_name) if model else ""
    return f"{kind}: {entry.object_repr}" if kind else entry.object_repr
