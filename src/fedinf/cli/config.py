"""``fedinf config check FILE``: parse and validate a model network file."""

from __future__ import annotations

from pathlib import Path

import typer

from fedinf.cli.common import console, err_console
from fedinf.config import load_config
from fedinf.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Check model network files.")


@app.command("check")
def check(path: Path = typer.Argument(..., help="The YAML file to check.")) -> None:
    """Validate FILE strictly: every error names the file, line and key."""
    try:
        cfg = load_config(path)
        from fedinf.network import Network
        net = Network.build(cfg)
        from fedinf.backends import backend_class
        for spec in cfg.models:
            backend_class(spec.backend)
        from fedinf.tasks import TaskRegistry
        tasks = TaskRegistry.from_config(cfg, base_dir=path.parent)
    except ConfigError as exc:
        for line in exc.errors:
            err_console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    blocked = [m for m in net.models.values() if not m.license.allowed]
    console.print(f"{path}: OK - {len(cfg.zones)} zone(s), {len(cfg.models)} model(s), {len(cfg.routes)} route(s), "
                  f"{len(tasks.names())} task(s)")
    for m in blocked:
        console.print(f"[yellow]warning:[/yellow] model {m.id} will not be served: license {m.spec.license} "
                      f"is {m.license.status} ({m.license.reason})", highlight=False)


@app.command("reference")
def reference() -> None:
    """Print the config reference (Markdown) generated from the config models: docs/config.md is this output."""
    from fedinf.config_reference import render

    print(render(), end="")
