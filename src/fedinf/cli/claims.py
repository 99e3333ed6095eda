"""``fedinf claims``: X12 claims - parse, pre-validate, derive rules from rejections, review rules.

    fedinf claims validate FILES... [--out results.jsonl]   structural checks + approved rules (exit 1: rejections)
    fedinf claims parse FILE                                the typed models as JSON
    fedinf claims derive REJECTIONS... [--submitted 837s]   999/277CA/835 -> candidate rules in the rule store
    fedinf claims rules list|show|approve|reject|retire     review: only approved rules apply

Everything runs in-process as the local operator, classified restricted and audited like API requests.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, fail, load
from fedinf.cli.run import expand
from fedinf.errors import FedinfError

app = typer.Typer(no_args_is_help=True, help="Health-care claims (X12 837/835/999/277CA): validate, derive, review.")
rules_app = typer.Typer(no_args_is_help=True, help="Review derived rules: only approved rules apply.")
app.add_typer(rules_app, name="rules")


async def _with_service(config: Optional[Path], fn: Any) -> Any:
    from fedinf.claims.service import ClaimsService
    from fedinf.gateway import Gateway

    gw = Gateway.local(load(config))
    if gw.auditor is not None:
        await gw.auditor.start()
    service = ClaimsService(gw)
    try:
        return await fn(service)
    finally:
        service.close()
        if gw.auditor is not None:
            await gw.auditor.aclose()


def _run(config: Optional[Path], fn: Any, exit_code: int = 1) -> Any:
    try:
        return asyncio.run(_with_service(config, fn))
    except FedinfError as exc:
        fail(exc, exit_code)


def _files(files: list[Path]) -> list[Path]:
    paths = expand(files)
    missing = [p for p in paths if not p.exists()]
    if missing:
        err_console.print(f"[red]error:[/red] no such file: {missing[0]}", highlight=False)
        raise typer.Exit(2)
    return paths


def _violations_table(name: str, report: dict[str, Any]) -> Table:
    verdict = "[green]accepted[/green]" if report["accepted"] else f"[red]rejected[/red] ({report['errors']} errors)"
    table = Table(title=f"{name}: {verdict}, {report['claims']} claims", title_justify="left")
    for col in ("severity", "code", "segment", "pos", "loop", "element", "claim", "message"):
        table.add_column(col, overflow="fold")
    for v in report["violations"]:
        table.add_row(v["severity"], v.get("rule_id") or v["code"], v.get("segment_id") or v["level"],
                      str(v.get("position") or v.get("index") or ""), v.get("loop") or "", v.get("element") or "",
                      v.get("claim") or "", v["message"])
    return table


@app.command("validate")
def validate(
    files: list[Path] = typer.Argument(..., help="X12 files (837P/837I, ...) or directories."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Batch mode: one JSON record per file into this "
                                       "JSONL file, with progress; an existing file is resumed."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON instead of tables."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Batch: re-check files that failed before."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Batch: no progress bar."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Pre-validate claims: structural checks (X12 maps, code lists) plus approved rules. Exit 1 when any file is
    rejected or unreadable."""
    paths = _files(files)
    if out is not None:
        _batch(paths, out, retry_errors=retry_errors, no_progress=no_progress, config=config)
        return

    async def go(service: Any) -> bool:
        ok = True
        for p in paths:
            try:
                report = (await service.validate(p.read_bytes())).report.to_dict()
            except FedinfError as exc:
                ok = False
                err_console.print(f"[red]{p.name}: error ({exc.code}):[/red] {exc.message}", highlight=False)
                continue
            ok = ok and report["accepted"]
            if as_json:
                console.print_json(json.dumps({"name": p.name, **report}))
            else:
                console.print(_violations_table(p.name, report))
        return ok

    if not _run(config, go):
        raise typer.Exit(1)


def _batch(paths: list[Path], out: Path, *, retry_errors: bool, no_progress: bool, config: Optional[Path]) -> None:
    from fedinf.claims.batch import validate_files

    progress = Progress(TextColumn("[bold]claims"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err_console,
                        disable=no_progress)
    bar = progress.add_task("claims", total=len(paths), status="")

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] != "start":
            status = event.get("status", event["event"])
            progress.update(bar, advance=1, status=f"{event.get('name', '')[:40]} {status}")

    try:
        with progress:
            summary = _run(config, lambda s: validate_files(s, paths, out, retry_errors=retry_errors,
                                                            on_event=on_event), 2)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished files are saved; run the same command again to resume")
        raise typer.Exit(130) from None
    s = summary.to_dict()
    table = Table(title=f"fedinf claims validate -> {out}", show_header=False)
    for key, value in s.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if summary.rejected or summary.errors:
        raise typer.Exit(1)


