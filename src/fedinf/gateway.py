"""The Gateway: every long-lived object of a running fedinf, built from the config in one place.

It is also the Python API::

    async with Gateway.from_config(load_config("fedinf.yaml")) as gw:
        completion = await gw.chat({"model": "auto", "messages": [...]})

The Gateway builds the parts (network, pool, executor, classifier, access control, auditor, metrics, tasks) and the
:class:`~fedinf.pipeline.Pipeline` that runs requests through them; it owns their start and close. Parts are
injectable (``Gateway.from_config(cfg, classifier=..., auditor=...)``), so tests and later issues replace one part
without touching the rest. No module-level state: two gateways in one process are independent.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fedinf.config import Config
from fedinf.network import Network
from fedinf.pipeline import Pipeline
from fedinf.protocol import ChatRequest
from fedinf.routing.executor import Executor
from fedinf.routing.pool import BackendPool
from fedinf.structured import SpecCache
from fedinf.tracing import Tracer, build_tracer

if TYPE_CHECKING:
    from fedinf.access import AccessControl, Principal
    from fedinf.audit import AuditSink
    from fedinf.metrics import Metrics
    from fedinf.privacy import Classifier, Pseudonymizer
    from fedinf.retrieval import Retrieval
    from fedinf.tasks import TaskRegistry
    from fedinf.ui.session import Sessions


class Part(enum.Enum):
    """The default of :meth:`Gateway.from_config`'s optional parts: build it from the config."""

    FROM_CONFIG = "from_config"


