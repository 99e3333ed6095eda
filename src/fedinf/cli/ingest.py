"""``fedinf ingest COLLECTION FILES...``: add documents to a retrieval collection, with a progress bar.

Folders are walked for the formats fedinf reads (text, Markdown, HTML, PDF, JSON, YAML - OSV records included). The
collection is created if it does not exist (``--data-class`` declares its class then). A file that cannot be read is
reported and skipped; the command exits 1 when any file failed. Adding a file already in the collection (same bytes)
does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, console, err_console, fail, load
from fedinf.errors import FedinfError, NotFound

SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".pdf", ".json", ".yaml", ".yml",
            ".csv", ".eml"}


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files given, and the readable files under folders given (sorted, hidden ones skipped)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUFFIXES and not any(x.startswith(".") for x in f.parts):
                    yield f
        else:
            yield p


async def _ingest(rt: Any, collection: str, files: list[Path], data_class: str | None) -> tuple[int, int, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        await rt.get_collection(collection)
    except NotFound:
        await rt.create_collection(collection, data_class=data_class)
        console.print(f"created collection [bold]{collection}[/bold] ({data_class or 'public'})", highlight=False)
    added = skipped = failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[current]}"))
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(f"ingest {collection}", total=len(files), current="")
        for f in files:
            progress.update(task, current=f.name)
            try:
                res = await rt.add_path(collection, f)
                added, skipped = added + res.created, skipped + (not res.created)
            except FedinfError as exc:
                failed += 1
                progress.console.print(f"[red]{f}: {exc.message}[/red] ({exc.code})", highlight=False)
            progress.advance(task)
    return added, skipped, failed


def command(
    collection: str = typer.Argument(..., help="The collection (created if missing)."),
    files: list[Path] = typer.Argument(..., help="Files or folders to add (text, Markdown, HTML, PDF, OSV JSON/YAML)."),
    data_class: Optional[str] = typer.Option(None, "--data-class", help="Declared class of a new collection."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Add documents to a retrieval collection (chunked, classified, embedded, indexed)."""
    from fedinf.gateway import Gateway

    cfg = load(config)
    found = list(expand(files))
    missing = [f for f in found if not f.exists()]
    if missing:
        err_console.print(f"[red]error:[/red] no such file: {missing[0]}", highlight=False)
        raise typer.Exit(2)
    if not found:
        err_console.print("[red]error:[/red] no readable files found", highlight=False)
        raise typer.Exit(2)

    async def go() -> tuple[int, int, int]:
        async with Gateway.local(cfg) as gw:
            return await _ingest(gw.retrieval_service(), collection, found, data_class)

    try:
        added, skipped, failed = asyncio.run(go())
    except FedinfError as exc:
        fail(exc)
        return
    console.print(f"{added} added, {skipped} already present, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)
