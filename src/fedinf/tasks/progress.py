"""Batch progress files: what `fedinf run` is doing, readable by the server (admin API ``/admin/batches``, the UI).

A batch run writes ``<server.state_dir>/batches/<run id>.json`` when it starts, at most every ``interval_s`` while it
runs, and when it ends (replaced atomically, so a reader never sees half a file)::

    {"id": "...", "task": "invoice", "out": "results.jsonl", "pid": 4242, "host": "gw1", "state": "running",
     "started_at": 1.7e9, "updated_at": ..., "finished_at": null, "total": 120, "already_done": 20,
     "ok": 30, "errors": 2, "skipped": 20, "duplicates": 0, "error_codes": {"needs_ocr": 2}}

``state`` is ``running``, ``done`` (every document has an ``ok`` record), ``failed`` (some documents failed),
``interrupted`` or ``crashed`` (a reader on the same host found the process gone without a final write). Only counts,
names of tasks and the output path are written: no document content.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

_DIR = "batches"


class BatchProgress:
    """The progress file of one batch run; feed it :func:`~fedinf.tasks.run_batch` events through :meth:`note`."""

    def __init__(self, state_dir: str | os.PathLike[str], *, task: str, out: str, total: int,
                 interval_s: float = 0.5) -> None:
        self.dir = Path(state_dir) / _DIR
        started = time.time()
        self.id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + "-" + secrets.token_hex(3)
        self.path = self.dir / f"{self.id}.json"
        self.interval_s = interval_s
        self._last_write = 0.0
        self._codes: Counter[str] = Counter()
        self.state: dict[str, Any] = {
            "id": self.id, "task": task, "out": out, "pid": os.getpid(), "host": socket.gethostname(),
            "state": "running", "started_at": started, "updated_at": started, "finished_at": None,
            "total": total, "already_done": 0, "ok": 0, "errors": 0, "skipped": 0, "duplicates": 0,
            "error_codes": {}}
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write()

    def note(self, event: dict[str, Any]) -> None:
        """One :func:`run_batch` event (``start``, ``done``, ``skipped``, ``duplicate``)."""
        kind, s = event.get("event"), self.state
        if kind == "start":
            s["total"], s["already_done"] = event.get("total", s["total"]), event.get("already_done", 0)
        elif kind == "done":
            if event.get("status") == "ok":
                s["ok"] += 1
            else:
                s["errors"] += 1
                self._codes[str(event.get("code") or "error")] += 1
                s["error_codes"] = dict(self._codes)
        elif kind == "skipped":
            s["skipped"] += 1
        elif kind == "duplicate":
            s["duplicates"] += 1
        if time.monotonic() - self._last_write >= self.interval_s:
            self._write()

    def finish(self, state: str) -> None:
        """The run ended: ``done``, ``failed`` or ``interrupted``."""
        self.state["state"] = state
        self.state["finished_at"] = time.time()
        self._write()

    def _write(self) -> None:
        self.state["updated_at"] = time.time()
        self._last_write = time.monotonic()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.state, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)


def list_batches(state_dir: str | os.PathLike[str], *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` batch runs, newest first; a ``running`` run whose process is gone (same host) is
    reported as ``crashed``. Unreadable files are skipped."""
    folder = Path(state_dir) / _DIR
    if not folder.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json"), reverse=True)[:limit]:
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(run, dict):
            continue
        if run.get("state") == "running" and run.get("host") == socket.gethostname() \
                and not _alive(int(run.get("pid") or 0)):
            run["state"] = "crashed"
        out.append(run)
    return out


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
