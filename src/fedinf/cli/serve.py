"""``fedinf serve``: run the gateway's HTTP server."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, err_console, load


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    config: Optional[Path] = CONFIG_OPTION,
    host: Optional[str] = typer.Option(None, help="Address to bind (default: server.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port to bind (default: server.port, 8080; 0 picks a free one)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads its own local models)."),
    log_level: str = typer.Option("warning", help="Log level: debug, info, warning, error."),
) -> None:
    """Start the OpenAI-compatible gateway (POST /v1/chat/completions, GET /v1/models, /healthz, /readyz)."""
    import uvicorn

    from fedinf.gateway import Gateway
    from fedinf.server import create_app

    cfg = load(config)
    bind_host = host or cfg.server.host
    bind_port = cfg.server.port if port is None else port
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = Gateway.from_config(cfg)
    if gateway.authenticator is None and not _is_loopback(bind_host):
        err_console.print(f"[red]refusing to serve without API keys on non-loopback address {bind_host}[/red]; "
                          "configure access control or bind 127.0.0.1")
        raise typer.Exit(2)
    app = create_app(gateway)
    err_console.print(f"fedinf serving {len(gateway.network.models)} model(s) on http://{bind_host}:{bind_port}/v1",
                      highlight=False)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s), workers=None if workers == 1 else workers)
