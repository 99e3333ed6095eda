"""Patched copies of ``src/`` carrying the hot-path changes proposed in ``NOTES.md``, to measure them side by side.

    PYTHONPATH=src .venv/bin/python bench/gateway_overhead/variants.py [NAME ...]    # writes the trees, prints args
    PYTHONPATH=src .venv/bin/python bench/gateway_overhead/run.py --no-litellm \\
        --compare-src proposed=bench/.work/gateway_overhead/variants/proposed:bench/.venvs/orjson-site

Each patch is an exact text substitution on the current sources and fails loudly when the code it targets has
changed (the experiment is then out of date, not silently different). The trees live under ``bench/.work`` (git-
ignored); orjson, which one patch uses, is installed with pip into ``bench/.venvs/orjson-site`` (never into fedinf's
environment). Nothing here changes ``src/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / ".work" / "gateway_overhead" / "variants"
ORJSON_SITE = ROOT / "bench" / ".venvs" / "orjson-site"


def sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"patch out of date: {path.relative_to(OUT)} no longer contains {old[:70]!r}")
    path.write_text(text.replace(old, new, 1))


def breaker(root: Path) -> None:
    """CircuitBreaker.record: keep the failure count incrementally instead of summing the whole window per call."""
    p = root / "fedinf/routing/breaker.py"
    sub(p, "        self._window: deque[tuple[float, bool]] = deque()\n",
        "        self._window: deque[tuple[float, bool]] = deque()\n        self._failures = 0\n")
    sub(p, "        self._window.append((now, ok))\n",
        "        self._window.append((now, ok))\n        self._failures += 0 if ok else 1\n")
    sub(p, "        failures = sum(1 for _, good in self._window if not good)\n", "        failures = self._failures\n")
    sub(p, "        while self._window and self._window[0][0] < horizon:\n            self._window.popleft()\n",
        "        while self._window and self._window[0][0] < horizon:\n"
        "            if not self._window.popleft()[1]:\n                self._failures -= 1\n")
    text = re.sub(r"(?m)^(\s*)self\._window\.clear\(\)$", r"\1self._window.clear()\n\1self._failures = 0",
                  p.read_text())
    p.write_text(text)


def timeout(root: Path) -> None:
    """Executor: ``async with asyncio.timeout()`` instead of ``asyncio.wait_for`` (no extra Task per call/chunk)."""
    p = root / "fedinf/routing/executor.py"
    sub(p, "            result = await asyncio.wait_for(coro, timeout=max(0.001, ctx.deadline - t0))\n",
        "            async with asyncio.timeout(max(0.001, ctx.deadline - t0)):\n                result = await coro\n")
    sub(p, "                chunk = await asyncio.wait_for(iterator.__anext__(), timeout=remaining)\n",
        "                async with asyncio.timeout(remaining):\n                    chunk = await iterator.__anext__()\n")


_ORJSON_SHIM = """

# ---- bench/gateway_overhead/variants.py: orjson experiment (appended; overrides the names above)
import orjson as _orjson


class _OrjsonModule:
    JSONDecodeError = _orjson.JSONDecodeError
    loads = staticmethod(_orjson.loads)

    @staticmethod
    def dumps(obj, **_ignored):
        return _orjson.dumps(obj).decode()


json = _OrjsonModule
"""


def orjson(root: Path) -> None:
    """orjson for the request body, the upstream body and answer, JSON responses and SSE chunks: each module's
    ``json`` name (and http.py's ``loads``/``dumps``) rebound to orjson at the end of the module."""
    for rel in ("fedinf/server/body.py", "fedinf/server/errors.py", "fedinf/pipeline.py"):
        p = root / rel
        sub(p, "import json\n", "import json\n")  # still uses the stdlib json module by that name
        p.write_text(p.read_text() + _ORJSON_SHIM)
    h = root / "fedinf/backends/http.py"
    sub(h, "def dumps(obj: Any) -> bytes:", "def dumps(obj: Any) -> bytes:")
    h.write_text(h.read_text() + _ORJSON_SHIM + "loads = _orjson.loads\n\n\ndef dumps(obj):\n"
                 "    return _orjson.dumps(obj)\n")


PATCHES: dict[str, Callable[[Path], None]] = {
    "breaker": breaker, "timeout": timeout, "orjson": orjson,
}
VARIANTS: dict[str, list[str]] = {**{k: [k] for k in PATCHES}, "proposed": list(PATCHES)}


def make(name: str) -> Path:
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(ROOT / "src", root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for patch in VARIANTS[name]:
        PATCHES[patch](root)
    return root


def ensure_orjson() -> Path:
    if not (ORJSON_SITE / "orjson").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
                        str(ORJSON_SITE), "orjson"], check=True, timeout=300)
    return ORJSON_SITE


def main(names: list[str]) -> None:
    site = ensure_orjson()
    args = []
    for name in names or ["proposed"]:
        root = make(name)
        path = f"{root.relative_to(ROOT)}" + (f":{site.relative_to(ROOT)}" if "orjson" in VARIANTS[name] else "")
        args.append(f"--compare-src {name}={path}")
    print(" ".join(args))


if __name__ == "__main__":
    main(sys.argv[1:])
