"""Turning the per-run records of the gateway overhead bench into ``bench/results/gateway_overhead.md``.

Every figure is the median over the interleaved rounds. "Added" latency is computed per round (gateway minus direct,
same cell, same round) and then the median is taken, so that slow phases of a noisy machine hit both sides.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.common import results
from bench.common.stats import fmt, median, ratio, spread

GOAL_LATENCY_FACTOR = 20  # fedinf added p50 <= LiteLLM's / 20
GOAL_THROUGHPUT_FACTOR = 10  # fedinf max req/s >= 10 x LiteLLM's
GOAL_RSS_MB = 300
PROFILE_TEXT = {
    "fedinf": "as shipped: API key required, PII classification, durable hash-chained SQLite audit record per request",
    "fedinf-lean": "no API keys, no audit: parse, classify, route, proxy",
    "fedinf-nofsync": "as shipped but `audit.sqlite_synchronous: normal` (commits not fsynced)",
}


def _runs(records: list[dict], target: str, conc: int, stream: bool) -> list[dict]:
    return [r for r in records if r["target"] == target and r["concurrency"] == conc and r["stream"] == stream]


def cell(records: list[dict], target: str, conc: int, stream: bool) -> dict[str, float]:
    """Median figures of one (target, concurrency, stream) cell; NaN where not measured."""
    runs = _runs(records, target, conc, stream)
    direct = {r["round"]: r for r in _runs(records, "direct", conc, stream)}
    added50 = [r["p50_ms"] - direct[r["round"]]["p50_ms"] for r in runs if r["round"] in direct]
    added99 = [r["p99_ms"] - direct[r["round"]]["p99_ms"] for r in runs if r["round"] in direct]
    reqs = sum(r["requests"] - r["errors"] for r in runs)
    cpu = sum(r["gateway_cpu_s"] for r in runs if not math.isnan(r["gateway_cpu_s"]))
    return {"p50": median(r["p50_ms"] for r in runs), "p99": median(r["p99_ms"] for r in runs),
            "rps": median(r["rps"] for r in runs), "rps_spread": spread(r["rps"] for r in runs),
            "added_p50": median(added50), "added_p99": median(added99),
            "errors": float(sum(r["errors"] for r in runs)), "requests": float(sum(r["requests"] for r in runs)),
            "cpu_ms": cpu * 1000 / reqs if reqs and cpu else math.nan}


def _concs(records: list[dict], stream: bool) -> list[int]:
    return sorted({r["concurrency"] for r in records if r["stream"] == stream})


def _targets(records: list[dict]) -> list[str]:
    """direct, fedinf, LiteLLM, then any compared fedinf variants, as present."""
    names = list(dict.fromkeys(r["target"] for r in records))
    first = [t for t in ("direct", "fedinf", "litellm") if t in names]
    return first + [t for t in names if t not in first]


def max_rps(records: list[dict], target: str, stream: bool = False) -> tuple[float, int]:
    """Highest median req/s over the measured concurrencies, and the concurrency that gave it."""
    best = (math.nan, 0)
    for c in _concs(records, stream):
        rps = cell(records, target, c, stream)["rps"]
        if not math.isnan(rps) and (math.isnan(best[0]) or rps > best[0]):
            best = (rps, c)
    return best


def latency_table(records: list[dict], stream: bool) -> str:
    names = [t for t in _targets(records) if t != "direct"]
    have_lit = "litellm" in names
    rows = []
    for c in _concs(records, stream):
        cells = {t: cell(records, t, c, stream) for t in ["direct", *names]}
        d = cells["direct"]
        row: list[object] = [c, f"{fmt(d['p50'])} / {fmt(d['p99'])}"]
        row += [f"{fmt(cells[t]['added_p50'])} / {fmt(cells[t]['added_p99'])}" for t in names]
        if have_lit:
            row.append(fmt(ratio(cells[primary(records)]["added_p50"], cells["litellm"]["added_p50"]), 3))
        rows.append(row)
    heads = ["concurrency", "direct p50 / p99 (ms)"] + [f"{_label(t)} added p50 / p99 (ms)" for t in names]
    if have_lit:
        heads.append(f"{primary(records)} / LiteLLM (added p50)")
    return results.table(heads, rows)


def primary(records: list[dict]) -> str:
    """The fedinf target the ratio columns use: the shipped config (``fedinf``) when measured."""
    names = _targets(records)
    return "fedinf" if "fedinf" in names else next((t for t in names if t.startswith("fedinf")), "fedinf")


def _label(name: str) -> str:
    return "LiteLLM" if name == "litellm" else name


def throughput_table(records: list[dict], stream: bool) -> str:
    names = _targets(records)
    rows = []
    for c in _concs(records, stream):
        cells = {t: cell(records, t, c, stream) for t in names}
        row: list[object] = [c] + [f"{fmt(cells[t]['rps'], 0)} (±{fmt(cells[t]['rps_spread'] * 50, 0, '%')})"
                                   for t in names]
        if "litellm" in names:
            row.append(fmt(ratio(cells[primary(records)]["rps"], cells["litellm"]["rps"]), 1, "x"))
        rows.append(row)
    best: list[object] = ["**max**"] + [f"**{fmt(max_rps(records, t, stream)[0], 0)}**" for t in names]
    if "litellm" in names:
        best.append(f"**{fmt(ratio(max_rps(records, primary(records), stream)[0], max_rps(records, 'litellm', stream)[0]), 1, 'x')}**")
    rows.append(best)
    heads = ["concurrency"] + [f"{_label(t)} req/s" for t in names] + ([f"{primary(records)} / LiteLLM"] if "litellm" in names else [])
    return results.table(heads, rows)


def process_table(records: list[dict], rss: dict[str, tuple[float, float, float]],
                  startup: dict[str, float]) -> str:
    rows = []
    for name, (idle, now, peak) in rss.items():
        rows.append([_label(name), fmt(startup.get(name, math.nan), 1), fmt(idle, 0), fmt(now, 0), fmt(peak, 0),
                     fmt(cpu_per_request(records, name, False), 3), fmt(cpu_per_request(records, name, True), 3)])
    return results.table(["gateway", "startup (s)", "RSS idle (MB)", "RSS after load (MB)", "peak RSS (MB)",
                          "CPU ms / request (JSON)", "CPU ms / request (stream)"], rows)


def cpu_per_request(records: list[dict], target: str, stream: bool) -> float:
    """Gateway CPU milliseconds per successful response over all cells of that kind (NaN if none)."""
    runs = [r for r in records if r["target"] == target and r["stream"] == stream]
    reqs = sum(r["requests"] - r["errors"] for r in runs)
    cpu = sum(r["gateway_cpu_s"] for r in runs)
    return cpu * 1000 / reqs if reqs and not math.isnan(cpu) else math.nan


def goals(records: list[dict], rss: dict[str, tuple[float, float, float]], name: str = "fedinf") -> list[str]:
    """One line per goal of issue 2 for the fedinf target ``name``, with the figures and PASS/FAIL (n/a without
    LiteLLM), plus the CPU cost per request of both."""
    f1 = cell(records, name, 1, False)["added_p50"]
    lit1 = cell(records, "litellm", 1, False)["added_p50"]
    f_max, l_max = max_rps(records, name)[0], max_rps(records, "litellm")[0]
    peak = rss.get(name, (math.nan,) * 3)[2]
    f_cpu, l_cpu = cpu_per_request(records, name, False), cpu_per_request(records, "litellm", False)

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    lat_ok = None if math.isnan(lit1) or math.isnan(f1) else f1 <= lit1 / GOAL_LATENCY_FACTOR
    thr = ratio(f_max, l_max)
    ms = " ms"
    return [
        f"- added p50 at concurrency 1: {name} {fmt(f1, 3, ms)} vs LiteLLM {fmt(lit1, 2, ms)} "
        f"(goal: at most 1/{GOAL_LATENCY_FACTOR} of LiteLLM's = {fmt(lit1 / GOAL_LATENCY_FACTOR, 2, ms)}): "
        f"**{verdict(lat_ok)}** (ratio {fmt(ratio(lit1, f1), 1, 'x')})",
        f"- max sustained req/s: {name} {fmt(f_max, 0)} vs LiteLLM {fmt(l_max, 0)} (goal: at least "
        f"{GOAL_THROUGHPUT_FACTOR}x): **{verdict(None if math.isnan(thr) else thr >= GOAL_THROUGHPUT_FACTOR)}** "
        f"(ratio {fmt(thr, 1, 'x')})",
        f"- {name} peak RSS serving one remote backend: {fmt(peak, 0, ' MB')} (goal: under {GOAL_RSS_MB} MB): "
        f"**{verdict(None if math.isnan(peak) else peak < GOAL_RSS_MB)}**",
        f"- CPU per non-streamed request: {name} {fmt(f_cpu, 3, ms)} vs LiteLLM {fmt(l_cpu, 2, ms)} "
        f"(ratio {fmt(ratio(l_cpu, f_cpu), 1, 'x')}; the figure least affected by other load on the machine)",
    ]


def render(records: list[dict], *, rss: dict[str, tuple[float, float, float]], startup: dict[str, float],
           notes: dict[str, str], mode: str, duration: float, rounds: int, tool: str, workers: int,
           steps: list[tuple[str, float]] | None = None) -> str:
    errors = {t: int(sum(r["errors"] for r in records if r["target"] == t)) for t in _targets(records)}
    extra = {"load generator": tool, "seconds per cell": f"{duration:g}", "interleaved rounds": str(rounds),
             "gateway workers": str(workers), "errors (non-2xx or socket)": ", ".join(f"{k} {v}" for k, v in
                                                                                       errors.items())}
    parts = [results.header("Gateway overhead: fedinf vs LiteLLM proxy vs direct", mode=mode, extra=extra),
             "Mock OpenAI-compatible upstream on loopback (`python -m fedinf.testing.upstream`, 16-token answers), "
             "~200-token prompt, closed loop. Figures are medians over the rounds; \"added\" = gateway minus direct "
             "in the same round. At concurrency 16/64 latency is mostly queueing, so it follows throughput.",
             ""]
    parts += [x for v in notes.values() for x in (f"> {v}", "")]
    parts += ["## Goals (issue 2)", ""]
    for name in [t for t in _targets(records) if t.startswith("fedinf")]:
        about = PROFILE_TEXT.get(name, "a compared source tree")
        parts += [f"**{name}** ({about}):", "", *goals(records, rss, name), ""]
    parts += ["## Added latency, non-streamed", "", latency_table(records, False), "",
              "## Throughput, non-streamed (± = half the spread between rounds)", "", throughput_table(records, False),
              ""]
    if _concs(records, True):
        parts += ["## Streaming (whole stream, 16 tokens + usage)", "", latency_table(records, True), "",
                  throughput_table(records, True), ""]
    parts += ["## Gateway processes", "", process_table(records, rss, startup), ""]
    if steps:
        from bench.gateway_overhead.breakdown import markdown

        parts += ["## Where fedinf's CPU goes (in-process, per step)", "",
                  "Each step of the non-streamed hot path timed alone (`bench/gateway_overhead/breakdown.py`), then "
                  "the whole pipeline against the in-process `fake` backend (lean config: no keys, no audit). The "
                  "rest of the gateway's CPU per request above is the HTTP layers (uvicorn/httptools, the raw-ASGI "
                  "chat endpoint, the upstream client `backends/h1.py`, loopback sockets) and the audit store.", "",
                  markdown(steps), ""]
    return "\n".join(parts)


def summary_lines(records: list[dict]) -> str:
    rows = []
    for t in _targets(records):
        best, c = max_rps(records, t)
        rows.append(f"  {t:8s} added p50 c=1 {fmt(cell(records, t, 1, False)['added_p50'], 3)} ms, "
                    f"max {fmt(best, 0)} req/s (c={c})")
    return "\n".join(rows)


def write(name: str, text: str) -> Path:
    return results.write(name, text)
