"""The Gateway: every long-lived object of a running fedinf, built from the config in one place.

It is also the Python API::

    async with Gateway.from_config(load_config("fedinf.yaml")) as gw:
        completion = await gw.chat({"model": "auto", "messages": [...]})

Components are injected (classifier, authenticator, auditor, limiter), so tests and later issues replace one part
without touching the rest. No module-level state: two gateways in one process are independent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fedinf.config import Config
from fedinf.data_class import DataClass
from fedinf.errors import AuthError, FedinfError
from fedinf.network import Network
from fedinf.protocol import ChatRequest
from fedinf.routing.decide import Decision
from fedinf.routing.executor import Executor
from fedinf.routing.pool import BackendPool

log = logging.getLogger("fedinf.gateway")


@dataclass
class Gateway:
    config: Config
    network: Network
    pool: BackendPool
    executor: Executor
    classifier: Any = None
    authenticator: Any = None
    auditor: Any = None
    limiter: Any = None
    metrics: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> "Gateway":
        network = Network.build(config)
        pool = BackendPool.build(network)
        classifier = overrides.pop("classifier", None) or _default_classifier(config)
        pseudo = _pseudonymizer_factory(config)
        executor = Executor(pool, pseudonymizer_factory=pseudo)
        gw = cls(config=config, network=network, pool=pool, executor=executor, classifier=classifier, **overrides)
        if gw.metrics is None:
            from fedinf.metrics import Metrics
            gw.metrics = Metrics()
        return gw

    async def __aenter__(self) -> "Gateway":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def start(self) -> None:
        for part in (self.auditor, self.authenticator, self.limiter):
            start = getattr(part, "start", None)
            if start is not None:
                await start()

    async def aclose(self) -> None:
        await self.pool.aclose()
        for part in (self.limiter, self.authenticator, self.auditor):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()

    # ------------------------------------------------------------------ pipeline steps (called by fedinf.pipeline)

    async def authenticate(self, credential: str | None) -> Any:
        if self.authenticator is None:
            return None  # open mode: only allowed on loopback (enforced by `fedinf serve`)
        if not credential:
            raise AuthError("missing API key: send `Authorization: Bearer <key>`", code="missing_api_key")
        return await self.authenticator.authenticate(credential)

    def admit(self, principal: Any, request: ChatRequest) -> None:
        if self.limiter is not None and principal is not None:
            self.limiter.admit(principal, request)

    def classify(self, request: ChatRequest, principal: Any) -> Any:
        from fedinf.privacy import apply_declared

        detected = self.classifier.classify(request.texts())
        may_lower = self.config.governance.allow_lowering or bool(getattr(principal, "may_lower_class", False))
        return apply_declared(detected, request.fedinf.data_class, may_lower=may_lower)

    def output_spec(self, request: ChatRequest) -> Any:
        rf = request.response_format
        wants = (rf is not None and rf.get("type") in ("json_schema", "json_object")) or request.fedinf.regex \
            or request.fedinf.grammar
        if not wants:
            return None
        from fedinf.structured import OutputSpec

        return OutputSpec.from_request(rf, request.fedinf.regex, request.fedinf.grammar)

    def timeout_for(self, request: ChatRequest, decision: Decision) -> float:
        if request.fedinf.timeout_s:
            return request.fedinf.timeout_s
        specs = [self.network.models[t.model_id].spec for t in decision.targets]
        return max([s.timeouts.total_s for s in specs] or [self.config.server.request_timeout_s])

    def latency_snapshot(self) -> dict[str, float]:
        return self.metrics.latency_snapshot() if self.metrics is not None else {}

    async def audit(self, trace: Any) -> None:
        if self.metrics is not None:
            self.metrics.observe(trace)
        if self.auditor is not None:
            await self.auditor.record(trace)

    # ------------------------------------------------------------------ Python API

    async def chat(self, body: dict[str, Any] | ChatRequest, *, credential: str | None = None) -> dict[str, Any]:
        """Run a non-streaming chat completion; return the completion dict or raise the FedinfError."""
        from fedinf.pipeline import run_chat

        if isinstance(body, dict) and body.get("stream"):
            body = {**body, "stream": False}
        reply = await run_chat(self, body, credential=credential)
        if reply.error is not None:
            raise reply.error
        assert reply.body is not None
        return reply.body

    async def ready(self) -> dict[str, dict[str, bool]]:
        return await asyncio.wait_for(self.pool.health(), timeout=10.0)


def _default_classifier(config: Config) -> Any:
    from fedinf.privacy import Classifier

    return Classifier.from_config(config.governance)


def _pseudonymizer_factory(config: Config) -> Any:
    if not any(z.pseudonymized_clearance is not None for z in config.zones.values()):
        return None
    from fedinf.privacy import Pseudonymizer

    return Pseudonymizer


__all__ = ["Gateway", "DataClass"]
