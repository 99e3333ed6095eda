"""``fedinf run TASK FILES... --out results.jsonl``: a task over many documents, resumable.

Directories are walked (hidden files skipped). Re-running the same command after an interruption skips documents
already in the output file (by content hash). Exit status: 0 when every document has an ``ok`` record, 1 when some
documents failed (their errors are in the output file), 2 for usage/config errors, 130 when interrupted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, fail, load, quiet_native_logs
from fedinf.errors import FedinfError


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; directories walked recursively in sorted order, hidden entries skipped."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    return out


def default_concurrency(cfg: Any, route: str) -> int:
    """Documents in flight by default: the llama.cpp slots (``options.parallel``, default 4) of the local models
    ``route`` reaches, summed over their replicas; 4 when it reaches no local model. More documents than slots only
    queue inside the model and run into their deadlines."""
    from fedinf.backends.local import LocalOptions

    ids = list(cfg.routes[route].models) if route in cfg.routes else [route]
    slots = 0
    for m in cfg.models:
        if m.id in ids and m.backend == "local":
            parallel = int((m.options or {}).get("parallel", LocalOptions().parallel))
            slots += parallel * max(1, len(getattr(m, "endpoints", None) or [None]))
    return max(1, slots) if slots else 4


def _summary_table(summary: Any, out: Path) -> Table:
    s = summary.to_dict()
    table = Table(title=f"fedinf run {s['task']} -> {out}", show_header=False)
    for key in ("inputs", "ok", "errors", "skipped", "duplicates", "redefined", "warnings", "disagreements", "failed_checks",
                "elapsed_s", "docs_per_minute"):
        table.add_row(key.replace("_", " "), str(s[key]))
    for code, n in sorted(s["error_codes"].items()):
        table.add_row(f"  error {code}", str(n))
    return table


def command(
    task: str = typer.Argument(..., help="Task name (see GET /v1/tasks; built-in: invoice, utility_bill)."),
    files: list[Path] = typer.Argument(..., help="Documents (PDF, HTML, JSON, text) or directories."),
    out: Path = typer.Option(..., "--out", "-o", help="JSON Lines output; an existing file is resumed."),
    config: Optional[Path] = CONFIG_OPTION,
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", "-j", min=1, max=256,
        help="Documents in flight (default: the slots of the local models the task's route reaches, else 4)."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=1, max=3600,
        help="Deadline of each model call in seconds (overrides the task's timeout_s). A model that times out "
             "leaves the extractors' values, marked in the record's warnings."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Also re-run documents that failed before."),
    engine: str = typer.Option("local", "--engine", help="local (asyncio in this process) or ray (Ray Data: -j "
                               "actors; joins the cluster at RAY_ADDRESS, else starts a local one; needs the ray "
                               "extra). Same records, resume and audit."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (e.g. in CI logs)."),
) -> None:
    """Run TASK over FILES, one JSON record per document in --out, with a progress bar and a summary."""
    from fedinf.gateway import Gateway
    from fedinf.tasks import GatewayClient, TaskRegistry, TaskRunner, run_batch

    quiet_native_logs()
    if engine not in ("local", "ray"):
        err_console.print(f"[red]error:[/red] --engine must be local or ray, not {engine!r}", highlight=False)
        raise typer.Exit(2)
    cfg = load(config)
    try:
        spec = TaskRegistry.from_config(cfg, base_dir=config.parent if config else ".").get(task)
    except FedinfError as exc:
        fail(exc, 2)
    if timeout is not None:
        spec = spec.model_copy(update={"timeout_s": timeout})
    jobs = concurrency or default_concurrency(cfg, spec.route)
    paths = expand(files)
    missing = [p for p in paths if not p.exists()]
    if missing:
        err_console.print(f"[red]error:[/red] no such file: {missing[0]}", highlight=False)
        raise typer.Exit(2)

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err_console,
                        disable=no_progress)
    bar = progress.add_task(spec.name, total=len(paths), status="")

    from fedinf.tasks.progress import BatchProgress

    recorder = BatchProgress(cfg.server.state_dir, task=spec.name, out=str(out), total=len(paths))

    def on_event(event: dict[str, Any]) -> None:
        recorder.note(event)  # what the server's /admin/batches and the UI show
        if event["event"] != "start":
            status = event.get("code") or event.get("status") or event["event"]
            progress.update(bar, advance=1, status=f"{event.get('name', '')[:40]} {status}")

    async def go() -> Any:
        async with Gateway.local(cfg) as gw:
            return await run_batch(TaskRunner(GatewayClient(gw)), spec, paths, out, concurrency=jobs,
                                   retry_errors=retry_errors, on_event=on_event)

    def execute() -> Any:
        if engine == "ray":
            from fedinf.tasks.ray_engine import run_batch_ray
            return run_batch_ray(cfg, spec, paths, out, concurrency=jobs, retry_errors=retry_errors,
                                 on_event=on_event)
        return asyncio.run(go())

    try:
        with progress:
            summary = execute()
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        err_console.print("interrupted: finished documents are saved; run the same command again to resume")
        raise typer.Exit(130) from None
    except FedinfError as exc:
        recorder.finish("failed")
        fail(exc, 2)
    recorder.finish("failed" if summary.errors else "done")
    console.print(_summary_table(summary, out))
    if summary.errors:
        raise typer.Exit(1)
