"""``POST /v1/chat/completions`` and ``GET /v1/models``.

The chat endpoint is the gateway's hot path, so it is a raw ASGI endpoint (:class:`ChatEndpoint`) that the app
(:class:`fedinf.server.app.GatewayApp`) calls before Starlette's router: no Request/Response objects, no routing or
exception middleware per request (~35 µs of CPU per request on a 2-core machine, ``bench/gateway_overhead/NOTES.md``).
Its errors still become HTTP only through :mod:`fedinf.server.errors`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fedinf.access import Principal
from fedinf.errors import FedinfError
from fedinf.gateway import Gateway
from fedinf.server.body import Disconnected, receive_json
from fedinf.server.errors import error_response, internal_error, json_response, send_json
from fedinf.server.sse import sse_response

PATH = "/v1/chat/completions"
_WANTED = {b"authorization": "authorization", b"content-length": "content-length", b"traceparent": "traceparent",
           b"tracestate": "tracestate"}


class ChatEndpoint:
    """``POST /v1/chat/completions`` as a raw ASGI app: read the body, run the pipeline, send its reply."""

    def __init__(self, gw: Gateway) -> None:
        self.pipeline = gw.pipeline
        self.limit = gw.config.server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = {}
        for name, value in scope["headers"]:
            key = _WANTED.get(name.lower())
            if key is not None:
                wanted[key] = value.decode("latin-1")
        try:
            body = await receive_json(receive, wanted.get("content-length"), self.limit)
            traceparent = wanted.get("traceparent")  # the caller's W3C trace context, continued by our spans
            carrier = {"traceparent": traceparent, "tracestate": wanted.get("tracestate", "")} if traceparent else None
            reply = await self.pipeline.chat(body, authorization=wanted.get("authorization"), carrier=carrier)
            if reply.error is None and reply.stream is None:
                return await send_json(send, reply.body, reply.status, reply.headers)
            response = error_response(reply.error, reply.headers) if reply.error is not None \
                else sse_response(reply.stream, reply.headers)  # type: ignore[arg-type]
        except Disconnected:
            return
        except FedinfError as exc:
            response = error_response(exc)
        except Exception:  # a bug: logged with a reference, answered as a 500 in OpenAI's shape
            response = error_response(internal_error("POST", PATH))
        await response(scope, receive, send)


def routes(gw: Gateway, chat: ChatEndpoint | None = None) -> list[Route]:
    """The routes; ``chat`` is the app's :class:`ChatEndpoint` (the router reaches it only for other methods than
    POST, which get 405, or when the app's fast lane is bypassed)."""

    async def models(request: Request) -> Response:
        principal = await gw.authenticate(request.headers.get("authorization"))
        return json_response({"object": "list", "data": model_list(gw, principal)})

    return [
        Route(PATH, chat or ChatEndpoint(gw), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]


def model_list(gw: Gateway, principal: Principal | None = None) -> list[dict[str, Any]]:
    created = int(time.time())
    out = []
    for mid, entry in gw.network.models.items():
        if not entry.license.allowed:
            continue
        if principal is not None and principal.may_use_model(mid, entry.zone_name):
            continue
        out.append({
            "id": mid, "object": "model", "created": created, "owned_by": "fedinf",
            "fedinf": {"zone": entry.zone_name, "zone_kind": entry.zone.kind,
                       "clearance": entry.zone.clearance.label, "license": entry.spec.license,
                       "license_status": entry.license.status, "backend": entry.spec.backend,
                       "context_window": entry.spec.context_window,
                       "capabilities": entry.capabilities.names()},
        })
    for name, route in gw.config.routes.items():
        out.append({"id": name, "object": "model", "created": created, "owned_by": "fedinf",
                    "fedinf": {"route": route.models, "strategy": route.strategy}})
    return out
