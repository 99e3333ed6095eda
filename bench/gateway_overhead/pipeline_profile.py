"""The request pipeline's own CPU, in-process: ``Pipeline.chat`` against the ``fake`` backend, per configuration.

Configurations (the bench request of ``run.py``, one model on the in-process ``fake`` backend):

- ``lean``: no API keys, no audit (``NullAuditor``) - the pipeline alone;
- ``keys``: API key required (created through the key store API), ``NullAuditor`` sink - keys without the audit
  store's cost, so these numbers do not move with the audit store's own work;
- ``keys+limits``: as ``keys``, the key with a rate limit and a token budget (the limiter's full path);
- ``shipped``: API key required and durable SQLite audit (the shipped defaults; the audit writer's thread and fsync
  are in the wall time, and in the CPU time as far as they run in this process);
- ``keys-fixedclass``: as ``keys``, the classifier answering a precomputed classification (everything but the PII
  detectors, the audit store and HTTP: the part of the pipeline this harness was written for).

Each is timed as the best of ``--repeat`` runs of ``--number`` requests (µs per request, wall and process CPU),
then the steps outside the classifier, the audit store and HTTP alone (authenticate, admit, settle, parse, classify
for reference, decide, headers, metrics.observe), and a cProfile top list of the ``keys`` configuration.

    PYTHONPATH=src .venv/bin/python bench/gateway_overhead/pipeline_profile.py
    ... pipeline_profile.py --compare before=/work/before/tree/src     # the same runs with another tree, side by side

With ``--compare``, each tree runs in its own subprocess (``PYTHONPATH=<dir>``), alternating, and the table shows
both; only APIs that exist in both trees are used.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
server: {host: 127.0.0.1, state_dir: %(state)s}
zones: {cloud: {kind: cloud, clearance: public}}
models:
  - {id: mock, backend: fake, zone: cloud, license: proprietary-api, options: {reply: "echo: a short answer"}}
access: {require_keys: %(keys)s}
audit: {enabled: %(audit)s}
"""

CONFIGS = {"lean": (False, False, False), "keys": (True, False, False), "keys+limits": (True, False, True),
           "shipped": (True, True, False), "keys-fixedclass": (True, False, False)}


