"""Shared CLI plumbing: loading the config with errors printed for humans, running coroutines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from rich.console import Console

from fedinf.config import Config, load_config
from fedinf.errors import FedinfError

console = Console()
err_console = Console(stderr=True)

CONFIG_OPTION: Any = typer.Option(
    None, "--config", "-c", envvar="FEDINF_CONFIG",
    help="Model network YAML file. Default: the embedded default (local SmolLM2 model, on-prem zone).")


def load(path: Optional[Path]) -> Config:
    try:
        return load_config(path)
    except FedinfError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def fail(exc: FedinfError, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error ({exc.code}):[/red] {exc.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def quiet_native_logs() -> None:
    os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
