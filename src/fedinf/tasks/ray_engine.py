"""Batch runs on Ray Data: ``fedinf run TASK FILES --engine ray`` (needs the ``ray`` extra: ``pip install
'fedinf[ray]'``). The asyncio runner (:func:`fedinf.tasks.batch.run_batch`) stays the default.

Same contract as the local runner, the same output file format and the same resume:

- the **driver** (the ``fedinf run`` process) reads the output file (:class:`~fedinf.tasks.batch.ResultLog`: what is
  done, torn lines, retryable errors, records of another task definition), reads and hashes the input files, drops
  duplicates and what is done, and sends the remaining documents' bytes to Ray in windows of ``window`` documents
  (so memory stays bounded and files need not be visible to the workers);
- **actors** (``concurrency`` of them, one CPU each) each build one in-process :class:`~fedinf.gateway.Gateway` from
  the same config, as the local operator (like the local runner), and map
  :func:`~fedinf.tasks.batch.process_document` over their rows: classification, routing by policy, constrained
  model calls and the audit record of every model call happen on the worker, exactly as in the local runner;
- the driver appends each record to the output file (fsynced) as Ray streams results back, so an interrupted run
  resumes from what was written.

Cluster: with ``RAY_ADDRESS`` (or ``address=``) set, the run joins that cluster instead of starting a local one
(``ray.init(num_cpus=...)``). Every worker node then needs fedinf installed (same version and extras), the config's
secrets in its environment (``api_key_env``), and an audit store every node can reach: a PostgreSQL
``audit.store`` (a SQLite file under ``server.state_dir`` would be per node). See docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedinf.errors import ConfigError
from fedinf.tasks.batch import BatchSummary, Event, ResultLog, _note, _read, process_document
from fedinf.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from fedinf.config import Config

WINDOW = 256


class DocumentMapper:
    """A Ray Data actor: one Gateway and event loop per actor; maps document rows to JSON records."""

    def __init__(self, config: "Config", spec: TaskSpec) -> None:
        from fedinf.gateway import Gateway
        from fedinf.tasks.runner import GatewayClient, TaskRunner

        self._spec = spec
        self._loop = asyncio.new_event_loop()
        self._gateway = Gateway.local(config)
        self._loop.run_until_complete(self._gateway.start())
        self._runner = TaskRunner(GatewayClient(self._gateway))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch``: columns ``name``, ``path``, ``sha256``, ``data``; returns a ``record`` column (JSON text)."""
        import numpy as np

        async def run_all() -> list[dict[str, Any]]:
            return await asyncio.gather(*(
                process_document(self._runner, self._spec, bytes(data), name=str(name), path=str(path),
                                 sha256=str(digest))
                for name, path, digest, data in zip(batch["name"], batch["path"], batch["sha256"], batch["data"])))

        records = self._loop.run_until_complete(run_all())
        # the loop stops until the next batch: the batch's audit records reach the store now, not at the next batch
        self._loop.run_until_complete(self._gateway.auditor.flush())
        return {"record": np.array([json.dumps(r, ensure_ascii=False) for r in records], dtype=object)}

    def __del__(self) -> None:  # Ray ends actors without a hook: close what can be closed (records are durable)
        try:
            if not self._loop.is_closed():
                self._loop.run_until_complete(self._gateway.aclose())
                self._loop.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def init_ray(*, address: str | None, num_cpus: int) -> Any:
    """Join ``address`` (or ``RAY_ADDRESS``), else start a local Ray with ``num_cpus`` CPUs."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--engine ray needs the ray extra: pip install 'fedinf[ray]'") from exc
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # fedinf run draws its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-dataset INFO lines; full logs stay in Ray's dir
    return ray


def _portable(config: "Config") -> "Config":
    """The config with ``server.state_dir`` made absolute (actors do not share the driver's working directory)."""
    server = config.server.model_copy(update={"state_dir": str(Path(config.server.state_dir).resolve())})
    return config.model_copy(update={"server": server})


def run_batch_ray(config: "Config", spec: TaskSpec, paths: Iterable[str | os.PathLike[str]],
                  out: str | os.PathLike[str], *, concurrency: int = 2, retry_errors: bool = False,
                  on_event: Callable[[Event], None] | None = None, address: str | None = None,
                  window: int = WINDOW) -> BatchSummary:
    """Run ``spec`` over ``paths`` on Ray Data; same events, records, resume and summary as
    :func:`fedinf.tasks.batch.run_batch` (see the module docstring)."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    files = [Path(p) for p in paths]
    summary = BatchSummary(task=spec.name, inputs=len(files))
    log = ResultLog(out, task=spec.name, retry_errors=retry_errors, task_hash=spec.definition_hash())
    emit = on_event or (lambda e: None)
    summary.redefined = log.redefined
    emit({"event": "start", "total": len(files), "already_done": len(log.done), "redefined": log.redefined})
    started = time.monotonic()
    ray: Any = None
    try:
        rows: list[dict[str, Any]] = []
        for row in _pending(files, spec, log, summary, emit):
            rows.append(row)
            if len(rows) == window:
                ray = ray or init_ray(address=address, num_cpus=max(2, concurrency))
                _run_window(ray, config, spec, rows, concurrency, log, summary, emit)
                rows = []
        if rows:
            ray = ray or init_ray(address=address, num_cpus=max(2, concurrency))
            _run_window(ray, config, spec, rows, concurrency, log, summary, emit)
    finally:
        summary.elapsed_s = time.monotonic() - started
        log.close()
    return summary


def _pending(files: list[Path], spec: TaskSpec, log: ResultLog, summary: BatchSummary,
             emit: Callable[[Event], None]) -> Iterator[dict[str, Any]]:
    """Read and hash the inputs on the driver, one at a time: duplicates, done and unreadable ones are settled
    here; the others are yielded as rows for Ray."""
    seen: set[str] = set()
    for path in files:
        data, digest, err = _read(path, spec.limits.max_document_bytes)
        if digest in seen:
            summary.duplicates += 1
            emit({"event": "duplicate", "name": path.name})
            continue
        seen.add(digest)
        if digest in log.done:
            summary.skipped += 1
            emit({"event": "skipped", "name": path.name})
            continue
        if err is not None:
            rec = {"task": spec.name, "name": path.name, "path": str(path), "sha256": digest, "status": "error",
                   "error": err}
            _done(rec, log, summary, emit)
            continue
        yield {"name": path.name, "path": str(path), "sha256": digest, "data": data}


def _run_window(ray: Any, config: "Config", spec: TaskSpec, rows: list[dict[str, Any]], concurrency: int,
                log: ResultLog, summary: BatchSummary, emit: Callable[[Event], None]) -> None:
    from ray.data import ActorPoolStrategy

    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), concurrency * 4)))
    mapped = ds.map_batches(DocumentMapper, fn_constructor_kwargs={"config": _portable(config), "spec": spec},
                            batch_size=1, batch_format="numpy", num_cpus=1,
                            compute=ActorPoolStrategy(min_size=1, max_size=min(concurrency, len(rows))))
    for row in mapped.iter_rows():
        _done(json.loads(row["record"]), log, summary, emit)


def _done(rec: dict[str, Any], log: ResultLog, summary: BatchSummary, emit: Callable[[Event], None]) -> None:
    log.append(rec)
    _note(summary, rec)
    emit({"event": "done", "name": rec["name"], "status": rec["status"], "code": rec.get("error", {}).get("code")})
