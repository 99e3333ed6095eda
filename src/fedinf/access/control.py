""":class:`AccessControl`: the one object the server builds from config for keys, authentication and limits.

It owns the key store, the cached :class:`Authenticator` and the rate limiter (in-process, or Redis when
``access.redis_url`` is set). With Redis it also relays key changes to every gateway process through pub/sub
(:mod:`fedinf.access.invalidation`), so a revoked key stops working everywhere at once. Key management methods run
the store in a worker thread so they are safe to call from the event loop (admin API); the CLI uses the store
directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fedinf.access.authenticator import Authenticator
from fedinf.access.keys import KeyRecord, Tenant, new_key, rotated
from fedinf.access.limits import Limiter, MemoryLimiter
from fedinf.access.principal import Limits, Principal, Scopes
from fedinf.access.store import open_access_store
from fedinf.errors import ConfigError, FedinfError, NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from fedinf.config import Config

BOOTSTRAP_TENANT = "default"
T = TypeVar("T")


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(host: str, require_keys: bool) -> None:
    """Refuse to serve without keys on a non-loopback address (raises ConfigError)."""
    if not require_keys and not is_loopback(host):
        raise ConfigError(f"access.require_keys is false but server.host is {host!r}: serving without API keys is "
                          "only allowed on a loopback address (127.0.0.1, ::1, localhost)")


class AccessControl:
    """Keys, tenants, authentication and limits (see the module docstring)."""

    def __init__(self, store: Any, *, limiter: Limiter | None = None, cache_ttl_s: float = 5.0,
                 require_keys: bool = True) -> None:
        self.store = store
        self.authenticator = Authenticator(store, ttl_s=cache_ttl_s)
        self.limiter: Limiter = limiter or MemoryLimiter()
        self.require_keys = require_keys
        self.invalidation: Any = None  # a KeyInvalidation when keys are shared across processes through Redis
        self._closers: list[Any] = []

    @classmethod
    def from_config(cls, config: "Config") -> "AccessControl":
        s = config.access
        check_serving(config.server.host, s.require_keys)
        store = open_access_store(s.store, state_dir=Path(config.server.state_dir), schema=s.schema_name)
        limiter: Limiter
        closers: list[Any] = []
        if s.redis_url:
            from fedinf.access.redis_limits import RedisLimiter
            limiter = RedisLimiter(s.redis_url, prefix=s.redis_prefix)
        elif config.audit.enabled:  # budgets survive restarts: seeded from the durable audit trail
            from fedinf.access.usage import AuditUsage
            usage = AuditUsage(config.audit, state_dir=config.server.state_dir)
            limiter = MemoryLimiter(budget_source=usage)
            closers.append(usage.aclose)
        else:
            limiter = MemoryLimiter()
        ac = cls(store, limiter=limiter, cache_ttl_s=s.key_cache_ttl_s, require_keys=s.require_keys)
        if s.redis_url:
            from fedinf.access.invalidation import KeyInvalidation
            ac.invalidation = KeyInvalidation(s.redis_url, ac.authenticator, prefix=s.redis_prefix,
                                              ttl_s=s.key_cache_ttl_s, fallback_ttl_s=s.key_cache_fallback_ttl_s)
            closers.append(ac.invalidation.aclose)
        ac._closers = closers
        return ac

    async def start(self) -> None:
        """Start the key invalidation subscriber (when keys are shared through Redis)."""
        if self.invalidation is not None:
            self.invalidation.start()

    async def _store_call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a key store call in a worker thread; the store being unreachable is 503 ``key_store_unavailable``."""
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except (FedinfError, ValueError, TypeError, KeyError):
            raise
        except Exception as exc:  # noqa: BLE001 - database drivers raise many kinds
            raise ServiceUnavailable(f"the key store is unavailable ({type(exc).__name__}); try again",
                                     code="key_store_unavailable") from exc

    async def _invalidate(self, key_id: str | None) -> None:
        """Forget ``key_id`` (``None``: every key) here and, through Redis, in every other gateway process."""
        self.authenticator.invalidate(key_id)
        if self.invalidation is not None:
            await self.invalidation.publish(key_id)

    # ---- hot path

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller's principal; raises AuthError. With ``require_keys`` off, a missing header is a local admin."""
        if not self.require_keys and not authorization:
            return Principal(key_id="anonymous", tenant=BOOTSTRAP_TENANT, roles=frozenset({"admin"}))
        return await self.authenticator.authenticate(authorization)

    async def admit(self, principal: Principal, *, est_tokens: int = 0) -> None:
        await self.limiter.admit(principal, est_tokens=est_tokens)

    async def settle(self, principal: Principal, *, tokens: int) -> None:
        await self.limiter.settle(principal, tokens=tokens)

    # ---- management

    async def ensure_admin_key(self) -> str | None:
        """On first start (no active key at all) create an admin key and return its secret (print it once)."""
        rec, secret = new_key(tenant=BOOTSTRAP_TENANT, name="bootstrap-admin", roles=("admin",))
        created = await self._store_call(self.store.insert_key_if_none_active, rec)
        return secret if created else None

    async def create_key(self, *, tenant: str, name: str = "", roles: tuple[str, ...] | list[str] = ("user",),
                         scopes: Scopes | None = None, limits: Limits | None = None,
                         expires_at: float | None = None) -> tuple[KeyRecord, str]:
        """A new key and its secret (shown once). Raises ValueError on bad names or roles."""
        rec, secret = new_key(tenant=tenant, name=name, roles=tuple(roles), scopes=scopes, limits=limits,
                              expires_at=expires_at)
        await self._store_call(self.store.insert_key, rec)
        return rec, secret

    async def get_key(self, key_id: str) -> KeyRecord:
        got = await self._store_call(self.store.get_key, key_id)
        if got is None:
            raise NotFound(f"no API key {key_id}", code="key_not_found")
        return got[0]

    async def list_keys(self, *, tenant: str | None = None, include_inactive: bool = False) -> list[KeyRecord]:
        return await self._store_call(self.store.list_keys, tenant=tenant, include_inactive=include_inactive)

    async def update_key(self, key_id: str, **fields: Any) -> KeyRecord:
        rec = await self._store_call(lambda: self.store.update_key(key_id, **fields))
        if rec is None:
            raise NotFound(f"no API key {key_id}", code="key_not_found")
        await self._invalidate(key_id)
        return rec

    async def revoke_key(self, key_id: str) -> KeyRecord:
        rec = await self._store_call(self.store.revoke_key, key_id)
        if rec is None:
            raise NotFound(f"no API key {key_id}", code="key_not_found")
        await self._invalidate(key_id)
        return rec

    async def rotate_key(self, key_id: str, *, grace_s: float = 0.0) -> tuple[KeyRecord, str]:
        """A successor key (same tenant, roles, scopes, limits); the old one stops working after ``grace_s``."""
        old = await self.get_key(key_id)
        new, secret = rotated(old)
        ok = await self._store_call(lambda: self.store.rotate_key(key_id, new, old_ends_at=time.time() + grace_s))
        if not ok:
            raise NotFound(f"no API key {key_id}", code="key_not_found")
        await self._invalidate(key_id)
        return new, secret

    async def upsert_tenant(self, tenant: Tenant) -> Tenant:
        t = await self._store_call(self.store.upsert_tenant, tenant)
        await self._invalidate(None)  # log_content is part of every cached principal of the tenant
        return t

    async def get_tenant(self, name: str) -> Tenant:
        t = await self._store_call(self.store.get_tenant, name)
        if t is None:
            raise NotFound(f"no tenant {name}", code="tenant_not_found")
        return t

    async def list_tenants(self) -> list[Tenant]:
        return await self._store_call(self.store.list_tenants)

    async def aclose(self) -> None:
        await self.limiter.aclose()
        for close in self._closers:
            await close()
        await asyncio.to_thread(self.store.close)
