"""The shared benchmark helpers: statistics, the Python load generator against a real loopback server, process
accounting and the gateway-overhead report arithmetic (added latency paired per round, ratios, goals)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import results  # noqa: E402
from bench.common.loadgen import _aiohttp_load  # noqa: E402
from bench.common.procs import Proc, free_port  # noqa: E402
from bench.common.stats import median, percentile, ratio, spread  # noqa: E402
from bench.gateway_overhead import report  # noqa: E402


def test_percentiles_and_ratios() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))
    assert median([1.0, math.nan, 3.0]) == 2.0
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert math.isnan(ratio(1.0, 0.0))
    assert results.table(["a", "b"], [[1, 2]]).splitlines() == ["| a | b |", "| --- | --- |", "| 1 | 2 |"]


async def test_python_load_generator_counts_requests_and_errors() -> None:
    seen = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        seen["n"] += 1
        body = await request.json()
        status = 500 if seen["n"] % 5 == 0 else 200
        return web.json_response({"echo": body["x"]}, status=status)

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        res = await _aiohttp_load(f"http://127.0.0.1:{port}/", b'{"x": 1}', {}, 4, 0.5)
    finally:
        await runner.cleanup()
    assert res.requests == seen["n"] > 10
    assert res.errors == seen["n"] // 5
    assert 0 < res.p50_ms <= res.p99_ms
    assert res.rps == pytest.approx((res.requests - res.errors) / res.duration_s)


def test_proc_reports_rss_and_cpu_and_stops(tmp_path: Path) -> None:
    port = free_port()
    proc = Proc("http.server", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                tmp_path / "srv.log").start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/", 20)
        now, peak = proc.rss_mb()
        assert 1 < now <= peak < 500
        assert proc.cpu_s() >= 0
        assert proc.pid in proc.pids()
    finally:
        proc.stop()
    assert not proc.alive()
    assert not os.path.exists(f"/proc/{proc.pid}/status") or proc.popen.returncode is not None


def _rec(target: str, conc: int, rnd: int, p50: float, rps: float, cpu: float = math.nan) -> dict:
    return {"round": rnd, "target": target, "concurrency": conc, "stream": False, "requests": int(rps),
            "errors": 0, "duration_s": 1.0, "rps": rps, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50 * 2,
            "mean_ms": p50, "gateway_cpu_s": cpu, "tool": "test"}


def test_report_pairs_added_latency_per_round_and_checks_goals() -> None:
    records = []
    for rnd, slow in enumerate((0.0, 5.0, 0.0)):  # round 1 is slow for everyone: pairing cancels it
        records += [_rec("direct", 1, rnd, 0.2 + slow, 5000), _rec("fedinf", 1, rnd, 1.0 + slow, 800, 0.4),
                    _rec("litellm", 1, rnd, 21.2 + slow, 45, 0.9),
                    _rec("direct", 64, rnd, 10 + slow, 6000), _rec("fedinf", 64, rnd, 60 + slow, 1000, 0.5),
                    _rec("litellm", 64, rnd, 1300 + slow, 50, 1.0)]
    fed = report.cell(records, "fedinf", 1, False)
    assert fed["added_p50"] == pytest.approx(0.8)
    assert report.cell(records, "litellm", 1, False)["added_p50"] == pytest.approx(21.0)
    assert report.max_rps(records, "fedinf") == (1000, 64)
    assert report.cpu_per_request(records, "fedinf", False) == pytest.approx(0.9 * 3 * 1000 / (3 * 1800))
    goals = report.goals(records, {"fedinf": (60.0, 70.0, 75.0)})
    assert "**PASS**" in goals[0] and "**PASS**" in goals[1] and "**PASS**" in goals[2]
    text = report.render(records, rss={"fedinf": (60.0, 70.0, 75.0), "litellm": (300.0, 350.0, 360.0)},
                         startup={"fedinf": 1.0, "litellm": 15.0}, notes={}, mode="test", duration=1.0, rounds=3,
                         tool="test", workers=1)
    assert "| 1 | 0.20 / 0.40 | 0.80 / 1.60 | 21.00 / 42.00 | 0.038 |" in text
    assert "20.0x" in text  # 1000 / 50 req/s
