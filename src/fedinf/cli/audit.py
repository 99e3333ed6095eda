"""``fedinf audit``: tail, query, export and verify the audit trail of the configured store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, err_console, load

app = typer.Typer(help="Tail, query, export and verify the audit trail.", no_args_is_help=True)

STORE_OPTION: Any = typer.Option(None, "--store", envvar="FEDINF_AUDIT_STORE",
                                 help="Audit store URL (sqlite:///path or postgresql://...); default: audit.store.")


def _store(config: Optional[Path], store_url: Optional[str]) -> Any:
    from fedinf.audit import open_audit_store
    from fedinf.errors import FedinfError

    cfg = load(config)
    settings = cfg.audit if store_url is None else cfg.audit.model_copy(update={"store": store_url})
    try:
        return open_audit_store(settings, state_dir=cfg.server.state_dir)
    except FedinfError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None


def _query(key: Optional[str], tenant: Optional[str], model: Optional[str], zone: Optional[str],
           data_class: Optional[str], since: Optional[str], until: Optional[str], outcome: Optional[str],
           limit: int, descending: bool = False) -> Any:
    from fedinf.audit import AuditQuery
    from fedinf.audit.export import parse_when

    try:
        return AuditQuery(key_id=key, tenant=tenant, model=model, zone=zone, data_class=data_class,
                          since=parse_when(since), until=parse_when(until), outcome=outcome, limit=limit,
                          descending=descending)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _table(records: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("seq", "time (UTC)", "request", "key", "tenant", "asked", "model @ zone", "class", "entities",
                "status", "tokens", "ms"):
        table.add_column(col)
    for r in records:
        cls, dec, usage = r.get("classification") or {}, r.get("decision") or {}, r.get("usage") or {}
        ents = ",".join(f"{k}:{v}" for k, v in sorted((cls.get("entities") or {}).items())) or "-"
        where = f"{dec.get('chosen_model')} @ {dec.get('chosen_zone')}" if dec.get("chosen_model") else "-"
        adj = f" ({cls['adjustment']})" if cls.get("adjustment") else ""
        status = str(r.get("status")) + (f" {r['error_code']}" if r.get("error_code") else "")
        table.add_row(str(r["seq"]), r["time"][:23].replace("T", " "), r["request_id"][:12], r.get("key_id") or "-",
                      r.get("tenant") or "-", r.get("model_requested") or "-", where,
                      f"{cls.get('data_class', '-')}{adj}", ents, status, str(usage.get("total_tokens", 0)),
                      "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.1f}")
    return table


def _emit(records: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        from fedinf.audit.export import jsonl_line

        for r in records:
            sys.stdout.write(jsonl_line(r))
        sys.stdout.flush()
    else:
        console.print(_table(records, title))


@app.command("tail")
def tail(
    n: int = typer.Option(20, "-n", help="How many of the newest records."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new records as they are written."),
    interval: float = typer.Option(1.0, help="Polling interval with --follow (seconds)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """The newest records (and, with --follow, every new one)."""
    from fedinf.audit import AuditQuery

    store = _store(config, store_url)
    recs = list(reversed(store.query(AuditQuery(limit=n, descending=True))))
    _emit(recs, as_json, f"last {len(recs)} audit records")
    last = recs[-1]["seq"] if recs else 0
    try:
        while follow:
            time.sleep(interval)
            new = store.query(AuditQuery(after_seq=last, limit=1000))
            if new:
                _emit(new, as_json, f"{len(new)} new")
                last = new[-1]["seq"]
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


FILTERS: dict[str, Any] = {
    "key": typer.Option(None, "--key", help="Key id."),
    "tenant": typer.Option(None, help="Tenant."),
    "model": typer.Option(None, help="Model chosen or asked for."),
    "zone": typer.Option(None, help="Zone the request went to."),
    "data_class": typer.Option(None, "--class", help="Data class (public, internal, confidential, restricted)."),
    "since": typer.Option(None, help="From (ISO 8601, epoch, or an age like 2h, 7d)."),
    "until": typer.Option(None, help="Until (same formats)."),
    "outcome": typer.Option(None, help="ok, error, an HTTP status (429) or an error code."),
}


@app.command("query")
def query(
    key: Optional[str] = FILTERS["key"], tenant: Optional[str] = FILTERS["tenant"],
    model: Optional[str] = FILTERS["model"], zone: Optional[str] = FILTERS["zone"],
    data_class: Optional[str] = FILTERS["data_class"], since: Optional[str] = FILTERS["since"],
    until: Optional[str] = FILTERS["until"], outcome: Optional[str] = FILTERS["outcome"],
    limit: int = typer.Option(100, help="At most this many records."),
    newest_first: bool = typer.Option(False, "--newest-first", help="Newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Records matching every given filter."""
    q = _query(key, tenant, model, zone, data_class, since, until, outcome, limit, newest_first)
    store = _store(config, store_url)
    recs = store.query(q)
    store.close()
    _emit(recs, as_json, f"{len(recs)} audit record(s)")


