"""Keys on SQLite and PostgreSQL: create, authenticate, revoke, expire, rotate, bootstrap, cache, tenants."""

from __future__ import annotations

import asyncio
import time

import pytest

from fedinf.access import AccessControl, Authenticator, Limits, Scopes, Tenant, check_serving, new_key
from fedinf.access.keys import hash_key, parse_key
from fedinf.data_class import DataClass
from fedinf.errors import AuthError, ConfigError, NotFound


async def auth_code(ac_or_auth, header) -> str:
    with pytest.raises(AuthError) as ei:
        await ac_or_auth.authenticate(header)
    assert ei.value.status_code == 401
    return ei.value.code


def test_key_format_and_hash_only() -> None:
    rec, secret = new_key(tenant="acme", roles=("user",))
    assert secret.startswith(f"fk_{rec.key_id}_") and parse_key(secret) == rec.key_id
    assert rec.key_hash == hash_key(secret) and secret not in repr(rec) and "key_hash" not in rec.to_dict()
    with pytest.raises(ValueError):
        new_key(tenant="acme", roles=("root",))
    with pytest.raises(ValueError):
        new_key(tenant="bad tenant!")


async def test_create_authenticate_and_scopes(key_store) -> None:
    ac = AccessControl(key_store)
    scopes = Scopes(models=("local-*",), zones=("onprem",), max_class=DataClass.CONFIDENTIAL)
    rec, secret = await ac.create_key(tenant="acme", name="svc", scopes=scopes,
                                      limits=Limits(requests_per_minute=5))
    p = await ac.authenticate(f"Bearer {secret}")
    assert (p.key_id, p.tenant, p.name, p.roles) == (rec.key_id, "acme", "svc", frozenset({"user"}))
    assert p.scopes == scopes and p.limits.requests_per_minute == 5 and p.max_class is DataClass.CONFIDENTIAL
    assert (await ac.authenticate(f"bearer   {secret}  ")).key_id == rec.key_id
    assert (await ac.authenticate(secret)).key_id == rec.key_id  # bare key (x-api-key, unwrapped bearer)
    # the store holds only the hash
    if hasattr(key_store, "url") and key_store.url.startswith("sqlite"):
        assert secret.encode() not in open(key_store.url.removeprefix("sqlite:///"), "rb").read()
    assert [k.key_id for k in await ac.list_keys(tenant="acme")] == [rec.key_id]


async def test_auth_error_codes(key_store) -> None:
    ac = AccessControl(key_store)
    rec, secret = await ac.create_key(tenant="acme")
    assert await auth_code(ac, None) == "missing_api_key"
    assert await auth_code(ac, "") == "missing_api_key"
    assert await auth_code(ac, f"Basic {secret}") == "invalid_api_key"
    assert await auth_code(ac, "Bearer") == "invalid_api_key"
    assert await auth_code(ac, "Bearer sk-openai-style") == "invalid_api_key"
    assert await auth_code(ac, f"Bearer {secret[:-1]}x") == "invalid_api_key"  # right id, wrong secret
    other, _ = new_key(tenant="acme")
    assert await auth_code(ac, f"Bearer fk_{other.key_id}_{secret.split('_', 2)[2]}") == "invalid_api_key"
    await ac.revoke_key(rec.key_id)
    assert await auth_code(ac, f"Bearer {secret}") == "revoked_api_key"
    rec2, secret2 = await ac.create_key(tenant="acme", expires_at=time.time() - 1)
    assert await auth_code(ac, f"Bearer {secret2}") == "expired_api_key"
    with pytest.raises(NotFound):
        await ac.revoke_key("000000000000")


async def test_rotate(key_store) -> None:
    ac = AccessControl(key_store)
    old, old_secret = await ac.create_key(tenant="acme", name="svc", roles=("user", "auditor"),
                                          limits=Limits(tokens_per_minute=100))
    new, new_secret = await ac.rotate_key(old.key_id)
    assert new.key_id != old.key_id and new.rotated_from == old.key_id
    assert (new.tenant, new.name, new.roles, new.limits) == (old.tenant, old.name, old.roles, old.limits)
    assert (await ac.authenticate(f"Bearer {new_secret}")).key_id == new.key_id
    assert await auth_code(ac, f"Bearer {old_secret}") == "revoked_api_key"
    # with a grace period the old key keeps working until it ends
    new2, _ = await ac.rotate_key(new.key_id, grace_s=60)
    assert (await ac.authenticate(f"Bearer {new_secret}")).key_id == new.key_id
    assert {k.key_id for k in await ac.list_keys()} == {new.key_id, new2.key_id}


async def test_bootstrap_admin_once(key_store) -> None:
    ac = AccessControl(key_store)
    secret = await ac.ensure_admin_key()
    assert secret is not None
    p = await ac.authenticate(f"Bearer {secret}")
    assert p.is_admin and p.tenant == "default"
    assert await ac.ensure_admin_key() is None
    # concurrent first starts create exactly one
    assert len(await ac.list_keys(include_inactive=True)) == 1


async def test_bootstrap_concurrent(key_store) -> None:
    acs = [AccessControl(key_store) for _ in range(5)]
    results = await asyncio.gather(*(a.ensure_admin_key() for a in acs))
    assert sum(r is not None for r in results) == 1


