"""Rate limits and budgets: exact in-process under concurrency; atomic in Redis, shared by two processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fedinf.access import Limits, MemoryLimiter, Principal, period_bounds
from fedinf.errors import RateLimited

SRC = str(Path(__file__).resolve().parents[2] / "src")


def P(key_id: str = "k", **limits) -> Principal:
    return Principal(key_id=key_id, tenant="t", limits=Limits(**limits))


async def run_burst(limiter, p, n: int) -> tuple[int, list[RateLimited]]:
    async def one():
        try:
            await limiter.admit(p)
            return None
        except RateLimited as e:
            return e
    res = await asyncio.gather(*(one() for _ in range(n)))
    errs = [r for r in res if r is not None]
    return n - len(errs), errs


async def test_memory_rpm_exact_under_concurrency() -> None:
    now = [0.0]
    lim = MemoryLimiter(clock=lambda: now[0])
    p = P(requests_per_minute=30)
    ok, errs = await run_burst(lim, p, 200)
    assert ok == 30 and len(errs) == 170
    assert all(e.code == "rate_limit_exceeded" and e.status_code == 429 for e in errs)
    assert errs[0].retry_after == pytest.approx(2.0)  # one request every 60/30 s
    now[0] += 2.0
    assert (await run_burst(lim, p, 5))[0] == 1
    now[0] += 60
    assert (await run_burst(lim, p, 100))[0] == 30
    # another key is independent
    assert (await run_burst(lim, P("other", requests_per_minute=3), 10))[0] == 3


async def test_memory_tokens_per_minute_and_budget() -> None:
    now, wall = [0.0], [1_790_000_000.0]
    lim = MemoryLimiter(clock=lambda: now[0], wall=lambda: wall[0])
    p = P(tokens_per_minute=600, token_budget=1000, budget_period="day")
    await lim.admit(p, est_tokens=100)
    await lim.settle(p, tokens=700)  # into debt: 600 - 700 = -100
    with pytest.raises(RateLimited) as ei:
        await lim.admit(p)
    assert ei.value.code == "token_rate_exceeded"
    assert ei.value.retry_after == pytest.approx((1 + 100) * 60 / 600)
    now[0] += 60
    await lim.admit(p, est_tokens=50)
    await lim.settle(p, tokens=300)  # budget used: 1000
    now[0] += 60
    with pytest.raises(RateLimited) as ei:
        await lim.admit(p)
    assert ei.value.code == "budget_exceeded"
    _, end = period_bounds("day", wall[0])
    assert ei.value.retry_after == pytest.approx(end - wall[0])
    wall[0] = end + 1  # next day: budget resets
    await lim.admit(p)


async def test_budget_period_follows_the_wall_clock_both_ways() -> None:
    """The current budget period is remembered between requests; crossing its end (or a clock stepped back before
    its start) still starts the right period, as if it were worked out on every request."""
    now, wall = [0.0], [1_790_000_000.0]
    lim = MemoryLimiter(clock=lambda: now[0], wall=lambda: wall[0])
    p = P(token_budget=100, budget_period="hour")
    start_pid, end = period_bounds("hour", wall[0])
    await lim.admit(p)
    await lim.settle(p, tokens=100)
    wall[0] = end - 0.001  # the same hour: still spent
    with pytest.raises(RateLimited) as ei:
        await lim.admit(p)
    assert ei.value.code == "budget_exceeded" and ei.value.retry_after == pytest.approx(0.001)
    wall[0] = end  # the next hour: a fresh budget
    await lim.admit(p)
    await lim.settle(p, tokens=40)
    wall[0] = end - 10  # clock stepped back into the previous hour: that hour's count starts anew, as before
    await lim.admit(p)
    await lim.settle(p, tokens=100)
    with pytest.raises(RateLimited):
        await lim.admit(p)
    wall[0] = end + 5
    await lim.admit(p)  # the later hour again, counted from zero (only the current period is kept)
    # a key whose limits change to another period kind is charged in that period
    p_day = P(token_budget=100, budget_period="day")
    await lim.settle(p_day, tokens=100)
    with pytest.raises(RateLimited) as ei:
        await lim.admit(p_day)
    assert ei.value.retry_after == pytest.approx(period_bounds("day", wall[0])[1] - wall[0])


async def test_refused_request_consumes_nothing() -> None:
    now = [0.0]
    lim = MemoryLimiter(clock=lambda: now[0])
    p = P(requests_per_minute=2, tokens_per_minute=10)
    await lim.settle(p, tokens=10)
    for _ in range(5):
        with pytest.raises(RateLimited):
            await lim.admit(p)
    now[0] += 6.0  # 1 token back
    assert (await run_burst(lim, p, 5))[0] == 2  # the request bucket was not drained by the refusals


def test_period_bounds() -> None:
    from datetime import datetime, timezone

    def ts(s: str) -> float:
        return datetime.fromisoformat(s).replace(tzinfo=timezone.utc).timestamp()
    t = ts("2026-09-23T20:53:20")  # a Wednesday
    assert period_bounds("hour", t) == ("2026-09-23T20", ts("2026-09-23T21:00:00"))
    assert period_bounds("day", t) == ("2026-09-23", ts("2026-09-24T00:00:00"))
    assert period_bounds("week", t) == ("2026-W39", ts("2026-09-28T00:00:00"))
    assert period_bounds("month", t) == ("2026-09", ts("2026-10-01T00:00:00"))
    assert period_bounds("month", ts("2026-12-31T23:59:59")) == ("2026-12", ts("2027-01-01T00:00:00"))


# ---------------------------------------------------------------- Redis

@pytest.fixture
async def redis_limiter(redis_url):
    from fedinf.access.redis_limits import RedisLimiter
    prefix = f"fedinf-test-{uuid.uuid4().hex[:8]}"
    lim = RedisLimiter(redis_url, prefix=prefix)
    lim.prefix = prefix
    yield lim
    import redis
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{prefix}:*"))
    if keys:
        r.delete(*keys)
    await lim.aclose()


async def test_redis_rpm_exact_under_concurrency(redis_limiter) -> None:
    p = P(f"k{uuid.uuid4().hex[:6]}", requests_per_minute=30)
    t0 = time.monotonic()
    ok, errs = await run_burst(redis_limiter, p, 200)
    refill = (time.monotonic() - t0) * 30 / 60
    assert 30 <= ok <= 30 + int(refill)
    assert errs and all(e.code == "rate_limit_exceeded" and 0 < e.retry_after <= 2.0 for e in errs)


async def test_redis_tokens_and_budget(redis_limiter) -> None:
    p = P(f"k{uuid.uuid4().hex[:6]}", tokens_per_minute=600, token_budget=1000, budget_period="month")
    await redis_limiter.admit(p, est_tokens=100)
    await redis_limiter.settle(p, tokens=700)
    with pytest.raises(RateLimited) as ei:
        await redis_limiter.admit(p)
    assert ei.value.code == "token_rate_exceeded" and ei.value.retry_after == pytest.approx(10.1, abs=0.2)
    q = P(p.key_id + "b", token_budget=1000, budget_period="month")
    await redis_limiter.admit(q)
    await redis_limiter.settle(q, tokens=1000)
    with pytest.raises(RateLimited) as ei:
        await redis_limiter.admit(q)
    assert ei.value.code == "budget_exceeded" and ei.value.retry_after > 0


CHILD = r"""
import asyncio, sys, json
from fedinf.access import Limits, Principal
from fedinf.access.redis_limits import RedisLimiter
from fedinf.errors import RateLimited
url, prefix, key_id, n, start_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
async def main():
    lim = RedisLimiter(url, prefix=prefix)
    p = Principal(key_id=key_id, tenant="t", limits=Limits(requests_per_minute=50))
    import time
    await asyncio.sleep(max(0, start_at - time.time()))
    async def one():
        try:
            await lim.admit(p); return 1
        except RateLimited:
            return 0
    ok = sum(await asyncio.gather(*(one() for _ in range(n))))
    await lim.aclose()
    print(ok)