@app.command("export")
def export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (signed bodies with hashes) or csv."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (default: stdout)."),
    key: Optional[str] = FILTERS["key"], tenant: Optional[str] = FILTERS["tenant"],
    model: Optional[str] = FILTERS["model"], zone: Optional[str] = FILTERS["zone"],
    data_class: Optional[str] = FILTERS["data_class"], since: Optional[str] = FILTERS["since"],
    until: Optional[str] = FILTERS["until"], outcome: Optional[str] = FILTERS["outcome"],
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Export matching records (all by default) as JSONL or CSV."""
    from fedinf.audit.export import export_lines

    if fmt not in ("jsonl", "csv"):
        err_console.print("[red]error:[/red] --format must be jsonl or csv")
        raise typer.Exit(2)
    q = _query(key, tenant, model, zone, data_class, since, until, outcome, 1000)
    store = _store(config, store_url)
    n = 0
    fh = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        for line in export_lines(store, q, fmt):
            fh.write(line)
            n += 1
    finally:
        if out:
            fh.close()
        store.close()
    if out:
        err_console.print(f"wrote {n - (fmt == 'csv')} record(s) to {out}")


@app.command("verify")
def verify(
    anchor: list[str] = typer.Option([], "--anchor", help=(
        "SEQ:HASH recorded earlier (e.g. the head printed by a previous verify); repeatable. Catches a chain "
        "rebuilt from that point on even without an HMAC key.")),
    start: Optional[str] = typer.Option(None, "--from", help=(
        "SEQ:HASH of a record verified earlier (an anchor): check only from there on (fast on large trails).")),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    config: Optional[Path] = CONFIG_OPTION,
    store_url: Optional[str] = STORE_OPTION,
) -> None:
    """Check the hash chain: every edited, inserted or deleted record is reported with where. Exit 1 if any."""
    anchors = dict(_anchor(a, "--anchor") for a in anchor)
    begin = _anchor(start, "--from") if start else None
    store = _store(config, store_url)
    t0 = time.perf_counter()
    report = store.verify(anchors, begin)
    took = time.perf_counter() - t0
    store.close()
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif report.ok:
        console.print(f"[green]OK[/green]: {report.records} record(s), chain intact up to seq {report.last_seq} "
                      f"({'HMAC' if report.keyed else 'SHA-256'}, {took:.2f} s)", highlight=False)
        console.print(f"anchor (keep it elsewhere; pass it to a later verify): {report.head_seq}:{report.head_hash}",
                      highlight=False, soft_wrap=True)
    else:
        console.print(f"[red]FAILED[/red]: {report.problems_total} problem(s) in {report.records} record(s)")
        table = Table()
        for col in ("seq", "kind", "what"):
            table.add_column(col)
        for p in report.problems[:200]:
            table.add_row(str(p.seq), p.kind, p.message)
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)


def _anchor(text: str, option: str) -> tuple[int, str]:
    seq, _, h = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(h) != 64:
        err_console.print(f"[red]error:[/red] {option} {text!r}: expected SEQ:HASH (64 hex characters)")
        raise typer.Exit(2)
    return int(seq), h.lower()