@dataclass
class Gateway:
    config: Config
    network: Network
    pool: BackendPool
    executor: Executor
    classifier: Classifier
    auditor: AuditSink
    metrics: Metrics
    pipeline: Pipeline
    tasks: TaskRegistry
    access: AccessControl | None = None
    operator: Principal | None = None  # the principal of in-process callers (CLI) when there is no access control
    retrieval: Retrieval | None = None  # collections and search, built on first use (retrieval_service)
    _ui_sessions: Sessions | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: Config, *, classifier: Classifier | None = None,
                    access: AccessControl | None | Literal[Part.FROM_CONFIG] = Part.FROM_CONFIG,
                    auditor: AuditSink | None | Literal[Part.FROM_CONFIG] = Part.FROM_CONFIG,
                    metrics: Metrics | None = None, tasks: TaskRegistry | None = None,
                    tracer: Tracer | None = None) -> Gateway:
        """Build every part from ``config``; a part passed in is used instead. ``access=None``: no API keys (open
        mode); ``auditor=None``: no audit trail."""
        from fedinf.access import AccessControl
        from fedinf.audit import NullAuditor, build_auditor

        if access is Part.FROM_CONFIG:
            access = AccessControl.from_config(config)
        if auditor is Part.FROM_CONFIG:
            auditor = build_auditor(config)
        return cls.assemble(config, access=access, classifier=classifier, auditor=auditor or NullAuditor(),
                            metrics=metrics, tasks=tasks, tracer=tracer)

    @classmethod
    def local(cls, config: Config, *, classifier: Classifier | None = None,
              auditor: AuditSink | None = None, metrics: Metrics | None = None,
              tasks: TaskRegistry | None = None, tracer: Tracer | None = None) -> Gateway:
        """A gateway for in-process use by the local operator (the CLI): no API keys, still classified, routed by
        policy and audited, as principal ``local-operator``."""
        from fedinf.access import Principal

        operator = Principal(key_id="local-operator", tenant="local", roles=frozenset({"admin"}))
        return cls.assemble(config, access=None, operator=operator, classifier=classifier, auditor=auditor,
                            metrics=metrics, tasks=tasks, tracer=tracer)

    @classmethod
    def assemble(cls, config: Config, *, access: AccessControl | None, operator: Principal | None = None,
                 classifier: Classifier | None = None, auditor: AuditSink | None = None,
                 metrics: Metrics | None = None, tasks: TaskRegistry | None = None,
                 tracer: Tracer | None = None) -> Gateway:
        """Build the parts not given, and the pipeline over them. ``access=None``: no API keys (``operator``)."""
        from fedinf.audit import Auditor, build_auditor
        from fedinf.metrics import Metrics
        from fedinf.privacy import Classifier
        from fedinf.tasks import TaskRegistry

        network = Network.build(config)
        pool = BackendPool.build(network)
        classifier = classifier or Classifier.from_config(config.governance)
        tracer = tracer or build_tracer(config.tracing)
        executor = Executor(pool, pseudonymizer_factory=_pseudonymizer_factory(config, classifier), tracer=tracer)
        auditor = auditor or build_auditor(config)
        metrics = metrics or Metrics()
        metrics.watch(pool)  # per-endpoint health, breaker and budget gauges, read at scrape time
        if isinstance(auditor, Auditor):  # journal writes leave the loop while other requests are being served
            auditor.busy = lambda: pool.inflight > 0
            metrics.watch_audit(auditor.stats)
        pipeline = Pipeline(config=config, network=network, executor=executor, classifier=classifier,
                            auditor=auditor, metrics=metrics, specs=SpecCache(), access=access, operator=operator,
                            tracer=tracer)
        gateway = cls(config=config, network=network, pool=pool, executor=executor, classifier=classifier,
                      auditor=auditor, metrics=metrics, pipeline=pipeline,
                      tasks=tasks or TaskRegistry.from_config(config), access=access, operator=operator)
        pipeline.retrieval = gateway.retrieval_service
        return gateway

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        await self.auditor.start()
        if self.access is not None:
            await self.access.start()  # the key invalidation subscriber (keys shared through Redis)
        await self.pool.start()

    async def aclose(self) -> None:
        await self.pool.aclose()  # stops accepting, waits for in-flight requests (server.shutdown_grace_s)
        if self.access is not None:
            await self.access.aclose()
        await self.auditor.aclose()
        if self.retrieval is not None:
            await self.retrieval.aclose()
        await asyncio.to_thread(self.pipeline.tracer.shutdown)  # flushes the spans still queued for export

    async def ensure_admin_key(self) -> str | None:
        """First start with API keys on and none in the store: create an admin key and return its secret (once)."""
        if self.access is None or not self.access.require_keys:
            return None
        return await self.access.ensure_admin_key()

    # ------------------------------------------------------------------ Python API

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller's Principal (None without access control and operator); AuthError if invalid."""
        return await self.pipeline.authenticate(authorization)

    def retrieval_service(self) -> Retrieval:
        """The :class:`fedinf.retrieval.Retrieval` of this gateway (collections, search), built from
        ``config.retrieval`` on first use and closed with the gateway."""
        if self.retrieval is None:
            from fedinf.retrieval import Retrieval

            self.retrieval = Retrieval.from_config(self.config, classifier=self.classifier, gateway=self)
        return self.retrieval

    def ui_sessions(self) -> Sessions | None:
        """The admin UI's login sessions (one issuer per gateway, made on first use); None when ``ui.enabled``
        is false (then only API keys authenticate)."""
        if self._ui_sessions is None and self.config.ui.enabled:
            from fedinf.ui.session import Sessions

            self._ui_sessions = Sessions.from_config(self.config)
        return self._ui_sessions

    async def chat(self, body: dict[str, Any] | ChatRequest, *, authorization: str | None = None) -> dict[str, Any]:
        """Run a non-streaming chat completion; return the completion dict or raise the FedinfError."""
        if isinstance(body, dict) and body.get("stream"):
            body = {**body, "stream": False}
        reply = await self.pipeline.chat(body, authorization=authorization)
        if reply.error is not None:
            raise reply.error
        assert reply.body is not None
        return reply.body

    async def ready(self) -> dict[str, dict[str, bool]]:
        return await asyncio.wait_for(self.pool.health(), timeout=10.0)


def _pseudonymizer_factory(config: Config, classifier: Classifier) -> Any:
    if not any(z.pseudonymized_clearance is not None for z in config.zones.values()):
        return None
    from fedinf.privacy import Pseudonymizer

    def make() -> Pseudonymizer:
        return Pseudonymizer(classifier)

    return make


__all__ = ["Gateway"]
