"""Access control: API keys (hashed), tenants, roles and scopes, authentication, rate limits and budgets.

The server builds one :class:`AccessControl` from config (``AccessControl.from_config``); per request it calls
``principal = await access.authenticate(request.headers.get("authorization"))``, ``await access.admit(principal)``
before the backend call and ``await access.settle(principal, tokens=used)`` after it; the routing decision asks
``principal.may_use_model(model_id, zone)`` etc.
"""

from fedinf.access.authenticator import Authenticator
from fedinf.access.control import AccessControl, check_serving, is_loopback
from fedinf.access.keys import KeyRecord, Tenant, new_key
from fedinf.access.limits import Limiter, MemoryLimiter, period_bounds
from fedinf.access.principal import ROLES, Limits, Principal, Scopes
from fedinf.access.store import PostgresAccessStore, SqliteAccessStore, open_access_store

__all__ = [
    "ROLES", "AccessControl", "Authenticator", "KeyRecord", "Limiter", "Limits", "MemoryLimiter",
    "PostgresAccessStore", "Principal", "Scopes", "SqliteAccessStore", "Tenant", "check_serving", "is_loopback",
    "new_key", "open_access_store", "period_bounds",
]
