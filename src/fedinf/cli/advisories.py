"""``fedinf advisories``: security advisories to OSV records, merged across sources, and answered from a collection.

    fedinf advisories extract advisory.html                       # one OSV record + remediation (JSON)
    fedinf advisories merge nvd.txt ghsa.json vendor.html          # one record per vulnerability, with conflicts
    fedinf advisories ingest advisories advisories/*.yaml notes/*.txt
    fedinf advisories affected advisories requirements.txt         # which pinned packages are affected
    fedinf advisories fixed advisories django --version 3.2.1      # the fixed version, with citations
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, fail, load, quiet_native_logs
from fedinf.errors import FedinfError

app = typer.Typer(no_args_is_help=True, help="Security advisories: text to OSV, merge sources, affected packages.")

MODEL_OPTION: Any = typer.Option(False, "--model", help="Let the model write the prose fields (default: "
                                                        "extractors only, no model call).")


def _read(paths: list[Path]) -> list[tuple[str, bytes]]:
    files = []
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                files.append((f.name, f.read_bytes()))
            elif not f.exists():
                err_console.print(f"[red]error:[/red] no such file: {f}", highlight=False)
                raise typer.Exit(2)
    return files


def _run(config: Optional[Path], work: Any) -> Any:
    """Run ``work(gateway)`` inside an in-process gateway (as the local operator)."""
    from fedinf.gateway import Gateway

    quiet_native_logs()
    cfg = load(config)

    async def go() -> Any:
        async with Gateway.local(cfg) as gw:
            return await work(gw)

    try:
        return asyncio.run(go())
    except FedinfError as exc:
        fail(exc, 2)


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


@app.command("extract")
def extract(file: Path = typer.Argument(..., help="An advisory: text, HTML, PDF, JSON (OSV or {details, ecosystem})."),
            model: bool = MODEL_OPTION, config: Optional[Path] = CONFIG_OPTION) -> None:
    """Print the advisory task's result for one document (OSV record, remediation, provenance, warnings)."""
    from fedinf.tasks import GatewayClient, TaskRunner
    from fedinf.tasks.builtin import ADVISORY

    (name, data), = _read([file])
    spec = ADVISORY.model_copy(update={"use_model": model})

    async def work(gw: Any) -> Any:
        return (await TaskRunner(GatewayClient(gw)).run_bytes(spec, data, name=name)).to_dict()

    _print(_run(config, work))


@app.command("merge")
def merge(files: list[Path] = typer.Argument(..., help="Advisories of one or more vulnerabilities, any format."),
          model: bool = MODEL_OPTION, config: Optional[Path] = CONFIG_OPTION) -> None:
    """Merge several sources of the same vulnerability into one OSV record per vulnerability (grouped by shared
    CVE/GHSA/... ids); disagreements are listed under ``conflicts``. Prints JSON Lines."""
    from fedinf.advisories.extract import now_timestamp
    from fedinf.advisories.ingest import merge_files
    from fedinf.tasks import GatewayClient, TaskRunner

    data = _read(files)

    async def work(gw: Any) -> Any:
        return await merge_files(data, modified=now_timestamp(), runner=TaskRunner(GatewayClient(gw)),
                                 use_model=model)

    for rec in _run(config, work):
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")


@app.command("ingest")
def ingest(collection: str = typer.Argument(..., help="Collection (created as public if missing)."),
           files: list[Path] = typer.Argument(..., help="OSV JSON/YAML records, Go vulndb reports, or advisory "
                                                         "texts/pages (converted to OSV first)."),
           data_class: Optional[str] = typer.Option(None, "--data-class", help="Declared class of these documents "
                                                    "(e.g. internal for your own notes); never lowers detection."),
           model: bool = MODEL_OPTION, config: Optional[Path] = CONFIG_OPTION) -> None:
    """Add advisories to a retrieval collection so `affected` and `fixed` can answer from them."""
    from fedinf.advisories.ingest import ingest as run_ingest
    from fedinf.tasks import GatewayClient, TaskRunner

    data = _read(files)

    async def work(gw: Any) -> Any:
        return await run_ingest(gw.retrieval_service(), collection, data, runner=TaskRunner(GatewayClient(gw)),
                                use_model=model, data_class=data_class)

    rows = _run(config, work)
    table = Table("file", "OSV id", "class", "new", "warnings")
    for r in rows:
        table.add_row(r["name"], str(r["osv_id"]), r["data_class"], "yes" if r["created"] else "no (same bytes)",
                      str(len(r["warnings"])))
    console.print(table)


@app.command("affected")
def affected(collection: str = typer.Argument(..., help="Collection holding the advisories."),
             requirements: Path = typer.Argument(..., help="requirements.txt / pip freeze output / 'name version' "
                                                           "lines ('-' reads stdin)."),
             as_json: bool = typer.Option(False, "--json", help="Print the full answer as JSON."),
             config: Optional[Path] = CONFIG_OPTION) -> None:
    """Which pinned packages are affected by an ingested advisory (version checks with `packaging`, each answer
    cited). Exit status 1 when any package is affected."""
    from fedinf.advisories.query import affected as ask, parse_requirements

    text = sys.stdin.read() if str(requirements) == "-" else requirements.read_text(encoding="utf-8")
    try:
        wanted = parse_requirements(text)
    except FedinfError as exc:
        fail(exc, 2)

    async def work(gw: Any) -> Any:
        return await ask(gw.retrieval_service(), collection, wanted)

    answer = _run(config, work)
    if as_json:
        _print(answer)
    else:
        table = Table("package", "version", "status", "advisories", "upgrade to", "cited")
        for a in answer["answers"]:
            ups = sorted({x["upgrade_to"] for x in a["advisories"] if x["upgrade_to"]})
            table.add_row(a["package"], a["version"] or "-", a["status"],
                          ", ".join(f"{x['id']} [{x['citation']['ref']}]" for x in a["advisories"]) or "-",
                          ", ".join(ups) or "-", "yes" if a["cited"] else "no: " + a.get("note", ""))
        console.print(table)
        for c in answer["citations"]:
            console.print(f"[{c['ref']}] {c['document']} chunk {c['chunk']} chars {c['start']}-{c['end']}",
                          highlight=False)
    if answer["affected"]:
        raise typer.Exit(1)


@app.command("fixed")
def fixed(collection: str = typer.Argument(..., help="Collection holding the advisories."),
          package: str = typer.Argument(..., help="Package name."),
          version: Optional[str] = typer.Option(None, "--version", help="Your installed version."),
          config: Optional[Path] = CONFIG_OPTION) -> None:
    """The fixed version(s) of a package across ingested advisories, with citations (JSON)."""
    from fedinf.advisories.query import fixed_version

    async def work(gw: Any) -> Any:
        return await fixed_version(gw.retrieval_service(), collection, package, version=version)

    _print(_run(config, work))
