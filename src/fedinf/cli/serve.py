"""``fedinf serve``: run the gateway's HTTP server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, err_console, fail, load
from fedinf.errors import FedinfError

if TYPE_CHECKING:
    from fedinf.config import Config
    from fedinf.gateway import Gateway


def resolve_config(path: Optional[Path | str], host: Optional[str], port: Optional[int]) -> "Config":
    """The config to serve: the file (or the embedded default) with command-line host/port applied."""
    cfg = load(Path(path) if path else None)
    server = cfg.server.model_copy(update={"host": host or cfg.server.host,
                                           "port": cfg.server.port if port is None else port})
    return cfg.model_copy(update={"server": server})


async def on_startup(gateway: "Gateway") -> None:
    """Load in-process models before the first request, then announce the bootstrap key."""
    for reps in gateway.pool.replicas.values():
        for rep in reps:
            load_model = getattr(rep.backend, "load", None)
            if load_model is not None:
                await load_model()
    await _announce_bootstrap_key(gateway)


async def _announce_bootstrap_key(gateway: "Gateway") -> None:
    """First start with no keys: create an admin key and print it once."""
    if gateway.access is None or not gateway.access.require_keys:
        return
    secret = await gateway.access.ensure_admin_key()
    if secret:
        err_console.print(
            "\n[bold]First start: created an admin API key. It is shown only once; store it now:[/bold]\n\n"
            f"    {secret}\n\n"
            "Send it as `Authorization: Bearer <key>`. Create keys for users with "
            "`fedinf keys create --tenant NAME` (see `fedinf keys --help`).\n", highlight=False, soft_wrap=True)


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
    from fedinf.server import create_app

    cfg = resolve_config(config, host, port)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        gateway = Gateway.from_config(cfg)  # also validates everything before any worker starts
    except FedinfError as exc:
        fail(exc, 2)
    err_console.print(f"fedinf serving {len(gateway.network.models)} model(s) on "
                      f"http://{cfg.server.host}:{cfg.server.port}/v1", highlight=False)
    common = dict(host=cfg.server.host, port=cfg.server.port, log_level=log_level, access_log=False,
                  timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s))
    if workers == 1:
        uvicorn.run(create_app(gateway, on_startup=on_startup), **common)
        return
    os.environ.update(FEDINF_CONFIG=str(config or ""), FEDINF_SERVE_HOST=cfg.server.host,
                      FEDINF_SERVE_PORT=str(cfg.server.port))
    uvicorn.run("fedinf.server.app:create_app_from_env", factory=True, workers=workers, **common)
