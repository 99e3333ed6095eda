"""Scale-out: 1 vs 3 `fedinf serve` processes sharing one PostgreSQL (keys, audit chain) and one Redis (limits,
breakers, ejections, key revocation), in one run.

    PYTHONPATH=src .venv/bin/python bench/scale_out/run.py            # full: 3 rounds x 15 s per setup, 30 revocations
    CI=true PYTHONPATH=src .venv/bin/python bench/scale_out/run.py    # CI: 1 round x 6 s per setup, 10 revocations

Against one fake upstream process (``python -m fedinf.testing.upstream``, answers at once), with API keys, Redis
rate limits (a key allowed 10 million requests per minute, so every request runs the Lua check but none is refused)
and the PostgreSQL audit trail on, it measures:

- **throughput**: closed-loop load (aiohttp, concurrency 24 spread evenly over the processes) on 1 process, then on
  3 processes, alternating, same stores; successful requests per second, p50/p99 latency, and the ratio 3 vs 1. On a
  2-core machine three processes cannot triple throughput (the load generator, PostgreSQL and Redis share the cores):
  the ratio says how much of the second core the extra processes turn into requests;
- **exact limits**: a key limited to 60 requests/minute, 240 concurrent requests over the 3 processes; admitted
  count vs the limit (plus what refills during the burst);
- **revocation propagation**: a key revoked through one process (admin API), polled (``GET /v1/models``) on the two
  others until refused; p50 / p95 / max over the observations (the key cache TTL is 5 s; pub/sub invalidation should
  make it milliseconds);
- the audit chain after everything: one chain, verified.

Needs PostgreSQL (127.0.0.1:5432, db ``test``) and Redis (127.0.0.1:6379), like the tests; uses a fresh schema and
key prefix and removes them. Writes ``bench/results/scale_out.md``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import results  # noqa: E402
from bench.common.procs import Proc, free_port  # noqa: E402
from bench.common.stats import fmt, median, percentile  # noqa: E402

WORK = ROOT / "bench" / ".work" / "scale_out"
PG_DSNS = [os.environ.get("FEDINF_TEST_PG_DSN", ""), "postgresql://postgres@127.0.0.1:5432/test",
           "postgresql://root@127.0.0.1:5432/test"]
REDIS_URL = os.environ.get("FEDINF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONCURRENCY = 24
BODY = {"model": "up", "messages": [{"role": "user", "content": "hello from the scale-out bench"}], "max_tokens": 8}
CONFIG = """
server: {{state_dir: "{state}", host: 127.0.0.1}}
access: {{store: "{dsn}", schema_name: {schema}_keys, redis_url: "{redis}", redis_prefix: "{prefix}"}}
audit: {{store: "{dsn}", schema_name: {schema}_audit}}
reliability: {{health_interval_s: 0, redis_url: "{redis}", redis_prefix: "{prefix}"}}
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models:
  - id: up
    backend: openai
    zone: onprem
    license: Apache-2.0
    endpoints: [{{url: "{upstream}/v1", name: r0}}]
