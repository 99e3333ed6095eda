"""``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.access import Principal
from fedinf.gateway import Gateway
from fedinf.server.body import read_json
from fedinf.server.errors import error_response, json_response
from fedinf.server.sse import sse_response


def routes(gw: Gateway) -> list[Route]:
    limit = gw.config.server.max_body_bytes
    pipeline = gw.pipeline

    async def chat_completions(request: Request) -> Response:
        body = await read_json(request, limit)
        traceparent = request.headers.get("traceparent")  # the caller's W3C trace context, continued by our spans
        carrier = {"traceparent": traceparent, "tracestate": request.headers.get("tracestate", "")} \
            if traceparent else None
        reply = await pipeline.chat(body, authorization=request.headers.get("authorization"), carrier=carrier)
        if reply.error is not None:
            return error_response(reply.error, reply.headers)
        if reply.stream is not None:
            return sse_response(reply.stream, reply.headers)
        return json_response(reply.body, reply.status, reply.headers)

    async def models(request: Request) -> Response:
        principal = await gw.authenticate(request.headers.get("authorization"))
        return json_response({"object": "list", "data": model_list(gw, principal)})

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
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