asyncio.run(main())
"""


async def test_redis_two_processes_share_one_limit(redis_limiter, redis_url) -> None:
    key_id = f"k{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, PYTHONPATH=SRC)
    start_at = time.time() + 1.5  # both processes fire together
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, redis_url, redis_limiter.prefix, key_id, "150",
                               str(start_at)], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    counts = [int(o.strip()) for o in outs]
    # 50 per minute shared: both processes together get 50 (plus at most one refill during the burst),
    # where per-process limits would have let 100 through
    assert 50 <= sum(counts) <= 51, counts
    assert all(c > 0 for c in counts) or sum(counts) == 50


async def test_budget_seeded_from_the_audit_trail_survives_restart(tmp_path) -> None:
    """A 'restarted' limiter seeds each key's budget from the durable audit trail, once per key."""
    from fedinf.access.usage import AuditUsage
    from fedinf.audit import AuditRecord, Auditor, SqliteAuditStore, Usage
    from fedinf.config import AuditSettings

    auditor = Auditor(lambda: SqliteAuditStore(tmp_path / "audit.db"))
    now = time.time()
    for i, (key, tokens, ago) in enumerate([("k", 600, 10), ("k", 300, 20), ("other", 999, 10),
                                           ("k", 5000, 40 * 86400)]):  # the last one is from an older period
        await auditor.write(AuditRecord(request_id=f"r{i}", key_id=key, usage=Usage(tokens, 0), time=now - ago))
    await auditor.aclose()
    usage = AuditUsage(AuditSettings(store=f"sqlite:///{tmp_path / 'audit.db'}"), state_dir=tmp_path)
    calls = []

    async def source(key_id: str, since: float) -> int:
        calls.append(key_id)
        return await usage(key_id, since)
    lim = MemoryLimiter(budget_source=source)
    p = P("k", token_budget=1000, budget_period="day")
    await asyncio.gather(*(lim.admit(p) for _ in range(5)))  # 900 used so far: still admitted
    assert calls == ["k"]  # seeded once, concurrent first requests shared it
    await lim.settle(p, tokens=100)
    with pytest.raises(RateLimited) as ei:
        await lim.admit(p)
    assert ei.value.code == "budget_exceeded"
    await usage.aclose()


async def test_access_control_from_config_seeds_budgets(tmp_path) -> None:
    from fedinf.access import AccessControl
    from fedinf.access.usage import AuditUsage
    from fedinf.config import default_config

    cfg = default_config()
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"state_dir": str(tmp_path)})})
    ac = AccessControl.from_config(cfg)
    assert isinstance(ac.limiter, MemoryLimiter) and isinstance(ac.limiter._source, AuditUsage)
    _, secret = await ac.create_key(tenant="t", limits=Limits(token_budget=10))
    p = await ac.authenticate(secret)
    await ac.admit(p)  # reads the (empty, freshly created) audit store
    await ac.aclose()
