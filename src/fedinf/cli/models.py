"""``fedinf models``: the configured models with zone, license and health; ``fedinf models licenses``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fedinf.cli.common import CONFIG_OPTION, console, load

app = typer.Typer(help="List models, their zones, licenses and health.", invoke_without_command=True)


@app.callback()
def models(ctx: typer.Context, config: Optional[Path] = CONFIG_OPTION,
           probe: bool = typer.Option(True, help="Probe each replica's health (loads local models).")) -> None:
    """Table of models with zone, license and health."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config
        return
    from fedinf.network import Network

    cfg = load(config)
    net = Network.build(cfg)
    health = asyncio.run(_probe(cfg)) if probe else {}
    table = Table(title="fedinf models")
    for col in ("model", "backend", "zone", "clearance", "license", "license status", "replicas", "health"):
        table.add_column(col)
    for mid, entry in net.models.items():
        reps = health.get(mid, {})
        state = "-" if not probe else ("excluded" if not entry.license.allowed else _state(reps))
        table.add_row(mid, entry.spec.backend, f"{entry.zone_name} ({entry.zone.kind})", entry.zone.clearance.label,
                      entry.spec.license, entry.license.status, str(max(1, len(entry.spec.endpoints))), state)
    console.print(table)


async def _probe(cfg: object) -> dict[str, dict[str, dict]]:
    from fedinf.gateway import Gateway

    async with Gateway.local(cfg) as gw:  # type: ignore[arg-type]
        await gw.ready()
        return gw.pool.status()


def _state(reps: dict[str, dict]) -> str:
    """`2/3 healthy` plus what is wrong with the others (unhealthy, ejected, breaker open)."""
    good = sum(1 for r in reps.values() if r["healthy"] and not r["ejected"] and r["breaker"] != "open")
    notes = [f"{name}: " + ", ".join(
        w for w, bad in (("unhealthy", not r["healthy"]), ("ejected", r["ejected"]),
                         (f"breaker {r['breaker']}", r["breaker"] != "closed")) if bad)
        for name, r in reps.items() if not r["healthy"] or r["ejected"] or r["breaker"] != "closed"]
    return f"{good}/{len(reps)} healthy" + (f" ({'; '.join(notes)})" if notes else "")


@app.command("licenses")
def licenses(ctx: typer.Context, config: Optional[Path] = CONFIG_OPTION) -> None:
    """License report: each model's license, its commercial-use status and the condition."""
    from fedinf.network import Network

    cfg = load(config or ctx.obj)
    net = Network.build(cfg)
    table = Table(title=f"model licenses (declared use: {cfg.governance.use})")
    for col in ("model", "license", "status", "served", "why"):
        table.add_column(col)
    for mid, entry in net.models.items():
        table.add_row(mid, entry.spec.license, entry.license.status, "yes" if entry.license.allowed else "no",
                      entry.license.reason)
    console.print(table)
