"""Throwaway virtualenvs for benchmark peers (LiteLLM, Presidio, ...) under ``bench/.venvs/NAME`` (git-ignored).

Peers are never fedinf dependencies: each gets its own venv, created on first use with the ordinary pip client and
reused while the requirement list is unchanged (a stamp file records it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parents[1] / ".venvs"


def ensure_venv(name: str, requirements: list[str], *, python: str | None = None, timeout_s: float = 1200,
                log: "callable | None" = print) -> Path:
    """Create ``bench/.venvs/NAME`` if needed and install ``requirements`` into it unless its stamp says they
    already are; return its ``bin`` directory.

    Raises RuntimeError (with pip's last lines) when the install fails.
    """
    root = VENVS / name
    stamp = root / ".bench-requirements"
    wanted = "\n".join(requirements)
    if stamp.is_file() and stamp.read_text() == wanted and (root / "bin" / "python").exists():
        return root / "bin"
    if log:
        log(f"  preparing bench/.venvs/{name}: pip install {' '.join(requirements)} (first run only)")
    if not (root / "bin" / "python").exists():
        if root.exists():
            shutil.rmtree(root)
        subprocess.run([python or _base_python(), "-m", "venv", str(root)], check=True, timeout=120)
    done = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *requirements], capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"pip install {' '.join(requirements)} into bench/.venvs/{name} failed:\n{tail}")
    stamp.write_text(wanted)
    return root / "bin"


def _base_python() -> str:
    """The interpreter behind the current one (not a venv's), so the peer venv does not inherit fedinf's."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else sys.executable
