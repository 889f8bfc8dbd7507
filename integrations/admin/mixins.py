"""Permission rules shared by the admins: who may start runs, and rows nobody edits."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# This project's "may trigger runs": nobody adds run rows by hand (the run admin is read-only),
# so the permission has no other meaning.
TRIGGER_PERMISSION = "integrations.add_syncrun"


class TriggersRunsMixin:
    """For admins with buttons or actions that start runs (``permissions=["trigger"]``)."""

    def has_trigger_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(TRIGGER_PERMISSION)


class ReadOnlyAdminMixin:
    """Audit rows: nobody adds or changes them here.

    Superusers may delete them, so a tenant can be deleted with its history, unless the rows
    must outlive any deletion by hand (``superusers_may_delete = False``: the append-only
    records, see AppendOnlyAdminMixin).
    """

    superusers_may_delete = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.superusers_may_delete and request.user.is_superuser


class AppendOnlyAdminMixin(ReadOnlyAdminMixin):
    """Append-only records (変更履歴, 利用規約同意, 連携ログ, エラー詳細): nobody adds, changes or
    deletes them in the admin, superusers included; their delete views answer 403 and the
    bulk delete action is gone. Runs (and their errors) older than SYNC_HISTORY_DAYS are deleted
    by the nightly prune_history only. A tenant whose history holds such rows cannot be deleted
    here either (Django asks for the delete permission of every row a deletion would take).
    """

    superusers_may_delete = False
