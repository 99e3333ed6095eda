"""Authenticate ``Authorization: Bearer fk_...`` headers into :class:`Principal` objects.

Keys are cached in memory for ``ttl_s`` seconds (unknown key ids too, so a flood of bad keys does not reach the
database), so the hot path does not touch the store: per request it parses the key, hashes it (one SHA-256, compared
in constant time) and checks revocation and expiry against the clock; the :class:`Principal` is built once per
lookup and shared by the requests it authenticates (it is immutable). Concurrent misses for one key id share one
lookup. A revocation is seen at once by the process that made it (:meth:`invalidate`) and by other processes within
``ttl_s``, or at once when :class:`~fedinf.access.invalidation.KeyInvalidation` relays invalidations through Redis
pub/sub (it also lowers ``ttl_s`` while that channel is down). A store that cannot be reached gives 503
``key_store_unavailable``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any, Callable

from fedinf.access.keys import KeyRecord, Tenant, matches, parse_key
from fedinf.access.principal import Principal
from fedinf.errors import AuthError, ServiceUnavailable

_Found = tuple[KeyRecord, Tenant, Principal]  # a stored key, its tenant, and the principal they make
_Entry = tuple[float, "_Found | None"]


class Authenticator:
    """Turns an Authorization header into a Principal or raises :class:`AuthError`.

    Codes: ``missing_api_key`` (no header), ``invalid_api_key`` (malformed, unknown or wrong secret),
    ``revoked_api_key``, ``expired_api_key``.
    """

    def __init__(self, store: Any, *, ttl_s: float = 5.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._wall = wall
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[_Found | None]] = {}
        self._generation = 0  # bumped by invalidate(): a lookup that raced an invalidation is not cached
        self.lookups = 0

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal for ``authorization``: a header value (``"Bearer fk_..."``) or the bare key."""
        if not authorization or not authorization.strip():
            raise AuthError("missing API key: send 'Authorization: Bearer fk_...'", code="missing_api_key")
        value = authorization.strip()
        if " " in value:  # a whole header value; a bare key (``x-api-key``, or already unwrapped) has no space
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("malformed Authorization header: expected 'Bearer fk_...'", code="invalid_api_key")
            value = token.strip()
        token = value
        key_id = parse_key(token)
        if key_id is None:
            raise AuthError("invalid API key", code="invalid_api_key")
        found = await self._lookup(key_id)
        if found is None or not matches(token, found[0].key_hash):
            raise AuthError("invalid API key", code="invalid_api_key")
        return self._active(*found)

    async def principal_of(self, key_id: str) -> Principal:
        """The principal of a key authenticated earlier (an admin UI session), checked again now: AuthError once
        the key is revoked, expired or gone (within the cache's ``ttl_s`` in other processes)."""
        found = await self._lookup(key_id)
        if found is None:
            raise AuthError(f"API key {key_id} no longer exists", code="invalid_api_key")
        return self._active(*found)

    def _active(self, rec: KeyRecord, tenant: Tenant, principal: Principal) -> Principal:
        """``principal`` if the key is active now (revocation and expiry are checked on every call)."""
        if rec.revoked_at is not None or rec.expires_at is not None:
            state = rec.state(self._wall())
            if state == "revoked":
                raise AuthError(f"API key {rec.key_id} has been revoked", code="revoked_api_key")
            if state == "expired":
                raise AuthError(f"API key {rec.key_id} has expired", code="expired_api_key")
        return principal

    async def _lookup(self, key_id: str) -> _Found | None:
        now = self._clock()
        hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._inflight.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[_Found | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_id] = fut
        try:
            self.lookups += 1
            generation = self._generation
            try:
                stored = await asyncio.to_thread(self._store.get_key, key_id)
            except Exception as exc:  # noqa: BLE001 - database drivers raise many kinds
                raise ServiceUnavailable(f"the key store is unavailable ({type(exc).__name__}); try again",
                                         code="key_store_unavailable") from exc
            found = None if stored is None else (*stored, stored[0].principal(log_content=stored[1].log_content))
            if generation == self._generation:  # else it may predate a revocation: use it once, never cache it
                self._put(key_id, found)
            fut.set_result(found)
            return found
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            if self._inflight.get(key_id) is fut:
                del self._inflight[key_id]

    def _put(self, key_id: str, found: _Found | None) -> None:
        self._cache[key_id] = (self._clock() + self.ttl_s, found)
        self._cache.move_to_end(key_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget ``key_id`` (or every key) so the next request reads the store."""
        self._generation += 1
        if key_id is None:
            self._cache.clear()
            self._inflight.clear()  # lookups already running may predate the change: later callers start anew
        else:
            self._cache.pop(key_id, None)
            self._inflight.pop(key_id, None)
