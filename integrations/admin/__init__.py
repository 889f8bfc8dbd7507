"""The support desk's admin: customers, their settings, runs, errors and reruns.

Who may do what (the "サポート" group is made by ``manage.py setup_support_group``):
- viewing needs the usual view permissions;
- triggering runs (the tenant page's buttons, the rerun action) needs ``integrations.add_syncrun``
  (mixins.TRIGGER_PERMISSION);
- secrets and the subscription status are changed by superusers only.

Secrets are write-only here: pages show whether one is set (and its last 4 characters), a
separate input replaces it, an empty input keeps it, and history only names the field.

One module per admin: tenants.py (with its inline connect_settings.py), runs.py (with its page
failed_runs.py), errors.py, ledger.py, users.py, audit.py (変更履歴); the libraries' models in
Japanese: lockouts.py (django-axes, with the desk's unlock action), task_queue.py (django-q2).
Their forms are in forms.py, list filters in
filters.py, shared display helpers in display.py and the read-only and run-trigger rules in
mixins.py. Importing this package registers them all.
"""

from .audit import AuditEntryAdmin
from .errors import SyncErrorAdmin
from .ledger import PunchLedgerAdmin
from .lockouts import LockoutAdmin, LoginLogAdmin
from .runs import SyncRunAdmin
from .task_queue import QueuedTaskAdmin
from .tenants import TenantAdmin
from .two_factor import RecoveryCodesAdmin, TotpDeviceAdmin
from .users import TenantMembershipAdmin, TermsConsentAdmin

__all__ = [
    "AuditEntryAdmin",
    "LockoutAdmin",
    "LoginLogAdmin",
    "PunchLedgerAdmin",
    "QueuedTaskAdmin",
    "SyncErrorAdmin",
    "SyncRunAdmin",
    "TenantAdmin",
    "RecoveryCodesAdmin",
    "TotpDeviceAdmin",
    "TenantMembershipAdmin",
    "TermsConsentAdmin",
]
