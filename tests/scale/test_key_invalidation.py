"""Key revocation across gateway processes through Redis pub/sub: at once while the channel is up; a short cache TTL
(fail safe) while it is down, then reconnection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fedinf.access import AccessControl, SqliteAccessStore
from fedinf.access.invalidation import KeyInvalidation
from fedinf.errors import AuthError, ServiceUnavailable


def control(path: Any, redis_url: str, prefix: str, **kw: Any) -> AccessControl:
    """One gateway process's access control (its own store connection and cache), on the shared key store."""
    ac = AccessControl(SqliteAccessStore(path), cache_ttl_s=5.0)
    ac.invalidation = KeyInvalidation(redis_url, ac.authenticator, prefix=prefix, ttl_s=5.0, **kw)
    return ac


async def until(cond: Any, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def rejected_within(ac: AccessControl, secret: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            await ac.authenticate(f"Bearer {secret}")
        except AuthError as exc:
            assert exc.code == "revoked_api_key"
            return time.monotonic() - t0
        await asyncio.sleep(0.005)
    raise AssertionError(f"the revoked key still works after {timeout}s")


async def test_revocation_reaches_the_other_process_at_once(tmp_path, redis_url, redis_prefix) -> None:
    a, b = (control(tmp_path / "keys.db", redis_url, redis_prefix) for _ in range(2))
    await a.start()
    await b.start()
    try:
        await until(lambda: a.invalidation.connected and b.invalidation.connected)
        assert b.authenticator.ttl_s == 5.0
        rec, secret = await a.create_key(tenant="acme")
        for ac in (a, b):
            assert (await ac.authenticate(f"Bearer {secret}")).key_id == rec.key_id  # now cached for 5 s
        lookups = b.authenticator.lookups
        await b.authenticate(f"Bearer {secret}")
        assert b.authenticator.lookups == lookups, "served from the cache"
        await a.revoke_key(rec.key_id)
        took = await rejected_within(b, secret, timeout=1.0)
        assert took < 1.0 and b.invalidation.received >= 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_no_channel_means_a_short_ttl(tmp_path, redis_prefix) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: Redis is "down" from the start
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    ac = control(tmp_path / "keys.db", dead, redis_prefix, fallback_ttl_s=0.2)
    await ac.start()
    try:
        rec, secret = await ac.create_key(tenant="acme")  # publishing fails quietly: the store change stands
        await asyncio.sleep(0.3)
        assert not ac.invalidation.connected and ac.authenticator.ttl_s == 0.2
        assert ac.invalidation.reconnects >= 1
        other = SqliteAccessStore(tmp_path / "keys.db")  # a change made elsewhere, with no message at all
        await ac.authenticate(f"Bearer {secret}")
        other.revoke_key(rec.key_id)
        other.close()
        took = await rejected_within(ac, secret, timeout=1.0)
        assert took <= 0.5
    finally:
        await ac.aclose()


async def test_lost_subscription_degrades_then_reconnects(tmp_path, redis_url, redis_prefix) -> None:
    import redis.asyncio as aioredis

    a, b = (control(tmp_path / "keys.db", redis_url, redis_prefix, fallback_ttl_s=0.3) for _ in range(2))
    await a.start()
    await b.start()
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await until(lambda: a.invalidation.connected and b.invalidation.connected)
        killed = 0
        for c in await admin.client_list(_type="pubsub"):
            if c.get("name") == b.invalidation.client_name:
                await admin.client_kill_filter(_id=c["id"])
                killed += 1
        assert killed == 1
        await until(lambda: not b.invalidation.connected, timeout=5)
        await until(lambda: b.invalidation.connected, timeout=5)  # back, with the normal TTL
        assert b.authenticator.ttl_s == 5.0 and b.invalidation.reconnects >= 1
        rec, secret = await a.create_key(tenant="acme")
        await b.authenticate(f"Bearer {secret}")
        await a.revoke_key(rec.key_id)
        assert await rejected_within(b, secret, timeout=1.0) < 1.0
    finally:
        await admin.aclose()
        await a.aclose()
        await b.aclose()


async def test_unreachable_key_store_is_a_503_and_recovers() -> None:
    """PostgreSQL going away under a running gateway: a key lookup answers 503 (never a 500), then works again."""
    import uuid

    import psycopg

    from fedinf.access import PostgresAccessStore
    from tests.services import pg_dsn

    dsn = pg_dsn()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = PostgresAccessStore(dsn, schema=schema)
    ac = AccessControl(store, cache_ttl_s=0.0)
    try:
        rec, secret = await ac.create_key(tenant="acme")
        assert (await ac.authenticate(f"Bearer {secret}")).key_id == rec.key_id
        with psycopg.connect(dsn, autocommit=True) as admin:  # the server drops the connection ...
            admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
        store._dsn = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"  # ... and refuses new ones
        with pytest.raises(ServiceUnavailable) as info:
            await ac.authenticate(f"Bearer {secret}")
        assert info.value.code == "key_store_unavailable" and info.value.status_code == 503
        with pytest.raises(ServiceUnavailable):  # key management too: 503, never a 500
            await ac.revoke_key(rec.key_id)
        store._dsn = dsn  # the database is back
        assert (await ac.authenticate(f"Bearer {secret}")).key_id == rec.key_id
    finally:
        await ac.aclose()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_cli_revoke_notifies_running_gateways(tmp_path, redis_url, redis_prefix) -> None:
    """`fedinf keys revoke` changes the store directly; with access.redis_url it also publishes the key id."""
    import redis
    from typer.testing import CliRunner

    from fedinf.access.invalidation import channel_name
    from fedinf.cli import app

    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(f"""
server: {{state_dir: "{tmp_path / 'state'}"}}
access: {{redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models: [{{id: fake, backend: fake, zone: onprem, license: Apache-2.0}}]
""")
    store = SqliteAccessStore(tmp_path / "state" / "keys.db")
    from fedinf.access import new_key

    rec, _ = new_key(tenant="acme")
    store.insert_key(rec)
    store.close()
    sub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel_name(redis_prefix))
    try:
        done = CliRunner().invoke(app, ["keys", "revoke", rec.key_id, "--config", str(cfg)])
        assert done.exit_code == 0, done.output
        msg = None
        for _ in range(50):
            msg = sub.get_message(timeout=0.1)
            if msg:
                break
        assert msg is not None and msg["data"] == rec.key_id.encode()
    finally:
        sub.close()
