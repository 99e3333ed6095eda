"""Prometheus metrics, one registry per Gateway (no global registry: two gateways never mix their numbers)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fedinf_requests", "Requests by endpoint, model and outcome code",
                                ["endpoint", "model", "code"], registry=r)
        self.latency = Histogram("fedinf_request_seconds", "End-to-end request latency", ["endpoint", "model"],
                                 buckets=_BUCKETS, registry=r)
        self.tokens = Counter("fedinf_tokens", "Tokens by model and kind", ["model", "kind"], registry=r)
        self.attempts = Counter("fedinf_attempts", "Backend attempts by model, replica and outcome",
                                ["model", "replica", "outcome"], registry=r)
        self.fallbacks = Counter("fedinf_fallbacks", "Requests served by a target other than the first",
                                 ["model"], registry=r)
        self.data_class = Counter("fedinf_requests_by_class", "Requests by data class", ["data_class"], registry=r)
        self.replica_healthy = Gauge("fedinf_replica_healthy", "1 if the replica passed its last health check",
                                     ["model", "replica"], registry=r)
        self._ewma: dict[str, float] = {}

    def observe(self, trace: Any) -> None:
        import time

        model = trace.result.target.model_id if trace.result is not None else "-"
        code = trace.error_code or "ok"
        elapsed = time.monotonic() - trace.started
        self.requests.labels(trace.endpoint, model, code).inc()
        self.latency.labels(trace.endpoint, model).observe(elapsed)
        if trace.classification is not None:
            self.data_class.labels(trace.classification.data_class.label).inc()
        if trace.usage:
            self.tokens.labels(model, "prompt").inc(trace.usage.get("prompt_tokens", 0) or 0)
            self.tokens.labels(model, "completion").inc(trace.usage.get("completion_tokens", 0) or 0)
        if trace.result is not None:
            for a in trace.result.attempts:
                self.attempts.labels(a.model, a.replica, a.outcome).inc()
                if a.outcome == "ok":
                    prev = self._ewma.get(a.model)
                    self._ewma[a.model] = a.latency_ms if prev is None else 0.8 * prev + 0.2 * a.latency_ms
            if trace.decision is not None and trace.decision.targets and \
                    trace.result.target.model_id != trace.decision.targets[0].model_id:
                self.fallbacks.labels(model).inc()

    def latency_snapshot(self) -> dict[str, float]:
        return dict(self._ewma)

    def set_health(self, health: dict[str, dict[str, bool]]) -> None:
        for model, reps in health.items():
            for rep, ok in reps.items():
                self.replica_healthy.labels(model, rep).set(1 if ok else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
