"""Batch runs: many documents through one task, with bounded concurrency, per-document errors recorded, and resume.

Output is JSON Lines, one record per document::

    {"task": "invoice", "name": "a.pdf", "path": "in/a.pdf", "sha256": "...", "status": "ok", "result": {...}}
    {"task": "invoice", "name": "b.pdf", "path": "in/b.pdf", "sha256": "...", "status": "error",
     "error": {"code": "needs_ocr", "message": "...", "retryable": false}}

Each record is written (flushed and fsynced) as soon as its document finishes, so an interrupted run loses only
the documents in flight. Re-running with the same output file skips every document whose content hash (SHA-256 of
the bytes) already has a record - the same file under another name included - so each document gets exactly one
record. Records of retryable errors (backend unavailable, timeouts) are re-run on resume (their old record is
dropped); with ``retry_errors=True`` every error is. A torn last line (killed mid-write) is discarded. Every record
carries ``task_hash`` (:meth:`TaskSpec.definition_hash`): after the task's definition changes (prompt, schema, field
rules...), records written under another definition are re-run and replaced. The file is created 0600.

:func:`process_document` is the per-document function (bytes in, record out, never raises for a document's own
failure): a distributed runner (Ray Data) can map it over rows without changing tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedinf.errors import ConfigError, FedinfError, PayloadTooLarge
from fedinf.tasks.runner import TaskRunner
from fedinf.tasks.spec import TaskSpec

Event = dict[str, Any]


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, FedinfError):
        return {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "retryable": False}


async def process_document(runner: TaskRunner, spec: TaskSpec, data: bytes, *, name: str,
                           path: str | None = None, sha256: str | None = None) -> dict[str, Any]:
    """Run ``spec`` on one document; return its JSONL record (``status`` ok or error)."""
    base = {"task": spec.name, "name": name, "path": path, "sha256": sha256 or hashlib.sha256(data).hexdigest()}
    try:
        result = await runner.run_bytes(spec, data, name=name)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a document's failure is recorded, the run goes on
        return {**base, "status": "error", "error": _error(exc)}
    return {**base, "status": "ok", "result": result.to_dict()}


class ResultLog:
    """The JSONL output file: what is already done, and durable appends."""

    def __init__(self, path: str | os.PathLike[str], *, task: str, retry_errors: bool = False,
                 task_hash: str | None = None) -> None:
        self.path = Path(path)
        self.task = task
        self.task_hash = task_hash
        self.done: set[str] = set()
        self.previous: Counter[str] = Counter()
        self.redefined = 0  # records dropped because the task definition changed since they were written
        self._load(retry_errors)
        self._fh = _open_private(self.path)

    def _load(self, retry_errors: bool) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        keep, dropped = [], False
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                dropped = True  # a torn line from an interrupted write
                continue
            if rec.get("task") != self.task:
                raise ConfigError(f"{self.path} holds results of task {rec.get('task')!r}, not {self.task!r}: "
                                  "use another --out file")
            retry = rec.get("status") == "error" and (retry_errors or rec.get("error", {}).get("retryable"))
            if self.task_hash is not None and rec.get("task_hash") != self.task_hash:
                self.redefined += 1
                retry = True
            if retry or rec.get("sha256") in self.done:
                dropped = True
                continue
            self.done.add(rec["sha256"])
            self.previous[rec.get("status", "?")] += 1
            keep.append(line)
        if dropped:
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with _open_private(tmp, "w") as fh:
                fh.write("".join(k + "\n" for k in keep))
            os.replace(tmp, self.path)

    def append(self, record: dict[str, Any]) -> None:
        if self.task_hash is not None:
            record = {**record, "task_hash": self.task_hash}
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.add(record["sha256"])

    def close(self) -> None:
        self._fh.close()


def _open_private(path: Path, mode: str = "a") -> Any:
    """Open ``path`` for text writing, created 0600 (results hold personal data); an existing file is narrowed to
    0600 as well."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC), 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:  # pragma: no cover - a file we may write but not chmod (another owner)
        pass
    return os.fdopen(fd, mode, encoding="utf-8")


