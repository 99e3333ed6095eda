"""Three `fedinf serve` processes on one PostgreSQL (keys, audit) and one Redis (limits, breakers, ejections, key
invalidation), in front of two fake upstream processes, checked from the outside under load:

- exact limits: a key allowed N requests per minute gets N (plus what refills during the burst) across all three,
  the rest 429 - not 3N;
- one audit chain: every request of every process is in one chain that verifies;
- shared ejection: a replica ejected by one process is skipped by the other two (no call reaches it from them);
- revocation: a key revoked through one process stops working in the other two within 1 s (pub/sub, not the 5 s
  cache TTL), measured over several revocations.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from contextlib import ExitStack
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServeProcess, UpstreamProcess
from tests.services import pg_dsn

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONFIG = """
server: {{state_dir: "{state}"}}
access: {{store: "{dsn}", schema_name: {keys_schema}, redis_url: "{redis}", redis_prefix: "{prefix}",
          key_cache_ttl_s: 5}}
audit: {{store: "{dsn}", schema_name: {audit_schema}}}
reliability:
  health_interval_s: 0
  redis_url: "{redis}"
  redis_prefix: "{prefix}"
  outlier: {{consecutive_failures: 3, base_ejection_s: 120, max_ejected_share: 0.5}}
  breaker: {{min_calls: 100000}}
  retries: {{max_attempts: 3, backoff_base_ms: 1, backoff_cap_ms: 2}}
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models:
  - id: pool
    backend: openai
    zone: onprem
    license: Apache-2.0
    timeouts: {{connect_s: 1, read_s: 5, total_s: 20}}
    endpoints:
      - {{url: "{up0}/v1", name: r0}}
      - {{url: "{up1}/v1", name: r1}}
