"""``fedinf serve``: run the gateway's HTTP server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from fedinf.cli.common import CONFIG_OPTION, err_console, fail, load
from fedinf.errors import FedinfError

if TYPE_CHECKING:
    from fedinf.gateway import Gateway


async def _on_startup(gateway: "Gateway") -> None:
    """Load in-process models before the first request, then announce the bootstrap key."""
    for reps in gateway.pool.replicas.values():
        for rep in reps:
            load = getattr(rep.backend, "load", None)
            if load is not None:
                await load()
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
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"host": bind_host, "port": bind_port})})
    try:
        gateway = Gateway.from_config(cfg)
    except FedinfError as exc:
        fail(exc, 2)
    app = create_app(gateway, on_startup=_on_startup)
    err_console.print(f"fedinf serving {len(gateway.network.models)} model(s) on http://{bind_host}:{bind_port}/v1",
                      highlight=False)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s), workers=None if workers == 1 else workers)