async def test_cache_hits_and_ttl(key_store) -> None:
    now = [1000.0]
    auth = Authenticator(key_store, ttl_s=5.0, clock=lambda: now[0])
    rec, secret = new_key(tenant="acme")
    key_store.insert_key(rec)
    await asyncio.gather(*(auth.authenticate(f"Bearer {secret}") for _ in range(50)))
    assert auth.lookups == 1  # concurrent misses share one lookup, then hits
    # another process revokes: seen once the TTL has passed
    key_store.revoke_key(rec.key_id)
    await auth.authenticate(f"Bearer {secret}")
    now[0] += 5.1
    assert await auth_code(auth, f"Bearer {secret}") == "revoked_api_key"
    assert auth.lookups == 2
    # unknown ids are cached too
    ghost, ghost_secret = new_key(tenant="acme")
    for _ in range(10):
        assert await auth_code(auth, f"Bearer {ghost_secret}") == "invalid_api_key"
    assert auth.lookups == 3


async def test_update_and_tenants(key_store) -> None:
    ac = AccessControl(key_store)
    rec, secret = await ac.create_key(tenant="acme")
    assert not (await ac.authenticate(f"Bearer {secret}")).log_content
    await ac.upsert_tenant(Tenant(name="acme", description="Acme", log_content=True))
    assert (await ac.authenticate(f"Bearer {secret}")).log_content
    assert [t.name for t in await ac.list_tenants()] == ["acme"]
    upd = await ac.update_key(rec.key_id, scopes=Scopes(models=("m",)), roles=("auditor",))
    assert upd.scopes.models == ("m",) and upd.roles == ("auditor",)
    p = await ac.authenticate(f"Bearer {secret}")
    assert p.roles == frozenset({"auditor"})
    with pytest.raises(NotFound):
        await ac.get_tenant("nope")


async def test_open_without_keys_only_on_loopback() -> None:
    check_serving("127.0.0.1", False)
    check_serving("::1", False)
    check_serving("localhost", False)
    check_serving("0.0.0.0", True)
    for host in ("0.0.0.0", "10.1.2.3", "example.com", ""):
        with pytest.raises(ConfigError):
            check_serving(host, False)


BOOT = r"""
import asyncio, sys
from fedinf.access import AccessControl, open_access_store
url, schema = sys.argv[1], sys.argv[2]
secret = asyncio.run(AccessControl(open_access_store(url, schema=schema)).ensure_admin_key())
print("created" if secret else "skipped")
"""


def test_bootstrap_from_several_processes_creates_one_key(key_store) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    schema = getattr(key_store, "schema", "fedinf")
    procs = [subprocess.Popen([sys.executable, "-c", BOOT, key_store.url, schema], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["created", "skipped", "skipped"]
    assert len(key_store.list_keys(include_inactive=True)) == 1


async def test_redis_down_fails_closed() -> None:
    from fedinf.access import Limits, Principal
    from fedinf.access.redis_limits import RedisLimiter
    from fedinf.errors import ServiceUnavailable

    from tests.conftest import free_port

    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ServiceUnavailable) as ei:
        await lim.admit(Principal(key_id="k", tenant="t", limits=Limits(requests_per_minute=5)))
    assert ei.value.code == "limits_unavailable"
    await lim.aclose()


async def test_postgres_store_reconnects(key_store) -> None:
    if not isinstance(key_store, __import__("fedinf.access", fromlist=["x"]).PostgresAccessStore):
        pytest.skip("connection loss is a PostgreSQL concern")
    import psycopg

    rec, secret = new_key(tenant="acme")
    key_store.insert_key(rec)
    pid = key_store._all("SELECT pg_backend_pid()")[0][0]
    with psycopg.connect(key_store.url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert key_store.get_key(rec.key_id)[0].key_id == rec.key_id  # read: reconnected transparently
    rec2, _ = new_key(tenant="acme")
    key_store.insert_key(rec2)
    assert len(key_store.list_keys()) == 2


async def test_cached_key_still_checked_for_expiry_and_revocation(key_store) -> None:
    """The cache keeps the key and its principal (no store query, no new Principal per request), but every request
    checks expiry against the wall clock, and a revocation in this process takes effect on the next request."""
    wall = [time.time()]
    ac = AccessControl(key_store, cache_ttl_s=3600.0)
    ac.authenticator._wall = lambda: wall[0]
    rec, secret = await ac.create_key(tenant="acme", expires_at=wall[0] + 60)
    first = await ac.authenticate(f"Bearer {secret}")
    assert await ac.authenticate(f"Bearer {secret}") is first and ac.authenticator.lookups == 1
    wall[0] += 61  # expires while cached (the TTL is an hour)
    assert await auth_code(ac, f"Bearer {secret}") == "expired_api_key"
    assert ac.authenticator.lookups == 1
    rec2, secret2 = await ac.create_key(tenant="acme", limits=Limits(token_budget=10))
    assert (await ac.authenticate(f"Bearer {secret2}")).limits.token_budget == 10
    await ac.update_key(rec2.key_id, limits=Limits(token_budget=20))  # seen at once: the cached principal is gone
    assert (await ac.authenticate(f"Bearer {secret2}")).limits.token_budget == 20
    await ac.revoke_key(rec2.key_id)  # revoked_at: the real time now
    wall[0] = time.time() + 1
    assert await auth_code(ac, f"Bearer {secret2}") == "revoked_api_key"
    assert await auth_code(ac, f"Bearer {secret2[:-1]}x") == "invalid_api_key"  # cached entry, wrong secret
