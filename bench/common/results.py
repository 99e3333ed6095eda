"""Writing benchmark results: Markdown tables and a header that says where and how the numbers were taken."""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Sequence
from pathlib import Path

from bench.common.procs import machine_info

RESULTS = Path(__file__).resolve().parents[1] / "results"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; cells are str()-ed."""
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def header(title: str, *, mode: str, extra: dict[str, str] | None = None) -> str:
    """Title plus a bullet list of the machine, Python, date and mode."""
    info = {"date (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "python": platform.python_version(), "mode": mode, **machine_info(), **(extra or {})}
    lines = [f"# {title}", ""] + [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def write(name: str, text: str) -> Path:
    """Write ``bench/results/NAME.md``; return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path
