"""Key-cache invalidation across gateway processes: Redis pub/sub, with a short cache TTL whenever it is down.

Every process caches looked-up keys for ``access.key_cache_ttl_s`` (5 s). Without more, a key revoked through one
process would keep working in the others until their cache entries expire. With ``access.redis_url`` set:

- a process that changes a key (revoke, rotate, update, tenant change; the admin API or ``fedinf keys``) publishes
  the key id on ``{redis_prefix}:keys:invalidate`` right after the store committed the change (``*`` = every key);
- every process subscribes (:class:`KeyInvalidation`, a background task) and drops the key from its cache when the
  message arrives, so its next request reads the store again: a revocation takes effect everywhere within the
  pub/sub latency (milliseconds), not the TTL;
- **fail safe**: while the subscription is not established (Redis down, network split, before the first connect)
  the cache TTL drops to ``access.key_cache_fallback_ttl_s`` (default 0.5 s) and the cache is cleared on every
  transition, because messages sent meanwhile are lost. The subscriber pings Redis every second and treats a
  missing answer for 3 s as a disconnect (a silently dead TCP connection never raises by itself), then reconnects
  with a capped backoff. The 5 s TTL stays as the safety net for a message lost while connected.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from fedinf.access.authenticator import Authenticator

log = logging.getLogger("fedinf.access.invalidation")

ALL_KEYS = "*"
PING_EVERY_S = 1.0
DEAD_AFTER_S = 3.0


def channel_name(prefix: str) -> str:
    """The pub/sub channel carrying key ids whose cached entries must be dropped."""
    return f"{prefix}:keys:invalidate"


def publish_sync(url: str, prefix: str, key_id: str | None) -> int:
    """Publish one invalidation from synchronous code (the CLI); returns how many processes received it.
    Raises redis errors: the caller says that other processes will notice within the cache TTL instead."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        return int(client.publish(channel_name(prefix), key_id or ALL_KEYS))
    finally:
        client.close()


class KeyInvalidation:
    """Publisher and background subscriber of key invalidations for one process's :class:`Authenticator`."""

    def __init__(self, url: str, authenticator: Authenticator, *, prefix: str = "fedinf", ttl_s: float = 5.0,
                 fallback_ttl_s: float = 0.5, max_backoff_s: float = 2.0) -> None:
        self.url = url
        self.channel = channel_name(prefix)
        self.authenticator = authenticator
        self.ttl_s = ttl_s
        self.fallback_ttl_s = min(fallback_ttl_s, ttl_s)
        self.max_backoff_s = max_backoff_s
        self.client_name = f"fedinf-keys-{os.getpid()}-{id(self):x}"  # names the subscriber in CLIENT LIST
        self.connected = False
        self.received = 0
        self.reconnects = 0
        self._session_ok = False
        self._task: asyncio.Task[None] | None = None
        self._publisher: Any = None
        self._degrade()

    # ------------------------------------------------------------------ state

    def _degrade(self) -> None:
        """Not subscribed: short TTL, and forget everything (invalidations may be missed from now on)."""
        self.connected = False
        self.authenticator.ttl_s = self.fallback_ttl_s
        self.authenticator.invalidate()

    def _establish(self) -> None:
        """Subscribed: the normal TTL; forget everything cached while messages could have been missed."""
        self.authenticator.invalidate()
        self.authenticator.ttl_s = self.ttl_s
        self.connected = self._session_ok = True

    # ------------------------------------------------------------------ publishing

    async def publish(self, key_id: str | None) -> int:
        """Tell every process to drop ``key_id`` (``None``: every key). Returns the number of subscribers reached;
        0 when Redis is unreachable (logged: the others then notice within their cache TTL)."""
        import redis.asyncio as aioredis

        try:
            if self._publisher is None:
                self._publisher = aioredis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
            return int(await self._publisher.publish(self.channel, key_id or ALL_KEYS))
        except Exception as exc:  # noqa: BLE001 - redis-py raises many kinds; the change itself is committed
            log.warning("could not publish the invalidation of key %s (%r); other processes see it within "
                        "their cache TTL", key_id or ALL_KEYS, exc)
            return 0

    # ------------------------------------------------------------------ subscribing

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fedinf-key-invalidation")

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            self._session_ok = False
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: degrade, then reconnect
                if self.connected:
                    log.warning("key invalidation channel lost (%r); cache TTL is %.2fs until it is back",
                                exc, self.fallback_ttl_s)
                self._degrade()
            self.reconnects += 1
            backoff = 0.05 if self._session_ok else min(self.max_backoff_s, backoff * 2)
            await asyncio.sleep(backoff)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1.0, socket_keepalive=True,
                                         client_name=self.client_name)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            last_pong = last_ping = time.monotonic()
            while True:
                msg = await pubsub.get_message(timeout=0.25)
                now = time.monotonic()
                if msg is not None:
                    last_pong = now  # any traffic proves the connection
                    self._handle(msg)
                if now - last_ping >= PING_EVERY_S:
                    await pubsub.ping()
                    last_ping = now
                if now - last_pong > DEAD_AFTER_S:
                    raise ConnectionError(f"no answer from Redis for {DEAD_AFTER_S:.0f}s")
        finally:
            if self.connected:
                self._degrade()
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:  # noqa: BLE001 - the connection is being discarded
                pass

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "subscribe":
            self._establish()
            log.info("key invalidation channel %s subscribed", self.channel)
        elif kind == "message":
            data = msg.get("data")
            key_id = data.decode() if isinstance(data, bytes) else str(data)
            self.received += 1
            self.authenticator.invalidate(None if key_id == ALL_KEYS else key_id)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            try:
                await publisher.aclose()
            except Exception:  # noqa: BLE001
                pass
