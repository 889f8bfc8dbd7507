"""The data contract (SPEC section 2): tenants, their connector settings, runs and errors.

One module per part of the contract; every model is importable from here, as before.
"""

from .accounts import TenantMembership, TermsConsent
from .realtime import PunchLedger, PushMessage, PushReceiver, RealtimeState
from .runs import ClusterHeartbeat, SyncError, SyncRun
from .tenants import DAYS, HOURS, PUSH_PATH_PREFIX, ConnectSetting, Tenant, new_push_token
from .workday import KotDivision, KotEmployeeDivision

__all__ = [
    "DAYS",
    "HOURS",
    "PUSH_PATH_PREFIX",
    "ClusterHeartbeat",
    "ConnectSetting",
    "KotDivision",
    "KotEmployeeDivision",
    "PunchLedger",
    "PushMessage",
    "PushReceiver",
    "RealtimeState",
    "SyncError",
    "SyncRun",
    "Tenant",
    "TenantMembership",
    "TermsConsent",
    "new_push_token",
]
