"""``/healthz`` (process alive), ``/readyz`` (backends healthy) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.gateway import Gateway
from fedinf.server.errors import json_response


def routes(gw: Gateway) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        health = await gw.ready()
        gw.metrics.set_health(health)
        ready = {m: any(reps.values()) for m, reps in health.items()}
        ok = bool(ready) and any(ready.values())
        return json_response({"status": "ready" if ok else "unavailable", "models": health,
                              "replicas": gw.pool.status()}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(gw.metrics.render(), media_type=gw.metrics.content_type)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
