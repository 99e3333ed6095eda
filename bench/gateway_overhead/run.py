"""Gateway overhead: fedinf vs the LiteLLM proxy vs calling the upstream directly, side by side in one run.

    PYTHONPATH=src .venv/bin/python bench/gateway_overhead/run.py            # full mode
    CI=true PYTHONPATH=src .venv/bin/python bench/gateway_overhead/run.py    # CI mode (shorter, ~2-3 min)

A fast mock OpenAI-compatible upstream (``python -m fedinf.testing.upstream``) runs on loopback. The load
generator (wrk, installed from Debian when missing; else a Python aiohttp generator) sends a ~200-token chat request
in a closed loop at concurrency 1, 16 and 64, to the upstream directly, through ``fedinf serve`` and through the
LiteLLM proxy (own throwaway venv, ``bench/.venvs/litellm``), plus streamed requests at concurrency 1 and 16.
Cells are interleaved (every round runs each cell on each target back to back, target order rotated) and the
median of the rounds is reported, with added latency computed per round against the direct call.

Writes ``bench/results/gateway_overhead.md`` (and ``gateway_overhead_profile.md`` with ``--profile``).
See ``bench/gateway_overhead/README.md`` for the modes and what each column means.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common.loadgen import LoadGen  # noqa: E402
from bench.common.procs import Proc  # noqa: E402
from bench.gateway_overhead import report, targets  # noqa: E402
from bench.gateway_overhead.targets import Target  # noqa: E402

WORK = ROOT / "bench" / ".work" / "gateway_overhead"

#: ~200 tokens of ordinary English (about 4 characters per token).
PROMPT = (
    "Our customer support team received the following message this morning and needs a short, polite reply. "
    "The customer writes that they ordered a pair of hiking boots three weeks ago, that the parcel tracking page "
    "has not changed for ten days, and that they are leaving for a walking holiday in the mountains at the end of "
    "next week. They ask whether the boots can still arrive in time, whether we can send a replacement pair by "
    "express delivery at no extra cost, and what happens to the original parcel if it turns up later. They also "
    "mention that they have been a loyal customer for several years and that this is the first time anything "
    "like this has happened. Please draft an answer that apologises for the delay, explains the options we can "
    "offer, asks for the order number so the warehouse can check the shipment, and closes on a friendly note. "
    "Keep the answer under one hundred and fifty words and avoid making promises about dates we cannot keep."
)

MODES = {  # seconds per cell, rounds, warm-up seconds per target, fedinf configurations
    "full": {"duration": 5.0, "rounds": 3, "warmup": 2.0, "profiles": "default,nofsync,lean"},
    "ci": {"duration": 2.0, "rounds": 2, "warmup": 1.0, "profiles": "default,lean"},
}


def request_body(stream: bool) -> bytes:
    body = {"model": targets.MODEL, "max_tokens": 16, "temperature": 0, "stream": stream,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": PROMPT}]}
    return json.dumps(body).encode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), default="ci" if ci else "full")
    p.add_argument("--duration", type=float, help="seconds per cell (default: by mode)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: by mode)")
    p.add_argument("--concurrency", default="1,16,64", help="non-streamed concurrencies")
    p.add_argument("--stream-concurrency", default="1,16", help="streamed concurrencies ('' for none)")
    p.add_argument("--workers", type=int, default=1, help="worker processes of each gateway")
    p.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM peer")
    p.add_argument("--python-loadgen", action="store_true", help="use the aiohttp load generator, not wrk")
    p.add_argument("--no-breakdown", action="store_true", help="skip the in-process per-step timing")
    p.add_argument("--profile", type=float, default=0.0, metavar="S",
                   help="after measuring, profile fedinf with py-spy for S seconds under load")
    p.add_argument("--profile-concurrency", type=int, default=64, metavar="C",
                   help="concurrency while profiling (default 64; 1 shows one request's path)")
    p.add_argument("--fedinf-profiles", default=None,
                   help="fedinf configs to measure: default (keys + durable audit, as shipped), nofsync (audit commits "
                   "not fsynced), lean (neither keys nor audit); by mode: full all three, ci default,lean")
    p.add_argument("--compare-src", action="append", default=[], metavar="NAME=DIR",
                   help="also measure `fedinf serve` run from another source tree (PYTHONPATH=DIR), e.g. a patch")
    p.add_argument("--out", default="gateway_overhead", help="result name under bench/results/")
    a = p.parse_args(argv)
    mode = MODES[a.mode]
    a.duration = a.duration or mode["duration"]
    a.rounds = a.rounds or mode["rounds"]
    a.warmup = mode["warmup"]
    a.fedinf_profiles = [x for x in (a.fedinf_profiles or mode["profiles"]).split(",") if x]
    a.cells = [(int(c), False) for c in a.concurrency.split(",") if c] + \
              [(int(c), True) for c in a.stream_concurrency.split(",") if c]
    return a


def measure(load: LoadGen, tgts: list[Target], cells: list[tuple[int, bool]], rounds: int,
            duration: float) -> list[dict]:
    """Run every (round, cell, target); return one record per run (latencies, rps, gateway CPU used)."""
    records = []
    bodies = {False: request_body(False), True: request_body(True)}
    for r in range(rounds):
        for i, (conc, stream) in enumerate(cells):
            k = (r + i) % len(tgts)
            for t in tgts[k:] + tgts[:k]:
                cpu0 = t.proc.cpu_s() if t.proc else 0.0
                res = load.run(t.url, bodies[stream], t.headers, conc, duration)
                cpu = (t.proc.cpu_s() - cpu0) if t.proc else float("nan")
                records.append({"round": r, "target": t.name, "concurrency": conc, "stream": stream,
                                "requests": res.requests, "errors": res.errors, "duration_s": res.duration_s,
                                "rps": res.rps, "p50_ms": res.p50_ms, "p90_ms": res.p90_ms, "p99_ms": res.p99_ms,
                                "mean_ms": res.mean_ms, "gateway_cpu_s": cpu, "tool": res.tool})
                print(f"  round {r + 1}/{rounds} {t.name:8s} c={conc:<3d} {'stream' if stream else 'json  '} "
                      f"{res.rps:8.1f} req/s  p50 {res.p50_ms:7.2f} ms  p99 {res.p99_ms:7.2f} ms"
                      f"{f'  errors {res.errors}' if res.errors else ''}", flush=True)
    return records


def start_all(a: argparse.Namespace, procs: list[Proc]) -> tuple[list[Target], dict[str, str]]:
    """Start upstream, fedinf and (unless skipped) LiteLLM; returns the targets and notes on what failed."""
    notes: dict[str, str] = {}
    upstream_proc, upstream = targets.start_upstream(WORK)
    procs.append(upstream_proc)
    tgts = [Target("direct", upstream + "/chat/completions")]
    for profile in a.fedinf_profiles:
        fed = targets.start_fedinf(WORK, upstream, workers=a.workers, profile=profile,
                                   name="fedinf" if profile == "default" else f"fedinf-{profile}")
        procs.append(fed.proc)
        tgts.append(fed)
    for spec in a.compare_src:
        name, _, src = spec.partition("=")
        other = targets.start_fedinf(WORK, upstream, workers=a.workers, name=name, src=src,
                                     profile=a.fedinf_profiles[0])
        procs.append(other.proc)
        tgts.append(other)
    if not a.no_litellm:
        try:
            lit = targets.start_litellm(WORK, upstream, workers=a.workers)
            procs.append(lit.proc)
            tgts.append(lit)
        except Exception as exc:  # the peer failing must not hide fedinf's numbers: report it instead
            notes["litellm"] = f"LiteLLM could not be measured: {str(exc).splitlines()[0]}"
            print(f"  {notes['litellm']}\n{exc}", file=sys.stderr)
    for t in tgts:
        for stream in (False, True):
            targets.check_answer(t, request_body(stream), stream=stream)
    return tgts, notes


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` below: stop what we started
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"gateway_overhead: mode {a.mode}, {a.duration:g} s per cell, {a.rounds} rounds, cells {a.cells}")
    load = LoadGen(prefer_wrk=not a.python_loadgen, workdir=WORK)
    procs: list[Proc] = []
    try:
        tgts, notes = start_all(a, procs)
        print("  started: " + ", ".join(f"{t.name} ({t.startup_s:.1f} s)" for t in tgts if t.proc))
        for t in tgts:  # warm-up: first-request paths, connection pools, lazy imports
            load.run(t.url, request_body(False), t.headers, 16, a.warmup)
        rss_idle = {t.name: t.proc.rss_mb()[0] for t in tgts if t.proc}
        records = measure(load, tgts, a.cells, a.rounds, a.duration)
        rss = {t.name: (rss_idle[t.name], *t.proc.rss_mb()) for t in tgts if t.proc}
        startup = {t.name: t.startup_s for t in tgts if t.proc}
        (WORK / "raw.json").write_text(json.dumps({"records": records, "rss_mb": rss}, indent=1))
        steps = None
        if not a.no_breakdown:
            from bench.gateway_overhead import breakdown

            steps = breakdown.steps(request_body(False), WORK)
        notes["load"] = ("Load average of the machine at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
                         + f" ({os.cpu_count()} cores; other work on the machine inflates wall-clock figures, "
                         "CPU per request much less).")
        text = report.render(records, rss=rss, startup=startup, notes=notes, mode=a.mode, duration=a.duration,
                             rounds=a.rounds, tool=load.tool, workers=a.workers, steps=steps)
        path = report.write(a.out, text)
        print(f"wrote {path.relative_to(ROOT)}")
        print(report.summary_lines(records))
        if a.profile > 0:
            from bench.gateway_overhead import profile

            fed = next(t for t in tgts if t.name.startswith("fedinf"))
            bodies = {"non-streamed": request_body(False), "streamed": request_body(True)}
            path = profile.run(fed, load, bodies, seconds=a.profile, work=WORK, out=a.out + "_profile",
                               concurrency=a.profile_concurrency)
            print(f"wrote {path.relative_to(ROOT)}")
    finally:
        for p in reversed(procs):
            p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
