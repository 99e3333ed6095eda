"""``fedinf init``: write a commented example config that documents every key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from fedinf.cli.common import console, err_console


def example_text() -> str:
    return resources.files("fedinf").joinpath("example_config.yaml").read_text(encoding="utf-8")


def init(
    path: Path = typer.Argument(Path("fedinf.yaml"), help="Where to write the example config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example config (every key documented) to PATH."""
    if path.exists() and not force:
        err_console.print(f"[red]{path} exists[/red]; use --force to overwrite")
        raise typer.Exit(1)
    path.write_text(example_text(), encoding="utf-8")
    console.print(f"wrote {path}; check it with: fedinf config check {path}")