class FixedClassifier:
    """The gateway's classifier, except that ``classify`` answers the bench request's classification at once: the
    ``*-fixedclass`` configurations time everything but the PII detectors (another engineer's work)."""

    def __init__(self, real: Any, answer: Any) -> None:
        self._real, self._answer = real, answer

    def classify(self, texts: list[str]) -> Any:
        return self._answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def body() -> dict[str, Any]:
    from bench.gateway_overhead.run import PROMPT

    return {"model": "mock", "max_tokens": 16, "temperature": 0, "stream": False,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": PROMPT}]}


async def build(name: str, work: Path) -> tuple[Any, str | None]:
    """A started Gateway for configuration ``name`` and the Authorization header value to send (or None)."""
    from fedinf.access.principal import Limits
    from fedinf.audit import NullAuditor
    from fedinf.config import load_config
    from fedinf.gateway import Gateway

    keys, audit, limits = CONFIGS[name]
    state = work / f"state-{name.replace('+', '-')}"
    path = work / f"{name.replace('+', '-')}.yaml"
    path.write_text(CONFIG % {"state": state, "keys": str(keys).lower(), "audit": str(audit).lower()})
    config = load_config(path)
    gw = Gateway.from_config(config) if audit else Gateway.from_config(config, auditor=NullAuditor())
    if name.endswith("-fixedclass"):
        from fedinf.pipeline import parse_chat

        real = gw.pipeline.classifier
        gw.pipeline.classifier = FixedClassifier(real, real.classify(parse_chat(body()).texts()))
    await gw.start()
    if not keys:
        return gw, None
    lim = Limits(requests_per_minute=10**9, tokens_per_minute=10**12, token_budget=10**15) if limits else None
    await gw.ensure_admin_key()  # the default tenant
    _, secret = await gw.access.create_key(tenant="default", name="bench", roles=("user",), limits=lim)
    return gw, f"Bearer {secret}"


async def time_chat(gw: Any, auth: str | None, *, number: int, repeat: int) -> tuple[float, float]:
    """(best wall µs, best process-CPU µs) per ``Pipeline.chat`` over ``repeat`` runs of ``number`` requests."""
    pipe, b = gw.pipeline, body()
    for _ in range(100):
        reply = await pipe.chat(b, authorization=auth)
        assert reply.status == 200, (reply.status, reply.error)
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            await pipe.chat(b, authorization=auth)
        wall = min(wall, (time.perf_counter() - t0) / number * 1e6)
        cpu = min(cpu, (time.process_time() - c0) / number * 1e6)
    return wall, cpu


def best_us(fn: Callable[[], Any], number: int = 2000, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def best_async_us(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], number: int = 2000,
                  repeat: int = 7) -> float:
    async def many() -> float:
        t0 = time.perf_counter()
        for _ in range(number):
            await fn()
        return time.perf_counter() - t0

    return min(loop.run_until_complete(many()) for _ in range(repeat)) / number * 1e6


def steps(loop: asyncio.AbstractEventLoop, gw: Any, auth: str) -> dict[str, float]:
    """µs of each step alone (the ``keys`` gateway), on the bench request."""
    from fedinf.pipeline import Trace, needs, parse_chat

    pipe, b = gw.pipeline, body()
    request = parse_chat(b)
    principal = loop.run_until_complete(pipe.authenticate(auth))
    trace = Trace(request_id="x" * 32, started=time.monotonic(), principal=principal, requested="mock")
    trace.classification = pipe.classify(request, trace)
    trace.decision = pipe.decide(request, trace)
    trace.result = loop.run_until_complete(pipe.execute(request, trace))
    trace.attempts = list(trace.result.attempts)

    def execute() -> Any:  # each call appends its attempts to the trace it is given: a fresh one every time
        scratch = Trace(request_id="y" * 32, started=time.monotonic(), principal=principal, requested="mock",
                        classification=trace.classification, decision=trace.decision)
        return pipe.execute(request, scratch)

    trace.usage = {"prompt_tokens": 190, "completion_tokens": 16, "total_tokens": 206}
    return {
        "authenticate": best_async_us(loop, lambda: pipe.authenticate(auth)),
        "admit": best_async_us(loop, lambda: pipe.admit(principal, request)),
        "settle": best_async_us(loop, lambda: pipe.settle(trace)),
        "parse (pydantic)": best_us(lambda: pipe.parse(b, Trace(request_id="x", started=0.0))),
        "texts() on a fresh request": best_us(lambda: parse_chat(b).texts(), number=500),
        "classify (reference: not ours)": best_us(lambda: pipe.classify(request, trace), number=200),
        "decide (step)": best_us(lambda: pipe.decide(request, trace)),
        "needs": best_us(lambda: needs(request)),
        "execute (fake backend)": best_async_us(loop, execute, number=500),
        "Trace.headers": best_us(trace.headers),
        "metrics.observe": best_us(lambda: gw.metrics.observe(trace)),
        "new Trace + request id": best_us(lambda: Trace(request_id=os.urandom(16).hex(), started=time.monotonic())),
    }


def _profiled(loop: asyncio.AbstractEventLoop, gw: Any, auth: str | None, n: int) -> Any:
    """cProfile stats of ``n`` ``Pipeline.chat`` calls with the bench request."""
    import cProfile  # after main() took this directory off sys.path (its profile.py shadows the stdlib's)
    import pstats

    pipe, b = gw.pipeline, body()

    async def many() -> None:
        for _ in range(n):
            await pipe.chat(b, authorization=auth)

    prof = cProfile.Profile()
    prof.enable()
    loop.run_until_complete(many())
    prof.disable()
    return pstats.Stats(prof)


def profile_top(loop: asyncio.AbstractEventLoop, gw: Any, auth: str | None, n: int = 2000, top: int = 30) -> str:
    out = io.StringIO()
    stats = _profiled(loop, gw, auth, n)
    stats.stream = out
    out.write(f"function calls per request: {stats.total_calls / n:.0f}\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def calls_per_request(loop: asyncio.AbstractEventLoop, gw: Any, auth: str | None, n: int = 300) -> float:
    """Python function calls per ``Pipeline.chat`` (cProfile's count): a measure of work that load does not blur."""
    return float(_profiled(loop, gw, auth, n).total_calls) / n


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of this tree (the one on ``sys.path``), as JSON-able data."""
    import fedinf

    out: dict[str, Any] = {"fedinf": str(Path(fedinf.__file__).parent), "configs": {}}
    with tempfile.TemporaryDirectory(prefix="fedinf-pipeprof-") as tmp:
        loop = asyncio.new_event_loop()
        for name in args.configs.split(","):
            gw, auth = loop.run_until_complete(build(name, Path(tmp)))
            try:
                out["configs"][name] = [*loop.run_until_complete(
                    time_chat(gw, auth, number=args.number, repeat=args.repeat)), calls_per_request(loop, gw, auth)]
                if name == "keys" and args.steps:
                    out["steps"] = steps(loop, gw, auth or "")
                if name == args.profile:
                    out["profile"] = profile_top(loop, gw, auth)
            finally:
                loop.run_until_complete(gw.aclose())
        loop.close()
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    first = results[names[0]]
    lines = ["| configuration | " + " | ".join(f"{n}: wall / CPU µs (calls)" for n in names) + " |",
             "| --- |" + " --- |" * len(names)]
    for cfg in first["configs"]:
        cells = [f"{r['configs'][cfg][0]:.0f} / {r['configs'][cfg][1]:.0f} ({r['configs'][cfg][2]:.0f})"
                 for r in results.values()]
        lines.append(f"| Pipeline.chat, {cfg} | " + " | ".join(cells) + " |")
    if "steps" in first:
        lines += ["", "| step (keys config) | " + " | ".join(f"{n} µs" for n in names) + " |",
                  "| --- |" + " --- |" * len(names)]
        for step in first["steps"]:
            lines.append(f"| {step} | " + " | ".join(f"{r['steps'].get(step, float('nan')):.1f}"
                                                      for r in results.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="lean,keys,keys+limits,shipped,keys-fixedclass")
    p.add_argument("--number", type=int, default=500)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-steps", dest="steps", action="store_false")
    p.add_argument("--profile", default="keys", help="configuration to cProfile ('' for none)")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=SRC",
                   help="also measure the tree at SRC (its src/ directory), in a subprocess")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds with --compare (best is kept)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child mode: print JSON only
    args = p.parse_args(argv)
    here = Path(__file__).resolve().parent
    sys.path[:] = [d for d in sys.path if Path(d or ".").resolve() != here]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.json:
        print(json.dumps(measure(args)))
        return
    if not args.compare:
        res = measure(args)
        print(table({"this tree": res}))
        if "profile" in res:
            print("\ncProfile, configuration", args.profile, "\n" + res["profile"])
        return
    trees = {"this tree": str(ROOT / "src"), **dict(c.split("=", 1) for c in args.compare)}
    child = [sys.executable, __file__, "--json", "--configs", args.configs, "--number", str(args.number),
             "--repeat", str(args.repeat), "--profile", args.profile] + ([] if args.steps else ["--no-steps"])
    best: dict[str, dict[str, Any]] = {}
    for r in range(args.rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for name, src in order:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
            res = json.loads(subprocess.run(child, env=env, check=True, capture_output=True, text=True).stdout)
            best[name] = res if name not in best else _merge_best(best[name], res)
    print(table({n: best[n] for n in trees}))
    for name in trees:
        if "profile" in best[name]:
            print(f"\ncProfile ({name}, {best[name]['fedinf']}), configuration {args.profile}\n"
                  + best[name]["profile"])


def _merge_best(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    out["configs"] = {k: [min(a["configs"][k][i], b["configs"][k][i]) for i in (0, 1, 2)] for k in a["configs"]}
    if "steps" in a:
        out["steps"] = {k: min(a["steps"][k], b["steps"][k]) for k in a["steps"]}
    return out


if __name__ == "__main__":
    main()
