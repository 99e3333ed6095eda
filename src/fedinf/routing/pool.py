"""The backend pool: one backend instance per endpoint (replica) of every servable model, and its live state.

The pool owns backend lifecycles (creation, background health checks and breaker sync, graceful close) and answers
"which replicas of model M, in what order should they be tried": :meth:`BackendPool.order` leaves out replicas that
are ejected (outlier detection), failing their active health checks or behind an open circuit breaker, and orders
the rest with the load balancer (:mod:`fedinf.routing.balancer`). When every replica of a model is out only because
of health checks or ejection, all replicas whose breaker allows a call are returned (Envoy's "panic" mode: better a
possibly-failing call than a certain refusal); replicas behind an open breaker are never returned.

State changes come from the executor through :meth:`BackendPool.started` / :meth:`BackendPool.finished`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedinf.backends import Backend, create_backend
from fedinf.config import Endpoint, Reliability
from fedinf.network import Network
from fedinf.routing import balancer
from fedinf.routing.breaker import CircuitBreaker
from fedinf.routing.health import HealthMonitor, OutlierState, ProbeState, may_eject
from fedinf.routing.hedge import LatencyWindow
from fedinf.routing.retry import RetryBudget
from fedinf.routing.sync import RedisStateSync

log = logging.getLogger("fedinf.pool")


@dataclass
class Replica:
    model_id: str
    name: str
    endpoint: Endpoint | None
    backend: Backend
    weight: float = 1.0
    stats: balancer.ReplicaStats = field(default_factory=balancer.ReplicaStats)
    outlier: OutlierState = field(default_factory=OutlierState)
    probe: ProbeState = field(default_factory=ProbeState)
    breaker: CircuitBreaker | None = None

    @property
    def key(self) -> str:
        """Stable identity across gateway processes (breaker sharing): model, name and a digest of the URL."""
        url = self.endpoint.url if self.endpoint is not None and self.endpoint.url else ""
        return f"{self.model_id}|{self.name}|{hashlib.sha256(url.encode()).hexdigest()[:12]}"

    @property
    def healthy(self) -> bool:
        """Passed its active health checks (or was never probed)."""
        return self.probe.healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        self.probe.healthy = value

    def usable(self, now: float) -> bool:
        return self.probe.healthy and not self.outlier.ejected(now) and self.breaker_allows()

    def breaker_allows(self) -> bool:
        return self.breaker is None or self.breaker.available()

    def status(self, now: float) -> dict[str, Any]:
        """What ``/readyz`` and ``fedinf models`` show for this replica."""
        s = self.stats
        return {
            "healthy": self.probe.healthy, "ejected": self.outlier.ejected(now),
            "ejected_for_s": round(max(0.0, self.outlier.ejected_until - now), 3),
            "ejections": self.outlier.ejections,
            "breaker": self.breaker.view() if self.breaker is not None else "closed",
            "outstanding": s.outstanding, "ewma_ms": None if s.ewma_ms is None else round(s.ewma_ms, 2),
            "success_rate": round(s.success, 3), "calls": s.calls, "failures": s.failures,
            "last_probe_error": self.probe.last_error,
        }


@dataclass
class BackendPool:
    network: Network
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    policy: Reliability = field(default_factory=Reliability)
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    budget: RetryBudget = field(default_factory=RetryBudget)
    latency: dict[str, LatencyWindow] = field(default_factory=dict)
    closing: bool = False
    inflight: int = 0
    _idle: asyncio.Event | None = field(default=None, repr=False)
    _monitor: HealthMonitor | None = field(default=None, repr=False)
    _sync: RedisStateSync | None = field(default=None, repr=False)
    listeners: list[Callable[[str, Replica], None]] = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, network: Network) -> "BackendPool":
        policy = network.config.reliability
        pool = cls(network=network, policy=policy, budget=RetryBudget.from_policy(policy.retries))
        for mid, entry in network.models.items():
            if not entry.license.allowed:
                continue  # never instantiate what may never be served
            endpoints: list[Endpoint | None] = list(entry.spec.endpoints) or [None]
            reps = []
            for i, ep in enumerate(endpoints):
                # the name shows in headers, /readyz and metrics: never the URL (internal addresses stay inside)
                name = ep.name if ep and ep.name else f"{mid}#{i}"
                rep = Replica(mid, name, ep, create_backend(entry.spec, ep), ep.weight if ep else 1.0)
                rep.breaker = CircuitBreaker(rep.key, policy.breaker)
                reps.append(rep)
            pool.replicas[mid] = reps
            pool.latency[mid] = LatencyWindow()
        return pool

    # ------------------------------------------------------------------ choosing

    def order(self, model_id: str) -> list[Replica]:
        """Replicas of ``model_id`` to try, best first (see the module docstring)."""
        reps = self.replicas.get(model_id, [])
        now = self.clock()
        usable = [r for r in reps if r.usable(now)]
        if not usable:
            usable = [r for r in reps if r.breaker_allows()]  # panic: health/ejection ignored, breakers never
        return balancer.order(usable, now, self.rng)  # type: ignore[return-value]

    def refused(self, model_id: str) -> list[Replica]:
        """Replicas of ``model_id`` whose circuit breaker refuses calls now."""
        return [r for r in self.replicas.get(model_id, []) if not r.breaker_allows()]

    def hedge_delay_s(self, model_id: str, setting: float | str | None) -> float | None:
        """Seconds to wait before hedging a request whose first target is ``model_id``; None = do not hedge."""
        if setting is None:
            return None
        if setting == "p95":
            window = self.latency.get(model_id)
            if window is None or len(window) < self.policy.hedge_min_samples:
                return None
            p95 = window.quantile(0.95)
            return None if p95 is None else p95 / 1000.0
        return float(setting) / 1000.0

    # ------------------------------------------------------------------ outcomes (called by the executor)

    def started(self, rep: Replica) -> None:
        rep.stats.started()

    def finished(self, rep: Replica, ok: bool, latency_ms: float, *, permit: str | None, counts: bool = True,
                 keep_outstanding: bool = False) -> None:
        """Record one attempt's end. ``counts=False`` for attempts that say nothing about the endpoint (cancelled
        hedges); ``ok`` is about the endpoint, not about output validation. ``keep_outstanding``: a stream goes
        on after its first chunk; :meth:`stream_ended` ends it."""
        now = self.clock()
        rep.stats.finished(ok, latency_ms, now, count_latency=counts)
        if keep_outstanding:
            rep.stats.outstanding += 1
        if not counts:
            if rep.breaker is not None:
                rep.breaker.release(permit)
            return
        if rep.breaker is not None:
            rep.breaker.record(permit, ok)
        if ok:
            self.latency[rep.model_id].add(latency_ms)
        self._outlier(rep, ok, now)

    def stream_ended(self, rep: Replica, ok: bool) -> None:
        """A stream that had started ended: cleanly, or broken after its first byte (an endpoint failure)."""
        rep.stats.outstanding = max(0, rep.stats.outstanding - 1)
        if not ok:
            now = self.clock()
            rep.stats.success += balancer.SUCCESS_ALPHA * (0.0 - rep.stats.success)
            rep.stats.failures += 1
            if rep.breaker is not None:
                rep.breaker.record("call", False)
            self._outlier(rep, False, now)

    def _outlier(self, rep: Replica, ok: bool, now: float) -> None:
        siblings = self.replicas.get(rep.model_id, [])
        ejected = rep.outlier.record(
            ok, now, self.policy.outlier,
            lambda: may_eject([r.outlier for r in siblings], now, self.policy.outlier.max_ejected_share))
        if ejected:
            log.warning("replica %s of %s ejected for %.1fs after %d failures in a row", rep.name, rep.model_id,
                        rep.outlier.ejected_until - now, self.policy.outlier.consecutive_failures)
            for listener in self.listeners:
                listener("ejected", rep)

    # ------------------------------------------------------------------ requests in flight (graceful shutdown)

    def enter(self) -> None:
        self.inflight += 1
        self.budget.enter()
        if self._idle is not None:
            self._idle.clear()

    def leave(self) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.budget.leave()
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    # ------------------------------------------------------------------ health

    async def probe(self, rep: Replica) -> bool:
        try:
            ok = bool(await asyncio.wait_for(rep.backend.health(), timeout=self.policy.health_timeout_s))
            err = None if ok else "health check answered not ready"
        except Exception as exc:  # a probe failure is a health result, never a crash
            ok, err = False, f"{type(exc).__name__}"
            log.debug("health probe of %s failed: %r", rep.name, exc)
        rep.probe.record(ok, self.clock(), self.policy.unhealthy_after, err)
        return ok

    async def health(self) -> dict[str, dict[str, bool]]:
        """Probe every replica now; return ``{model: {replica: ready}}``: this probe passed, not ejected, breaker
        not open. (Routing itself waits for ``unhealthy_after`` failed probes before skipping a replica.)"""
        all_reps = [r for reps in self.replicas.values() for r in reps]
        await asyncio.gather(*(self.probe(r) for r in all_reps))
        now = self.clock()
        return {mid: {r.name: r.probe.last_ok and r.usable(now) for r in reps} for mid, reps in self.replicas.items()}

    def status(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Detailed state of every replica, without probing."""
        now = self.clock()
        return {mid: {r.name: r.status(now) for r in reps} for mid, reps in self.replicas.items()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background health checks and, with ``redis_url``, the breaker and ejection sync."""
        self._idle = asyncio.Event()
        if self.inflight == 0:
            self._idle.set()
        remote = [r for reps in self.replicas.values() for r in reps
                  if r.endpoint is not None and r.endpoint.url]  # in-process backends need no active checks
        if remote and self.policy.health_interval_s > 0 and self._monitor is None:
            async def probe_remote() -> None:
                await asyncio.gather(*(self.probe(r) for r in remote))
            self._monitor = HealthMonitor(probe_remote, self.policy.health_interval_s)
            self._monitor.start()
        if self.policy.redis_url and self._sync is None:
            self._sync = RedisStateSync(self.policy.redis_url, [r for reps in self.replicas.values() for r in reps],
                                        outlier=self.policy.outlier, siblings=lambda m: self.replicas.get(m, []),
                                        clock=self.clock, prefix=self.policy.redis_prefix)
            self._sync.start()

    async def warm_up(self) -> None:
        """Get every backend ready before the first request (in-process models load now, not on first use).
        Raises :class:`~fedinf.errors.BackendUnavailable` when one cannot."""
        for reps in self.replicas.values():
            for rep in reps:
                await rep.backend.load()

    async def drain(self, grace_s: float) -> bool:
        """Stop accepting (``closing``) and wait up to ``grace_s`` for requests in flight; True when none is left."""
        self.closing = True
        if self.inflight == 0:
            return True
        if self._idle is None:
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_s)
        except asyncio.TimeoutError:
            log.warning("%d request(s) still in flight after the %.1fs shutdown grace", self.inflight, grace_s)
            return False
        return True

    async def aclose(self, grace_s: float | None = None) -> None:
        """Drain (``server.shutdown_grace_s`` by default), stop the background tasks, close every backend."""
        grace = self.network.config.server.shutdown_grace_s if grace_s is None else grace_s
        await self.drain(grace)
        for task in (self._monitor, self._sync):
            if task is not None:
                await task.stop()
        self._monitor = self._sync = None
        for reps in self.replicas.values():
            for rep in reps:
                try:
                    await rep.backend.aclose()
                except Exception as exc:  # closing must not stop closing the others
                    log.warning("closing %s failed: %r", rep.name, exc)
