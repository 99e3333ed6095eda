"""Batch pre-validation: many X12 files, one JSON Lines record per file, progress events and resume - the same
output format and resume semantics as ``fedinf run`` (:mod:`fedinf.tasks.batch`, whose ``ResultLog`` it reuses).

Resume is keyed on the file's content hash and on the digest of the approved rule set: approving or retiring a
rule re-checks every file on the next run. Each record is fsynced as soon as its file is done.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedinf.claims.service import ClaimsService
from fedinf.claims.store import rules_digest
from fedinf.errors import FedinfError
from fedinf.tasks.batch import ResultLog, _read

TASK = "claims.validate"


@dataclass
class ValidateSummary:
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0  # files that could not be checked (not X12, unreadable, too large)
    skipped: int = 0
    duplicates: int = 0
    violations: int = 0
    claims: int = 0
    rejected_claims: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "accepted": self.accepted, "rejected": self.rejected, "errors": self.errors,
                "skipped": self.skipped, "duplicates": self.duplicates, "violations": self.violations,
                "claims": self.claims, "rejected_claims": self.rejected_claims,
                "error_codes": dict(self.error_codes), "elapsed_s": round(self.elapsed_s, 2)}


async def validate_files(service: ClaimsService, paths: Iterable[str | os.PathLike[str]],
                         out: str | os.PathLike[str], *, retry_errors: bool = False,
                         on_event: Callable[[dict[str, Any]], None] | None = None) -> ValidateSummary:
    """Validate every file into ``out`` (JSONL), skipping files already there with the same rule set."""
    files = [Path(p) for p in paths]
    summary = ValidateSummary(inputs=len(files))
    log = ResultLog(out, task=TASK, retry_errors=retry_errors, task_hash=rules_digest(service.store.approved()))
    emit = on_event or (lambda e: None)
    emit({"event": "start", "total": len(files), "already_done": len(log.done)})
    seen: set[str] = set()
    started = time.monotonic()
    try:
        for path in files:
            data, digest, err = _read(path, service.settings.max_document_bytes)
            if digest in seen or digest in log.done:
                summary.duplicates += digest in seen
                summary.skipped += digest not in seen
                seen.add(digest)
                emit({"event": "skipped", "name": path.name})
                continue
            seen.add(digest)
            base = {"task": TASK, "name": path.name, "path": str(path), "sha256": digest}
            if err is None and data is not None:
                try:
                    outcome = await service.validate(data)
                    assert outcome.report is not None
                    rec = {**base, "status": "ok", "result": outcome.report.to_dict()}
                except FedinfError as exc:
                    err = {"code": exc.code, "message": exc.message, "retryable": exc.retryable,
                           **({"details": exc.details} if exc.details else {})}
            if err is not None:
                rec = {**base, "status": "error", "error": err}
            log.append(rec)
            _note(summary, rec)
            emit({"event": "done", "name": path.name, "status": _status(rec)})
    finally:
        log.close()
        summary.elapsed_s = time.monotonic() - started
    return summary


def _status(rec: dict[str, Any]) -> str:
    if rec["status"] != "ok":
        return str(rec["error"]["code"])
    return "accepted" if rec["result"]["accepted"] else f"rejected ({rec['result']['errors']} errors)"


def _note(s: ValidateSummary, rec: dict[str, Any]) -> None:
    if rec["status"] != "ok":
        s.errors += 1
        s.error_codes[rec["error"]["code"]] += 1
        return
    r = rec["result"]
    s.accepted += bool(r["accepted"])
    s.rejected += not r["accepted"]
    s.violations += len(r["violations"])
    s.claims += r["claims"]
    s.rejected_claims += r["rejected_claims"]
