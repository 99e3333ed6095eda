"""ASGI app factory: builds the Starlette app around a Gateway. Routes are thin; logic lives in the pipeline."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from fedinf.gateway import Gateway
from fedinf.server import chat, health
from fedinf.server.errors import HANDLERS

log = logging.getLogger("fedinf.server")


def create_app(gateway: Gateway, *, extra_routes: list[BaseRoute] | None = None,
               on_startup: Any = None) -> Starlette:
    """Create the ASGI app. The gateway is started and closed with the app's lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        if on_startup is not None:
            await on_startup(gateway)
        try:
            yield
        finally:
            await gateway.aclose()

    routes: list[BaseRoute] = [*chat.routes(gateway), *health.routes(gateway)]
    for name, module in (("/admin", "fedinf.server.admin"), ("", "fedinf.server.tasks"), ("/ui", "fedinf.ui.routes"),
                         ("", "fedinf.server.claims"), ("", "fedinf.server.embeddings"),
                         ("", "fedinf.server.collections")):
        mounted = _optional_routes(module, gateway)
        if mounted:
            routes += [Mount(name, routes=mounted)] if name else mounted
    routes += extra_routes or []
    app = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.gateway = gateway
    return app


def _optional_routes(module_name: str, gateway: Gateway) -> list[BaseRoute]:
    """Endpoint families added by later subsystems (admin, tasks) plug in through ``routes(gateway)``."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return []
        raise
    return list(module.routes(gateway))


def create_app_from_env() -> Starlette:
    """App factory for multi-worker serving (``uvicorn --factory``): each worker process builds its own Gateway
    from ``FEDINF_CONFIG`` (empty: the embedded default) with the host/port `fedinf serve` resolved."""
    import os

    from fedinf.cli.serve import on_startup, resolve_config

    cfg = resolve_config(os.environ.get("FEDINF_CONFIG") or None, os.environ.get("FEDINF_SERVE_HOST"),
                         int(os.environ["FEDINF_SERVE_PORT"]) if os.environ.get("FEDINF_SERVE_PORT") else None)
    return create_app(Gateway.from_config(cfg), on_startup=on_startup)
