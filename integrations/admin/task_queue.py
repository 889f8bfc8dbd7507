"""django-q2's admin (タスクキュー) with every column named in Japanese.

django-q2's own admins name their model fields through gettext (translated in
locale/ja/LC_MESSAGES/django.po), but the queued tasks' columns are plain methods of OrmQ whose
headers Django derives from their English names ("Task id", "Name", "Group"): this admin
gives them Japanese names. Everything else is django-q2's.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_q.admin import QueueAdmin
from django_q.models import OrmQ

from .display import EMPTY


class QueuedTaskAdmin(QueueAdmin):
    list_display = ("id", "key", "task_name", "task_group", "task_func", "lock", "queued_task_id")
    fields = (
        "key",
        "lock",
        "queued_task_id",
        "task_name",
        "task_group",
        "task_func",
        "task_args",
        "task_kwargs",
        "task_options",
    )
    readonly_fields = fields[2:]

    # A package that cannot be read (django-q2 shows "*BadSignature" as its id) has no values.

    @admin.display(description=_("タスクID"))
    def queued_task_id(self, obj: OrmQ) -> Any:
        return _shown(obj.task_id())

    @admin.display(description=_("名前"))
    def task_name(self, obj: OrmQ) -> Any:
        return _shown(obj.name())

    @admin.display(description=_("グループ"))
    def task_group(self, obj: OrmQ) -> Any:
        return _shown(obj.group())

    @admin.display(description=_("関数"))
    def task_func(self, obj: OrmQ) -> Any:
        return _shown(obj.func())

    @admin.display(description=_("引数"))
    def task_args(self, obj: OrmQ) -> Any:
        return _shown(obj.args())

    @admin.display(description=_("キーワード引数"))
    def task_kwargs(self, obj: OrmQ) -> Any:
        return _shown(obj.kwargs())

    @admin.display(description=_("キューのオプション"))
    def task_options(self, obj: OrmQ) -> Any:
        return _shown(obj.q_options())


def _shown(value: Any) -> Any:
    return EMPTY if value is None else value


if admin.site.is_registered(OrmQ):
    admin.site.unregister(OrmQ)
    admin.site.register(OrmQ, QueuedTaskAdmin)