"""


@dataclass
class Load:
    ok: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def pg_dsn() -> str:
    import psycopg

    for dsn in filter(None, PG_DSNS):
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            return dsn
        except Exception:  # noqa: BLE001 - try the next one
            continue
    raise SystemExit("PostgreSQL at 127.0.0.1:5432 (db test) is needed for this benchmark")


def start_gateways(n: int, cfg: Path, tag: str) -> list[tuple[Proc, str]]:
    procs = []
    for i in range(n):
        port = free_port()
        proc = Proc(f"fedinf-{tag}-{i}", [sys.executable, "-m", "fedinf", "serve", "--config", str(cfg), "--port",
                                          str(port)], WORK / f"serve-{tag}-{i}.log",
                    env={"PYTHONPATH": str(ROOT / "src")})
        procs.append((proc.start(cwd=WORK), f"http://127.0.0.1:{port}"))
    for proc, url in procs:
        proc.wait_http(url + "/healthz", 120)
    return procs


async def closed_loop(urls: list[str], secret: str, seconds: float) -> Load:
    hdrs = {"authorization": f"Bearer {secret}"}
    lat: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(headers=hdrs, connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:
        stop = time.perf_counter() + seconds

        async def worker(url: str) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    async with http.post(url + "/v1/chat/completions", json=BODY) as r:
                        await r.read()
                        ok = r.status == 200
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    ok = False
                if ok:
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(CONCURRENCY)))
        took = time.perf_counter() - t0
    return Load(len(lat), errors, took, lat)


async def exact_limit(urls: list[str], secret: str, rpm: int) -> tuple[int, int, int]:
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {secret}"}) as http:
        async def one(url: str) -> int:
            async with http.post(url + "/v1/chat/completions", json=BODY) as r:
                await r.read()
                return r.status
        t0 = time.monotonic()
        statuses = await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(4 * rpm)))
        refills = int((time.monotonic() - t0) * rpm / 60)
    return statuses.count(200), len(statuses), refills


async def revocations(urls: list[str], admin: str, rounds: int) -> list[float]:
    delays: list[float] = []
    async with aiohttp.ClientSession() as http:
        async def status(url: str, secret: str) -> int:
            async with http.get(url + "/v1/models", headers={"authorization": f"Bearer {secret}"}) as r:
                await r.read()
                return r.status
        for i in range(rounds):
            revoker = urls[i % len(urls)]
            async with http.post(revoker + "/admin/keys", json={"tenant": "bench", "name": f"r{i}"},
                                 headers={"authorization": f"Bearer {admin}"}) as r:
                created = await r.json()
            secret = created["secret"]
            for url in urls:
                assert await status(url, secret) == 200  # cached everywhere

            async def until_refused(url: str, t0: float) -> float:
                while await status(url, secret) == 200:
                    if time.monotonic() - t0 > 10:
                        raise RuntimeError("revoked key still accepted after 10 s")
                return time.monotonic() - t0
            t0 = time.monotonic()
            async with http.delete(revoker + f"/admin/keys/{created['key_id']}",
                                   headers={"authorization": f"Bearer {admin}"}) as r:
                await r.read()
            delays += await asyncio.gather(*(until_refused(u, t0) for u in urls if u != revoker))
    return delays


def main() -> None:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    rounds, seconds, n_revocations = (1, 6.0, 10) if ci else (3, 15.0, 30)
    WORK.mkdir(parents=True, exist_ok=True)
    import psycopg
    import redis

    from fedinf.access import Limits, PostgresAccessStore, new_key
    from fedinf.audit.pg import PostgresAuditStore

    dsn = pg_dsn()
    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    schema, prefix = f"bench_{uuid.uuid4().hex[:8]}", f"fedinf-bench-{uuid.uuid4().hex[:8]}"
    store = PostgresAccessStore(dsn, schema=f"{schema}_keys")
    admin_rec, admin = new_key(tenant="ops", name="admin", roles=("admin",))
    load_rec, load_key = new_key(tenant="bench", name="load", limits=Limits(requests_per_minute=10_000_000))
    lim_rec, lim_key = new_key(tenant="bench", name="limited", limits=Limits(requests_per_minute=60))
    for rec in (admin_rec, load_rec, lim_rec):
        store.insert_key(rec)
    store.close()
    upstream = Proc("upstream", [sys.executable, "-m", "fedinf.testing.upstream", "--port", str(free_port())],
                    WORK / "upstream.log", env={"PYTHONPATH": str(ROOT / "src")})
    up_url = f"http://127.0.0.1:{upstream.cmd[-1]}"
    cfg = WORK / "fedinf.yaml"
    cfg.write_text(CONFIG.format(state=WORK / "state", dsn=dsn, schema=schema, redis=REDIS_URL, prefix=prefix,
                                 upstream=up_url))
    loads: dict[int, list[Load]] = {1: [], 3: []}
    try:
        upstream.start()
        upstream.wait_http(up_url + "/_control", 60)
        for r in range(rounds):
            for n in ((1, 3) if r % 2 == 0 else (3, 1)):  # alternate the order between rounds
                procs = start_gateways(n, cfg, f"{n}p{r}")
                try:
                    urls = [u for _, u in procs]
                    asyncio.run(closed_loop(urls, load_key, 1.0))  # warm-up (connections, caches)
                    loads[n].append(asyncio.run(closed_loop(urls, load_key, seconds)))
                    print(f"round {r}: {n} process(es) {loads[n][-1].rps:.0f} req/s", flush=True)
                finally:
                    for proc, _ in procs:
                        proc.stop()
        procs = start_gateways(3, cfg, "checks")
        try:
            urls = [u for _, u in procs]
            admitted, sent, refills = asyncio.run(exact_limit(urls, lim_key, 60))
            delays = asyncio.run(revocations(urls, admin, n_revocations))
        finally:
            for proc, _ in procs:
                proc.stop()
        audit = PostgresAuditStore(dsn, schema=f"{schema}_audit")
        report, records = audit.verify(), audit.count()
        audit.close()
    finally:
        upstream.stop()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for s in (f"{schema}_keys", f"{schema}_audit"):
                conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}:*"))
        if keys:
            r.delete(*keys)
    write(loads, admitted, sent, refills, delays, report.ok, records, ci=ci, rounds=rounds, seconds=seconds)


def write(loads: dict[int, list[Load]], admitted: int, sent: int, refills: int, delays: list[float], chain_ok: bool,
          records: int, *, ci: bool, rounds: int, seconds: float) -> None:
    rps = {n: median([x.rps for x in ls]) for n, ls in loads.items()}
    rows = []
    for n in (1, 3):
        lat = [v for x in loads[n] for v in x.latencies]
        errs = sum(x.errors for x in loads[n])
        rows.append([f"{n} process{'es' if n > 1 else ''}", fmt(rps[n], 0), fmt(percentile(lat, 50), 1),
                     fmt(percentile(lat, 99), 1), errs, " / ".join(fmt(x.rps, 0) for x in loads[n])])
    ms = [d * 1000 for d in delays]
    mode = (f"CI subsample: {rounds} round x {seconds:g} s per setup, {len(delays) // 2} revocations" if ci else
            f"full: {rounds} rounds x {seconds:g} s per setup, {len(delays) // 2} revocations")
    text = results.header("Scale-out: 1 vs 3 gateway processes on one PostgreSQL + Redis", mode=mode) + "\n"
    text += ("Closed loop, concurrency 24 spread evenly over the processes, API keys + Redis rate limits + "
             "PostgreSQL audit trail on, one fake upstream answering at once (`bench/scale_out/run.py`).\n\n")
    text += results.table(["setup", "req/s (median)", "p50 ms", "p99 ms", "errors", "req/s per round"], rows)
    text += f"\n\n**3 processes vs 1: {rps[3] / rps[1]:.2f}x throughput** (same run, same stores).\n\n"
    text += results.table(["check (3 processes)", "result"], [
        ["key limited to 60 req/min, 240 concurrent requests",
         f"{admitted} admitted of {sent} (limit 60 + {refills} refilled during the burst; per-process limits: 180)"],
        ["revocation through one process, seen refused by the two others",
         f"p50 {fmt(median(ms), 1)} ms, p95 {fmt(percentile(ms, 95), 1)} ms, max {fmt(max(ms), 1)} ms "
         f"({len(ms)} observations; cache TTL 5 s)"],
        ["audit chain after the run", f"{'valid' if chain_ok else 'BROKEN'}, {records} records from all processes"],
    ])
    text += ("\n\nOn a 2-core machine the load generator, PostgreSQL, Redis and the gateways share the same two "
             "cores, so the ratio is a floor for what more cores give; every extra process also adds PostgreSQL "
             "and Redis connections (one audit writer, one key store connection, a pub/sub subscriber and the "
             "0.25 s state sync each).\n")
    print(text)
    print(f"wrote {results.write('scale_out', text)}")


if __name__ == "__main__":
    main()
