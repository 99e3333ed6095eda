"""``fedinf serve``: run the gateway's HTTP server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, err_console, fail, load
from fedinf.errors import FedinfError


def serve(
    config: Optional[Path] = CONFIG_OPTION,
    host: Optional[str] = typer.Option(None, help="Address to bind (default: server.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port to bind (default: server.port, 8080; 0 picks a free one)."),
    workers: int = typer.Option(1, min=1, help="Worker processes; each builds its own gateway and loads its own "
                                               "local models (use PostgreSQL/Redis stores to share state)."),
    log_level: str = typer.Option("warning", help="Log level: debug, info, warning, error."),
) -> None:
    """Start the OpenAI-compatible gateway (POST /v1/chat/completions, GET /v1/models, /healthz, /readyz)."""
    import uvicorn

    from fedinf.gateway import Gateway
    from fedinf.server.app import announce_admin_key, create_app

    cfg = load(config).with_address(host, port)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        gateway = Gateway.from_config(cfg)  # also validates everything before any worker starts
    except FedinfError as exc:
        fail(exc, 2)
    err_console.print(f"fedinf serving {len(gateway.network.models)} model(s) on "
                      f"http://{cfg.server.host}:{cfg.server.port}/v1", highlight=False)
    if workers > 1:
        os.environ.update(FEDINF_CONFIG=str(config or ""), FEDINF_SERVE_HOST=cfg.server.host,
                          FEDINF_SERVE_PORT=str(cfg.server.port))
    uvicorn.run(create_app(gateway, announce=announce_admin_key) if workers == 1 else "fedinf.server.app:create_app_from_env",
                factory=workers > 1, workers=workers, host=cfg.server.host, port=cfg.server.port,
                log_level=log_level, access_log=False, timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s),
                # nothing in fedinf reads the client address (the UI reads X-Forwarded-Proto itself), so uvicorn's
                # proxy-headers middleware would only be a layer per request; no `server: uvicorn` header either
                proxy_headers=False, server_header=False)
