"""ASGI app factory: builds the Starlette app around a Gateway. Routes are thin; logic lives in the pipeline.

The app's lifespan is the gateway's: on start-up the gateway starts (auditor, health checks), every backend gets
ready (in-process models load before the first request, not during it) and, on a first start with API keys on and
an empty key store, an admin key is created and announced once (``fedinf serve``); on shutdown the gateway drains and closes.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.types import Receive, Scope, Send

from fedinf.config import load_config
from fedinf.gateway import Gateway
from fedinf.server import admin, advisories, chat, claims, collections, embeddings, health, tasks
from fedinf.ui import routes as ui
from fedinf.server.errors import HANDLERS

log = logging.getLogger("fedinf.server")


def announce_admin_key(secret: str) -> None:
    """Print the bootstrap admin key once, on the server's standard error."""
    sys.stderr.write(
        "\nFirst start: created an admin API key. It is shown only once; store it now:\n\n"
        f"    {secret}\n\n"
        "Send it as `Authorization: Bearer <key>`. Create keys for users with "
        "`fedinf keys create --tenant NAME` (see `fedinf keys --help`).\n\n")
    sys.stderr.flush()


class GatewayApp(Starlette):
    """The Starlette app with a fast lane: ``POST /v1/chat/completions`` goes straight to its raw ASGI endpoint
    (:class:`fedinf.server.chat.ChatEndpoint`); every other request takes Starlette's router and handlers."""

    def __init__(self, chat_endpoint: chat.ChatEndpoint, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.chat = chat_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == chat.PATH:
            scope["app"] = self
            await self.chat(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(gateway: Gateway, *, extra_routes: list[BaseRoute] | None = None,
               announce: Callable[[str], None] | None = None) -> Starlette:
    """Create the ASGI app. The gateway is started, warmed up and closed with the app's lifespan. With
    ``announce`` (``fedinf serve`` passes :func:`announce_admin_key`), a first start with API keys on and an empty
    key store creates an admin key and hands its secret to ``announce``, once."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            await gateway.pool.warm_up()
            if announce is not None and (secret := await gateway.ensure_admin_key()):
                announce(secret)
            # start-up objects (modules, configs, compiled detectors, models) live as long as the process: moved out
            # of the cyclic collector's generations, so its collections walk only per-request garbage (measured:
            # GC time per request ~25-34 -> ~9-18 µs, bench/gateway_overhead/NOTES.md "Session 3")
            gc.collect()
            gc.freeze()
            yield
        finally:
            gc.unfreeze()  # an embedding process (tests, the Python API) gets its collector back as it was
            await gateway.aclose()

    chat_endpoint = chat.ChatEndpoint(gateway)
    routes: list[BaseRoute] = [*chat.routes(gateway, chat_endpoint), *health.routes(gateway),
                               *tasks.routes(gateway)]
    ctx = admin.AdminContext.of(gateway)
    routes.append(Mount("/admin", routes=admin.routes(ctx)))
    ui_routes = ui.routes(ctx)
    if ui_routes:
        routes.append(Mount("/ui", routes=ui_routes))
    routes += [*claims.routes(gateway), *embeddings.routes(gateway), *collections.routes(gateway),
               *advisories.routes(gateway)]
    routes += extra_routes or []
    app = GatewayApp(chat_endpoint, routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.gateway = gateway
    return app


def create_app_from_env() -> Starlette:
    """App factory for multi-worker serving (``uvicorn --factory``): each worker process builds its own Gateway
    from ``FEDINF_CONFIG`` (empty: the embedded default) with the host/port `fedinf serve` resolved."""
    port = os.environ.get("FEDINF_SERVE_PORT")
    cfg = load_config(os.environ.get("FEDINF_CONFIG") or None).with_address(os.environ.get("FEDINF_SERVE_HOST"),
                                                                           int(port) if port else None)
    return create_app(Gateway.from_config(cfg), announce=announce_admin_key)