@app.command("parse")
def parse(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="One X12 file."),
          config: Optional[Path] = CONFIG_OPTION) -> None:
    """Print the typed models of FILE (claims, remittances, acknowledgments, statuses) as JSON. Output holds PHI."""
    from fedinf.claims.engine import Engine
    from fedinf.claims.parsing import parse as parse_x12
    from fedinf.claims.service import decode

    try:
        doc, _ = parse_x12(decode(file.read_bytes(), limit=load(config).claims.max_document_bytes), engine=Engine())
    except FedinfError as exc:
        fail(exc)
    console.print_json(doc.model_dump_json(exclude={"transactions"}))


@app.command("derive")
def derive(
    files: list[Path] = typer.Argument(..., help="Rejections: 999/997, 277CA and 835 files or directories."),
    submitted: list[Path] = typer.Option([], "--submitted", "-s", help="The 837 files the rejections answer "
                                         "(optional: resolves 999 positions to loops, scopes rules by payer)."),
    describe: bool = typer.Option(False, "--describe", help="Reword descriptions with claims.describe_route's "
                                  "on-prem model (bounded; deterministic wording is kept on any failure)."),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Derive candidate rules from rejections into the rule store (review them with `fedinf claims rules`)."""
    docs = [(p.name, p.read_bytes()) for p in _files(files)]
    subs = [(p.name, p.read_bytes()) for p in _files(submitted)] if submitted else []

    async def go(service: Any) -> Any:
        return await service.derive(docs, submitted=subs, describe=describe)

    outcome = _run(config, go)
    d = outcome.derivation
    table = Table(title=f"{len(d.rules)} rules ({outcome.added} new, {outcome.updated} with new evidence), "
                        f"{len(d.unmapped)} rejections without a rule", title_justify="left")
    for col in ("id", "source", "evidence", "description"):
        table.add_column(col, overflow="fold")
    for r in d.rules:
        table.add_row(r.id, r.source, str(len(r.evidence)), r.description)
    console.print(table)
    for rej, why in d.unmapped:
        console.print(f"  no rule: {rej.source} {rej.codes}: {why}", highlight=False)


@rules_app.command("list")
def rules_list(status: Optional[str] = typer.Option(None, "--status", help="candidate, approved, rejected, "
                                                   "retired"), config: Optional[Path] = CONFIG_OPTION) -> None:
    """List rules with their status."""
    rules = _run(config, lambda s: s.list_rules(status=status))
    table = Table()
    for col in ("id", "status", "source", "scope", "evidence", "description"):
        table.add_column(col, overflow="fold")
    for r in rules:
        scope = ",".join(r.scope.payers or ["any payer"]) + " / " + ",".join(r.scope.claim_types or ["any type"])
        table.add_row(r.id, r.status, r.source, scope, str(len(r.evidence)), r.description)
    console.print(table)


@rules_app.command("show")
def rules_show(rule_id: str, config: Optional[Path] = CONFIG_OPTION) -> None:
    """One rule as JSON: expression, scope, evidence, review state."""
    rule = _run(config, lambda s: s.get_rule(rule_id))
    console.print_json(rule.model_dump_json())


def _review(action: str, rule_id: str, note: str, expression: Optional[str], config: Optional[Path]) -> None:
    rule = _run(config, lambda s: s.review(rule_id, action, note=note, expression=expression))
    console.print(f"{rule.id}: {rule.status}")


@rules_app.command("approve")
def rules_approve(rule_id: str, note: str = typer.Option("", "--note"),
                  expression: Optional[str] = typer.Option(None, "--expression", help="Replace the CEL expression "
                                                           "(must compile)."),
                  config: Optional[Path] = CONFIG_OPTION) -> None:
    """Approve a rule: it applies to every later validation."""
    _review("approve", rule_id, note, expression, config)


@rules_app.command("reject")
def rules_reject(rule_id: str, note: str = typer.Option("", "--note"), config: Optional[Path] = CONFIG_OPTION) -> None:
    """Reject a candidate rule (it never applies; re-deriving it keeps it rejected)."""
    _review("reject", rule_id, note, None, config)


@rules_app.command("retire")
def rules_retire(rule_id: str, note: str = typer.Option("", "--note"), config: Optional[Path] = CONFIG_OPTION) -> None:
    """Retire an approved rule: it stops applying."""
    _review("retire", rule_id, note, None, config)
