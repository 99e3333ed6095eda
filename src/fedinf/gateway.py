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
from fedinf.forwarding import FieldWarnings
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
    access: Any = None
    auditor: Any = None
    metrics: Any = None
    operator: Any = None  # the principal of in-process callers (CLI) when there is no access control
    retrieval: Any = None  # fedinf.retrieval.Retrieval, built on first use (retrieval_service)
    extras: dict[str, Any] = field(default_factory=dict)
    field_warnings: FieldWarnings = field(default_factory=FieldWarnings, repr=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def local(cls, config: Config, **overrides: Any) -> "Gateway":
        """A gateway for in-process use by the local operator (the CLI): no API keys, still classified, routed by
        policy and audited, as principal ``local-operator``."""
        from fedinf.access import Principal

        overrides.setdefault("operator", Principal(key_id="local-operator", tenant="local",
                                                   roles=frozenset({"admin"})))
        return cls.from_config(config, access=None, **overrides)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> "Gateway":
        network = Network.build(config)
        pool = BackendPool.build(network)
        classifier = overrides.pop("classifier", None) or _default_classifier(config)
        pseudo = _pseudonymizer_factory(config, classifier)
        executor = Executor(pool, pseudonymizer_factory=pseudo)
        if "access" not in overrides:
            from fedinf.access import AccessControl
            overrides["access"] = AccessControl.from_config(config)
        if "auditor" not in overrides:
            from fedinf.audit import build_auditor
            overrides["auditor"] = build_auditor(config)
        gw = cls(config=config, network=network, pool=pool, executor=executor, classifier=classifier, **overrides)
        if gw.metrics is None:
            from fedinf.metrics import Metrics
            gw.metrics = Metrics()
        watch = getattr(gw.metrics, "watch", None)
        if watch is not None:
            watch(pool)  # per-endpoint health, breaker and budget gauges, read at scrape time
        return gw

    async def __aenter__(self) -> "Gateway":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def start(self) -> None:
        for part in (self.auditor, self.access, self.pool):
            start = getattr(part, "start", None)
            if start is not None:
                await start()

    async def aclose(self) -> None:
        await self.pool.aclose()  # stops accepting, waits for in-flight requests (server.shutdown_grace_s)
        for part in (self.access, self.auditor, self.retrieval):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()

    # ------------------------------------------------------------------ pipeline steps (called by fedinf.pipeline)

    async def authenticate(self, authorization: str | None) -> Any:
        """The caller's Principal from the ``Authorization`` header value (AuthError if missing or invalid)."""
        if self.access is None:
            return self.operator
        return await self.access.authenticate(authorization)

    async def admit(self, principal: Any, request: ChatRequest) -> None:
        """Role, route scope, rate limits and budgets, before any work is done for the request."""
        if self.access is None or principal is None:
            return
        principal.check_infer()
        if request.fedinf.route or request.model in self.config.routes:
            principal.check_route(request.fedinf.route or request.model)
        estimate = sum(len(t) for t in request.texts()) // 4 + (request.output_limit or 256)
        await self.access.admit(principal, est_tokens=estimate)

    async def settle(self, principal: Any, usage: dict[str, int]) -> None:
        if self.access is not None and principal is not None and usage:
            await self.access.settle(principal, tokens=int(usage.get("total_tokens") or 0))

    def classify(self, request: ChatRequest, principal: Any) -> Any:
        from fedinf.privacy import apply_declared

        dropped = request.unknown_fields()
        if dropped:  # not forwarded, so not classified: said once per field name
            self.field_warnings.warn(dropped)
        detected = self.classifier.classify(request.texts())
        may_lower = self.config.governance.allow_lowering or bool(getattr(principal, "may_lower_class", False))
        return apply_declared(detected, request.fedinf.data_class, may_lower=may_lower)

    async def retrieve(self, request: ChatRequest, classification: Any, principal: Any) -> tuple[ChatRequest, Any, Any]:
        """The retrieval step: sources from ``request.fedinf.collections`` added to the request, the class raised to
        what was retrieved (see :mod:`fedinf.retrieval.chat`). A request naming no collection is returned as is."""
        if not request.fedinf.collections:
            return request, classification, None
        from fedinf.retrieval.chat import retrieve_for_chat

        return await retrieve_for_chat(self.retrieval_service(), self.classifier, request, classification, principal,
                                       max_chars=self.config.retrieval.max_context_chars)

    def loggable_content(self, principal: Any, request: ChatRequest) -> dict[str, Any] | None:
        """Pseudonymized request text for tenants that turned content logging on; otherwise None."""
        if not getattr(principal, "log_content", False):
            return None
        from fedinf.privacy import Pseudonymizer

        return {"messages": Pseudonymizer(self.classifier).pseudonymize(request.texts()), "pseudonymized": True}

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
        """Write the request's audit record; returns once it is durable (raises ServiceUnavailable if it cannot be)."""
        if self.metrics is not None:
            self.metrics.observe(trace)
        if self.auditor is None:
            return
        from fedinf.audit.from_trace import record_from_trace

        content = trace.content if getattr(trace.principal, "log_content", False) else None
        await self.auditor.write(record_from_trace(trace, content=content))

    # ------------------------------------------------------------------ Python API

    def retrieval_service(self) -> Any:
        """The :class:`fedinf.retrieval.Retrieval` of this gateway (collections, search), built from
        ``config.retrieval`` on first use and closed with the gateway."""
        if self.retrieval is None:
            from fedinf.retrieval import Retrieval

            self.retrieval = Retrieval.from_config(self.config, classifier=self.classifier, gateway=self)
        return self.retrieval

    async def chat(self, body: dict[str, Any] | ChatRequest, *, authorization: str | None = None) -> dict[str, Any]:
        """Run a non-streaming chat completion; return the completion dict or raise the FedinfError."""
        from fedinf.pipeline import run_chat

        if isinstance(body, dict) and body.get("stream"):
            body = {**body, "stream": False}
        reply = await run_chat(self, body, authorization=authorization)
        if reply.error is not None:
            raise reply.error
        assert reply.body is not None
        return reply.body

    async def ready(self) -> dict[str, dict[str, bool]]:
        return await asyncio.wait_for(self.pool.health(), timeout=10.0)


def _default_classifier(config: Config) -> Any:
    from fedinf.privacy import Classifier

    return Classifier.from_config(config.governance)


def _pseudonymizer_factory(config: Config, classifier: Any) -> Any:
    if not any(z.pseudonymized_clearance is not None for z in config.zones.values()):
        return None
    from fedinf.privacy import Pseudonymizer

    return lambda: Pseudonymizer(classifier)


__all__ = ["Gateway", "DataClass"]
