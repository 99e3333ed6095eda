"""Prometheus metrics, one registry per Gateway (no global registry: two gateways never mix their numbers).

Per request (from the audit trace): requests and errors by code, end-to-end latency, tokens, attempts by kind and
outcome, retries, hedges, fallbacks. Per endpoint, read from the pool at scrape time (:meth:`Metrics.watch`):
health, ejection, breaker state, requests in flight, EWMA latency, and the retry budget. The audit writer's
records, commits, journal stalls and journal write time, read from it at scrape time (:meth:`Metrics.watch_audit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fedinf.audit.writer import AuditorStats
    from fedinf.pipeline import Trace
    from fedinf.routing.executor import Attempt
    from fedinf.routing.pool import BackendPool

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fedinf_requests", "Requests by endpoint, model and outcome code",
                                ["endpoint", "model", "code"], registry=r)
        self.errors = Counter("fedinf_errors", "Failed requests by endpoint, error code and HTTP status",
                              ["endpoint", "code", "status"], registry=r)
        self.latency = Histogram("fedinf_request_seconds", "End-to-end request latency", ["endpoint", "model"],
                                 buckets=_BUCKETS, registry=r)
        self.attempt_latency = Histogram("fedinf_attempt_seconds", "Latency of single backend attempts",
                                         ["model", "replica"], buckets=_BUCKETS, registry=r)
        self.tokens = Counter("fedinf_tokens", "Tokens by model and kind", ["model", "kind"], registry=r)
        self.attempts = Counter("fedinf_attempts", "Backend attempts by model, replica, kind and outcome",
                                ["model", "replica", "kind", "outcome"], registry=r)
        self.retries = Counter("fedinf_retries", "Retry attempts sent (after a retryable failure)", ["model"],
                               registry=r)
        self.hedges = Counter("fedinf_hedges", "Hedged requests by outcome (won: the hedge answered first)",
                              ["model", "outcome"], registry=r)
        self.fallbacks = Counter("fedinf_fallbacks", "Requests served by a target other than the first",
                                 ["model"], registry=r)
        self.escalations = Counter("fedinf_cascade_escalations", "Cascade escalations after a failed output check",
                                   ["model"], registry=r)
        self.data_class = Counter("fedinf_requests_by_class", "Requests by data class", ["data_class"], registry=r)
        self.replica_healthy = Gauge("fedinf_replica_probe_healthy", "1 if the replica passed its last health probe",
                                     ["model", "replica"], registry=r)
        self._ewma: dict[str, float] = {}
        self._pool: BackendPool | None = None
        self._latencies = _Latencies(self)
        # labelled children by (metric, label values): prometheus_client's labels() validates and locks each time
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _labels(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered (the same child prometheus_client keeps for those values)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def watch(self, pool: BackendPool) -> None:
        """Expose the live state of ``pool``'s endpoints (read at each scrape, nothing cached)."""
        self._pool = pool
        self.registry.register(_PoolCollector(pool))

    def watch_audit(self, stats: Callable[[], AuditorStats]) -> None:
        """Expose the audit writer's ``stats()`` (read at each scrape)."""
        self.registry.register(_AuditCollector(stats))

    def observe(self, trace: Trace) -> None:
        labels = self._labels
        model = trace.result.target.model_id if trace.result is not None else "-"
        code = trace.error_code or "ok"
        elapsed = time.monotonic() - trace.started
        labels(self.requests, trace.endpoint, model, code).inc()
        if trace.error_code:
            labels(self.errors, trace.endpoint, trace.error_code, str(trace.status)).inc()
        labels(self.latency, trace.endpoint, model).observe(elapsed)
        if trace.classification is not None:
            labels(self.data_class, trace.classification.data_class.label).inc()
        if trace.usage:
            labels(self.tokens, model, "prompt").inc(trace.usage.get("prompt_tokens", 0) or 0)
            labels(self.tokens, model, "completion").inc(trace.usage.get("completion_tokens", 0) or 0)
        if trace.result is not None:
            self._attempts(trace.result.attempts, model)
            if trace.decision is not None and trace.decision.targets and \
                    trace.result.target.model_id != trace.decision.targets[0].model_id:
                labels(self.fallbacks, model).inc()

    def _attempts(self, attempts: list[Attempt], model: str) -> None:
        labels = self._labels
        for a in attempts:
            kind = a.kind
            labels(self.attempts, a.model, a.replica, kind, a.outcome).inc()
            if a.outcome.startswith("skipped"):
                continue
            labels(self.attempt_latency, a.model, a.replica).observe(a.latency_ms / 1000.0)
            if kind == "retry" and not a.reask:
                labels(self.retries, a.model).inc()
            elif kind == "escalation" and not a.reask:
                labels(self.escalations, a.model).inc()
            elif kind == "hedge":
                labels(self.hedges, a.model, "won" if a.outcome == "ok" else "lost").inc()
            if a.outcome == "ok":
                prev = self._ewma.get(a.model)
                self._ewma[a.model] = a.latency_ms if prev is None else 0.8 * prev + 0.2 * a.latency_ms

    def latency_snapshot(self) -> dict[str, float]:
        """EWMA latency (ms) of each model's successful attempts, for the ``latency`` strategy. Models of the
        watched pool that were never measured read 0 (optimistic), so they get tried and measured once."""
        return dict(self._latencies)

    def latencies(self) -> Mapping[str, float]:
        """:meth:`latency_snapshot` as a live read-only view (nothing copied: ``decide`` reads it at once and
        most routes never look at it)."""
        return self._latencies

    def set_health(self, health: dict[str, dict[str, bool]]) -> None:
        for model, reps in health.items():
            for rep, ok in reps.items():
                self.replica_healthy.labels(model, rep).set(1 if ok else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Latencies(Mapping[str, float]):
    """The models' EWMA latencies (ms): measured ones, else 0.0 for the watched pool's models."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def _unmeasured(self) -> Iterator[str]:
        pool, ewma = self._metrics._pool, self._metrics._ewma
        return (m for m in (pool.replicas if pool is not None else ()) if m not in ewma)

    def __getitem__(self, model: str) -> float:
        value = self._metrics._ewma.get(model)
        if value is not None:
            return value
        pool = self._metrics._pool
        if pool is not None and model in pool.replicas:
            return 0.0
        raise KeyError(model)

    def __iter__(self) -> Iterator[str]:
        yield from self._unmeasured()
        yield from self._metrics._ewma

    def __len__(self) -> int:
        return sum(1 for _ in self._unmeasured()) + len(self._metrics._ewma)


class _PoolCollector(Collector):
    """Endpoint state gauges computed from the pool at scrape time."""

    def __init__(self, pool: BackendPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "replica"]
        usable = GaugeMetricFamily("fedinf_replica_healthy",
                                   "1 if the replica takes traffic (healthy, not ejected, breaker not open)", labels=labels)
        ejected = GaugeMetricFamily("fedinf_replica_ejected", "1 while outlier detection ejects the replica",
                                    labels=labels)
        breaker = GaugeMetricFamily("fedinf_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                                    labels=labels)
        outstanding = GaugeMetricFamily("fedinf_replica_outstanding", "Requests in flight to the replica",
                                        labels=labels)
        ewma = GaugeMetricFamily("fedinf_replica_latency_ewma_seconds", "EWMA of successful attempt latency",
                                 labels=labels)
        now = self.pool.clock()
        for mid, reps in self.pool.replicas.items():
            for rep in reps:
                lv = [mid, rep.name]
                usable.add_metric(lv, 1.0 if rep.usable(now) else 0.0)
                ejected.add_metric(lv, 1.0 if rep.outlier.ejected(now) else 0.0)
                state = rep.breaker.view() if rep.breaker is not None else "closed"
                breaker.add_metric(lv, float(BREAKER_VALUE[state]))
                outstanding.add_metric(lv, float(rep.stats.outstanding))
                if rep.stats.ewma_ms is not None:
                    ewma.add_metric(lv, rep.stats.ewma_ms / 1000.0)
        budget = self.pool.budget
        active = GaugeMetricFamily("fedinf_requests_in_flight", "Requests being executed")
        active.add_metric([], float(self.pool.inflight))
        retries = GaugeMetricFamily("fedinf_retries_in_flight", "Retries and hedges in flight (retry budget use)")
        retries.add_metric([], float(budget.active_retries))
        denied = GaugeMetricFamily("fedinf_retry_budget_denied", "Retries refused by the retry budget since start")
        denied.add_metric([], float(budget.denied))
        yield from (usable, ejected, breaker, outstanding, ewma, active, retries, denied)


class _AuditCollector(Collector):
    """The audit writer's counters and journal state, read at scrape time."""

    def __init__(self, stats: Callable[[], AuditorStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        st = self.stats()
        yield CounterMetricFamily("fedinf_audit_records", "Audit records made durable since start", value=st.records)
        yield CounterMetricFamily("fedinf_audit_commits", "Journal writes or store commits that made them durable",
                                  value=st.commits)
        yield CounterMetricFamily(
            "fedinf_audit_journal_stalls", "Journal writes on the event loop that took over 20 ms (each keeps writes "
            "in the journal thread for a back-off; frequent stalls: a slow or overloaded disk)", value=st.stalls)
        yield GaugeMetricFamily("fedinf_audit_journal_write_seconds",
                                "Moving average of one journal write with its fdatasync", value=st.write_s)
        yield GaugeMetricFamily("fedinf_audit_journal_off_loop",
                                "1 while journal writes run in the journal thread (after a stall, or slow writes)",
                                value=1.0 if st.off_loop else 0.0)