@dataclass
class BatchSummary:
    task: str
    inputs: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    duplicates: int = 0
    redefined: int = 0  # earlier records re-run because the task definition changed
    error_codes: Counter[str] = field(default_factory=Counter)
    warnings: int = 0
    disagreements: int = 0
    failed_checks: int = 0
    elapsed_s: float = 0.0

    @property
    def processed(self) -> int:
        return self.ok + self.errors

    @property
    def docs_per_minute(self) -> float:
        return round(self.processed / self.elapsed_s * 60, 2) if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "inputs": self.inputs, "ok": self.ok, "errors": self.errors,
                "skipped": self.skipped, "duplicates": self.duplicates, "redefined": self.redefined,
                "error_codes": dict(self.error_codes),
                "warnings": self.warnings, "disagreements": self.disagreements,
                "failed_checks": self.failed_checks, "elapsed_s": round(self.elapsed_s, 2),
                "docs_per_minute": self.docs_per_minute}


def _note(summary: BatchSummary, rec: dict[str, Any]) -> None:
    if rec["status"] == "ok":
        summary.ok += 1
        res = rec["result"]
        summary.warnings += len(res.get("warnings", []))
        summary.disagreements += sum(1 for f in res.get("fields", {}).values() if f.get("source") == "disagree")
        summary.failed_checks += sum(1 for c in res.get("checks", []) if not c.get("passed"))
    else:
        summary.errors += 1
        summary.error_codes[rec["error"]["code"]] += 1


def _read(path: Path, limit: int) -> tuple[bytes | None, str, dict[str, Any] | None]:
    """``(data, sha256, error)``; files over the limit are hashed streaming and not kept in memory."""
    h = hashlib.sha256()
    try:
        size = path.stat().st_size
        if size > limit:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            err = PayloadTooLarge(f"{path.name} is {size} bytes; the limit is {limit}")
            return None, h.hexdigest(), _error(err)
        data = path.read_bytes()
    except OSError as exc:
        return None, hashlib.sha256(str(path).encode()).hexdigest(), {
            "code": "unreadable_file", "message": f"cannot read {path.name}: {exc.strerror}", "retryable": False}
    return data, hashlib.sha256(data).hexdigest(), None


async def run_batch(runner: TaskRunner, spec: TaskSpec, paths: Iterable[str | os.PathLike[str]],
                    out: str | os.PathLike[str], *, concurrency: int = 2, retry_errors: bool = False,
                    on_event: Callable[[Event], None] | None = None) -> BatchSummary:
    """Run ``spec`` over ``paths``, appending one record per new document to ``out``; see the module docstring.

    ``on_event`` receives ``{"event": "start", "total": n}``, then per document ``{"event": "done" | "skipped" |
    "duplicate", "name": ..., "status": ...}``.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    files = [Path(p) for p in paths]
    summary = BatchSummary(task=spec.name, inputs=len(files))
    log = ResultLog(out, task=spec.name, retry_errors=retry_errors, task_hash=spec.definition_hash())
    emit = on_event or (lambda e: None)
    summary.redefined = log.redefined
    emit({"event": "start", "total": len(files), "already_done": len(log.done), "redefined": log.redefined})
    # One reader hashes the inputs in their given order, so which of two identical files is recorded (the first)
    # does not depend on timing; the bounded queue keeps at most ``concurrency`` documents' bytes waiting.
    queue: asyncio.Queue[tuple[Path, bytes | None, str, dict[str, Any] | None] | None] = \
        asyncio.Queue(maxsize=concurrency)
    workers = min(concurrency, max(1, len(files)))
    started = time.monotonic()

    async def reader() -> None:
        seen: set[str] = set()  # content hashes met in this run
        try:
            for path in files:
                data, digest, err = await asyncio.to_thread(_read, path, spec.limits.max_document_bytes)
                if digest in seen:
                    summary.duplicates += 1
                    emit({"event": "duplicate", "name": path.name})
                elif digest in log.done:
                    seen.add(digest)
                    summary.skipped += 1
                    emit({"event": "skipped", "name": path.name})
                else:
                    seen.add(digest)
                    await queue.put((path, data, digest, err))
        finally:
            for _ in range(workers):
                await queue.put(None)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            path, data, digest, err = item
            base: dict[str, Any] = {"task": spec.name, "name": path.name, "path": str(path), "sha256": digest}
            if err is not None:
                rec = {**base, "status": "error", "error": err}
            else:
                assert data is not None
                rec = await process_document(runner, spec, data, name=path.name, path=str(path), sha256=digest)
            log.append(rec)
            _note(summary, rec)
            error = rec.get("error")
            emit({"event": "done", "name": path.name, "status": rec["status"],
                  "code": error.get("code") if isinstance(error, dict) else None})

    try:
        await asyncio.gather(reader(), *(worker() for _ in range(workers)))
    finally:
        summary.elapsed_s = time.monotonic() - started
        log.close()
    return summary
