"""Closed-loop HTTP load generation: ``wrk`` (C, the most CPU-efficient on a 2-core box) with a Lua script for the
POST body and a JSON summary, or a Python aiohttp generator when wrk is unavailable.

``LoadGen.run(url, body, headers, concurrency, duration_s)`` keeps ``concurrency`` connections busy for
``duration_s`` seconds and returns a :class:`LoadResult` (latencies of complete responses, streamed or not).
:func:`ensure_wrk` installs Debian's wrk when missing and allowed (root + apt), else returns None.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common.stats import percentile

_LUA = r"""
wrk.method = "POST"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50":%%f,"p90":%%f,"p99":%%f,"mean":%%f,"max":%%f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class LoadResult:
    """One closed-loop run. Latencies in milliseconds; ``errors`` counts non-2xx answers and socket errors."""

    requests: int
    errors: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    tool: str

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.duration_s if self.duration_s > 0 else math.nan


def ensure_wrk(*, install: bool = True, log: "callable | None" = print) -> str | None:
    """Path of ``wrk``; installs Debian's package when missing (root only). None when unavailable."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "wrk"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            if log:
                log(f"  {' '.join(cmd)} failed: {exc}")
            return None
        if cmd[1] == "install" and done.returncode == 0:
            break
    found = shutil.which("wrk")
    if log:
        log(f"  wrk {'installed' if found else 'could not be installed: using the Python load generator'}")
    return found


class LoadGen:
    """Runs closed-loop load with wrk when available (``prefer_wrk``), else with aiohttp."""

    def __init__(self, *, prefer_wrk: bool = True, install: bool = True, workdir: Path | None = None,
                 log: "callable | None" = print) -> None:
        self.wrk = ensure_wrk(install=install, log=log) if prefer_wrk else None
        self.tool = "wrk" if self.wrk else "aiohttp"
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fedinf-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def run(self, url: str, body: bytes, headers: dict[str, str], concurrency: int,
            duration_s: float) -> LoadResult:
        if self.wrk:
            return self._run_wrk(url, body, headers, concurrency, duration_s)
        return asyncio.run(_aiohttp_load(url, body, headers, concurrency, duration_s))

    def _run_wrk(self, url: str, body: bytes, headers: dict[str, str], concurrency: int,
                 duration_s: float) -> LoadResult:
        self._n += 1
        body_path = self.workdir / f"body{self._n}.json"
        body_path.write_bytes(body)
        hdrs = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in {"Content-Type": "application/json",
                                                                     **headers}.items())
        script = self.workdir / f"post{self._n}.lua"
        script.write_text(_LUA % {"body": str(body_path), "headers": hdrs})
        cmd = [self.wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s", "--timeout", "30s",
               "-s", str(script), url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        d = json.loads(line[len("WRKJSON "):])
        errors = min(d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"], d["requests"])
        ms = (lambda v: v / 1000) if d["requests"] > 0 else (lambda v: math.nan)  # nothing completed: no latency
        return LoadResult(requests=d["requests"], errors=errors, duration_s=d["duration_us"] / 1e6,
                          p50_ms=ms(d["p50"]), p90_ms=ms(d["p90"]), p99_ms=ms(d["p99"]), mean_ms=ms(d["mean"]),
                          tool="wrk")


async def _aiohttp_load(url: str, body: bytes, headers: dict[str, str], concurrency: int,
                        duration_s: float) -> LoadResult:
    """Closed loop: ``concurrency`` workers, one keep-alive connection each, until ``duration_s`` is over."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    hdrs = {"content-type": "application/json", **headers}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=hdrs) as session:
        stop_at = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body) as resp:
                        await resp.read()
                        ok = 200 <= resp.status < 300
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors += 1

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    return LoadResult(requests=len(latencies), errors=errors, duration_s=elapsed,
                      p50_ms=percentile(latencies, 50), p90_ms=percentile(latencies, 90),
                      p99_ms=percentile(latencies, 99),
                      mean_ms=sum(latencies) / len(latencies) if latencies else math.nan, tool="aiohttp")
