"""Profile fedinf's serve process under load with py-spy (installed into ``bench/.venvs/tools``) and summarise
where its CPU goes: by layer (uvicorn/httptools, Starlette, fedinf with its upstream client, pydantic, json, event
loop), by function (self time) and by fedinf function (inclusive time).

py-spy samples the process from outside (ptrace), so the gateway runs unmodified; sampling costs it a little CPU,
so throughput during profiling is lower than in the measured cells.
"""

from __future__ import annotations

import collections
import re
import subprocess
import threading
from pathlib import Path

from bench.common import results
from bench.common.loadgen import LoadGen
from bench.common.venvs import ensure_venv
from bench.gateway_overhead.targets import Target

#: (layer, regex on "function (file)") - first match wins; order matters.
LAYERS = [
    ("fedinf", r"[(/]fedinf/"),
    ("pydantic", r"[(/]pydantic"),
    ("aiohttp (client side)", r"[(/]aiohttp/"),
    ("multidict / yarl", r"[(/](multidict|yarl)/"),
    ("starlette", r"[(/]starlette/"),
    ("uvicorn + httptools", r"[(/](uvicorn|httptools)/"),
    ("json (stdlib)", r"[(/]json/"),
    ("asyncio / uvloop", r"[(/](asyncio|uvloop)/"),
    ("logging", r"[(/]logging/"),
    ("prometheus_client", r"[(/]prometheus_client/"),
]


def classify(frame: str) -> str:
    for name, pattern in LAYERS:
        if re.search(pattern, frame):
            return name
    return "other"


def run(fed: Target, load: LoadGen, bodies: dict[str, bytes], *, seconds: float, work: Path, out: str,
        concurrency: int = 64) -> Path:
    """For each ``{label: body}``, record ``seconds`` of samples while ``load`` drives ``fed`` at ``concurrency``;
    write one summary with a section per body."""
    assert fed.proc is not None
    py_spy = ensure_venv("tools", ["py-spy"]) / "py-spy"
    parts = [f"# fedinf hot path profile (py-spy, concurrency {concurrency}, {seconds:g} s per phase)", "",
             "Samples of the `fedinf serve` process while the load generator drives requests through it to the "
             "mock upstream. Self time is attributed to the innermost frame; a layer is where that frame's code "
             "lives. py-spy's sampling slows the process, so throughput here is below the measured cells.", ""]
    for label, body in bodies.items():
        raw = work / f"fedinf.pyspy.{label}.txt"
        cmd = [str(py_spy), "record", "--pid", str(fed.proc.pid), "--duration", str(int(seconds)), "--rate", "500",
               "--format", "raw", "--output", str(raw), "--nonblocking"]
        holder: dict[str, object] = {}
        loader = threading.Thread(target=lambda b=body: holder.setdefault(
            "res", load.run(fed.url, b, fed.headers, concurrency, seconds + 2)))
        loader.start()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        loader.join()
        if done.returncode != 0 or not raw.exists():
            parts += [f"## {label}", "", f"py-spy failed ({done.returncode}):", "", "```", done.stderr[-2000:],
                      "```", ""]
            continue
        parts.append(summarise(raw.read_text(), holder.get("res"), label))
    return results.write(out, "\n".join(parts))


def parse(text: str) -> list[tuple[list[str], int]]:
    """Collapsed stacks (``a;b;c N``, root first) -> [(frames, samples)]."""
    stacks = []
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            stacks.append((frames, int(n)))
    return stacks


def summarise(text: str, res: object, label: str, top: int = 25) -> str:
    """Markdown sections for one phase: self time by layer, top functions, fedinf functions (inclusive)."""
    stacks = parse(text)
    total = sum(n for _, n in stacks) or 1
    layers: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fedinf: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        if not frames:
            continue
        leaf = _function(frames[-1])
        self_fn[leaf] += n
        layers[classify(leaf)] += n
        for f in {_function(f) for f in frames}:
            if re.search(LAYERS[0][1], f):
                incl_fedinf[f] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:.1f}%"

    load_line = f"{total} samples."
    if res is not None:
        load_line += f" Load while sampling: {getattr(res, 'rps', 0):.0f} req/s, p50 {getattr(res, 'p50_ms', 0):.2f} ms."
    parts = [f"## {label}", "", load_line, "", "### Self time by layer", "",
             results.table(["layer", "share of samples"], [[k, pct(v)] for k, v in layers.most_common()]), "",
             f"### Top {top} functions by self time", "",
             results.table(["function (file)", "self"], [[_short(k), pct(v)] for k, v in
                                                                self_fn.most_common(top)]), "",
             f"### fedinf functions by inclusive time (top {top})", "",
             results.table(["function (file)", "inclusive"], [[_short(k), pct(v)] for k, v in
                                                                     incl_fedinf.most_common(top)]), ""]
    return "\n".join(parts)


def _function(frame: str) -> str:
    """``fn (path:line)`` -> ``fn (path)``: samples of one function are counted together whatever the line."""
    return re.sub(r":\d+\)$", ")", frame)


def _short(frame: str) -> str:
    """Shorten site-packages paths: ``fn (…/site-packages/pkg/mod.py:12)`` -> ``fn (pkg/mod.py:12)``."""
    frame = re.sub(r"\(/[^()]*?/(site-packages|src)/", "(", frame)
    frame = re.sub(r"\(/[^()]*?/lib/python3\.\d+/", "(", frame)
    return frame.replace("|", "\\|")
