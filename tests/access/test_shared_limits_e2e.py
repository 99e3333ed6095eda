"""Two `fedinf serve` processes sharing one rate limit through Redis: together they admit the limit, not twice it;
the rest get 429 with Retry-After."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from fedinf.access import Limits, SqliteAccessStore, new_key
from tests.conftest import ServeProcess

CONFIG = """
server: {{state_dir: "{state}"}}
access: {{redis_url: "{redis}", redis_prefix: "{prefix}"}}
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models:
  - {{id: fake, backend: fake, zone: onprem, license: Apache-2.0}}
"""


async def test_two_gateways_share_one_limit(tmp_path, redis_url) -> None:
    prefix = f"fedinf-e2e-{uuid.uuid4().hex[:8]}"
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state", redis=redis_url, prefix=prefix))
    store = SqliteAccessStore(tmp_path / "state" / "keys.db")  # the key store both gateways read
    rec, secret = new_key(tenant="acme", limits=Limits(requests_per_minute=20))
    store.insert_key(rec)
    store.close()
    body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with ServeProcess(cfg, log_dir=tmp_path) as a, ServeProcess(cfg, log_dir=tmp_path) as b:
        async with aiohttp.ClientSession(headers={"authorization": f"Bearer {secret}"}) as http:
            async def one(url: str) -> tuple[int, str | None, str]:
                async with http.post(url + "/v1/chat/completions", json=body) as r:
                    data = await r.json()
                    return r.status, r.headers.get("retry-after"), (data.get("error") or {}).get("code", "")
            t0 = time.monotonic()
            results = await asyncio.gather(*(one(srv.url) for _ in range(30) for srv in (a, b)))
            refills = int((time.monotonic() - t0) / 3.0)  # 20/min: one request back every 3 s
    statuses = [s for s, _, _ in results]
    # per-process limits would admit 40; the shared one admits 20 plus what refilled during the burst
    assert 20 <= statuses.count(200) <= 20 + refills, (statuses, refills)
    refused = [(ra, code) for s, ra, code in results if s == 429]
    assert len(refused) == 60 - statuses.count(200)
    assert all(code == "rate_limit_exceeded" and ra and int(ra) >= 1 for ra, code in refused)
    import redis
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{prefix}:*"))
    if keys:
        r.delete(*keys)