"""
RPM = 30
BODY = {"model": "pool", "messages": [{"role": "user", "content": "hello from the load test"}], "max_tokens": 4}


class Cluster:
    def __init__(self, http: aiohttp.ClientSession, gateways: list[ServeProcess], admin: str) -> None:
        self.http = http
        self.gateways = gateways
        self.admin = {"authorization": f"Bearer {admin}"}

    async def chat(self, gw: ServeProcess, secret: str) -> tuple[int, str]:
        async with self.http.post(gw.url + "/v1/chat/completions", json=BODY,
                                  headers={"authorization": f"Bearer {secret}"}) as r:
            data = await r.json()
            return r.status, (data.get("error") or {}).get("code", "")

    async def models_status(self, gw: ServeProcess, secret: str) -> int:
        async with self.http.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {secret}"}) as r:
            await r.read()
            return r.status

    async def admin_call(self, gw: ServeProcess, method: str, path: str, **kw: Any) -> Any:
        async with self.http.request(method, gw.url + path, headers=self.admin, **kw) as r:
            data = await r.json()
            assert r.status < 300, (r.status, data)
            return data

    async def replicas(self, gw: ServeProcess) -> dict[str, Any]:
        async with self.http.get(gw.url + "/readyz") as r:
            return (await r.json())["replicas"]["pool"]


async def check_limits(c: Cluster, secret: str) -> tuple[int, int]:
    t0 = time.monotonic()
    results = await asyncio.gather(*(c.chat(c.gateways[i % 3], secret) for i in range(4 * RPM)))
    refills = int((time.monotonic() - t0) * RPM / 60) + 1
    admitted = sum(1 for s, _ in results if s == 200)
    assert RPM <= admitted <= RPM + refills, (admitted, refills)  # per-process limits would admit 3 * RPM
    assert all((s, code) == (429, "rate_limit_exceeded") for s, code in results if s != 200), results
    return admitted, len(results)


async def check_shared_ejection(c: Cluster, up0: UpstreamProcess) -> None:
    a, b, cc = c.gateways
    up0.control(action="inject", kind="status", status=503)
    for _ in range(40):  # bursts on the first process only, until it ejects r0
        await asyncio.gather(*(c.chat(a, c.admin["authorization"][7:]) for _ in range(6)))
        if (await c.replicas(a))["r0"]["ejected"]:
            break
    assert (await c.replicas(a))["r0"]["ejected"], "the first process ejected the failing replica"
    t0 = time.monotonic()
    for gw in (b, cc):
        while not (await c.replicas(gw))["r0"]["ejected"]:
            assert time.monotonic() - t0 < 2.0, "ejection not adopted within 2 s"
            await asyncio.sleep(0.02)
    failed_before = up0.stats()["stats"].get("status_503", 0)
    replies = await asyncio.gather(*(c.chat(gw, c.admin["authorization"][7:]) for gw in (b, cc) for _ in range(10)))
    assert all(s == 200 for s, _ in replies), replies
    assert up0.stats()["stats"].get("status_503", 0) == failed_before, "the others sent nothing to the ejected one"
    up0.control(action="clear")


async def revoke_and_time(c: Cluster, revoker: ServeProcess) -> list[float]:
    created = await c.admin_call(revoker, "POST", "/admin/keys", json={"tenant": "acme", "name": "short-lived"})
    secret, key_id = created["secret"], created["key_id"]
    others = [gw for gw in c.gateways if gw is not revoker]
    for gw in c.gateways:
        assert await c.models_status(gw, secret) == 200  # cached everywhere now (for 5 s)

    async def until_refused(gw: ServeProcess, t0: float) -> float:
        while await c.models_status(gw, secret) == 200:
            assert time.monotonic() - t0 < 5.0, "the revoked key still works"
        return time.monotonic() - t0

    t0 = time.monotonic()
    await c.admin_call(revoker, "DELETE", f"/admin/keys/{key_id}")
    took = await asyncio.gather(*(until_refused(gw, t0) for gw in others))
    for gw in others:
        assert await c.chat(gw, secret) == (401, "revoked_api_key")
    return list(took)


async def test_three_gateways_share_limits_chain_ejection_and_revocation(tmp_path, redis_url, redis_prefix,
                                                                        capsys) -> None:
    from fedinf.access import Limits, PostgresAccessStore, new_key
    from fedinf.audit.pg import PostgresAuditStore

    dsn = pg_dsn()
    tag = uuid.uuid4().hex[:10]
    keys_schema, audit_schema = f"t_{tag}_keys", f"t_{tag}_audit"
    store = PostgresAccessStore(dsn, schema=keys_schema)
    admin_rec, admin = new_key(tenant="ops", name="admin", roles=("admin",))
    user_rec, user = new_key(tenant="acme", name="limited", limits=Limits(requests_per_minute=RPM))
    store.insert_key(admin_rec)
    store.insert_key(user_rec)
    store.close()
    try:
        with ExitStack() as stack:
            up0 = stack.enter_context(UpstreamProcess())
            up1 = stack.enter_context(UpstreamProcess())
            cfg = tmp_path / "fedinf.yaml"
            cfg.write_text(CONFIG.format(state=tmp_path / "state", dsn=dsn, keys_schema=keys_schema,
                                         audit_schema=audit_schema, redis=redis_url, prefix=redis_prefix,
                                         up0=up0.origin, up1=up1.origin))
            procs = [ServeProcess(cfg, log_dir=tmp_path) for _ in range(3)]  # all three start at once
            gateways = [stack.enter_context(p) for p in procs]
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                c = Cluster(http, gateways, admin)
                admitted, sent = await check_limits(c, user)
                await check_shared_ejection(c, up0)
                delays = []
                for i in range(6):
                    delays += await revoke_and_time(c, gateways[i % 3])
                verify = await c.admin_call(gateways[1], "GET", "/admin/audit/verify")
        audit = PostgresAuditStore(dsn, schema=audit_schema)
        report = audit.verify()
        records = audit.count()
        audit.close()
        assert report.ok and verify["ok"], (report, verify)
        assert records >= sent  # every chat request of every process, refused ones included, in one chain
        with capsys.disabled():
            print(f"\nscale-out: {admitted}/{sent} admitted with a limit of {RPM}/min across 3 processes; "
                  f"{records} audit records in one valid chain; revocation seen by the other processes after "
                  f"p50 {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms "
                  f"({len(delays)} observations)")
        assert max(delays) < 1.0, delays
    finally:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            for schema in (keys_schema, audit_schema):
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
