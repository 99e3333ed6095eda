"""Turn a pipeline :class:`~fedinf.pipeline.Trace` into an :class:`AuditRecord` (ids, classes, counts; no content)."""

from __future__ import annotations

import time
from typing import Any

from fedinf.audit.record import Attempt, AuditRecord, ClassificationSummary, DecisionSummary, Usage


def record_from_trace(trace: Any, *, content: dict[str, Any] | None = None) -> AuditRecord:
    principal = trace.principal
    cls = trace.classification
    classification = ClassificationSummary()
    if cls is not None:
        classification = ClassificationSummary(
            data_class=cls.data_class.label, entities=dict(sorted(cls.counts().items())),
            detected_class=cls.detected_class.label, adjustment=cls.adjustment,
            adjusted_by=getattr(principal, "key_id", None) if cls.adjustment else None)
    decision = DecisionSummary()
    d = trace.decision
    if d is not None:
        result = trace.result
        attempts = [Attempt(model=a.model, zone=a.zone, outcome="ok" if a.outcome == "ok" else "error",
                            error_code=None if a.outcome == "ok" else a.outcome, latency_ms=round(a.latency_ms, 2))
                    for a in (result.attempts if result is not None else trace.attempts)]
        decision = DecisionSummary(
            route=d.route, strategy=d.strategy, eligible=[t.model_id for t in d.targets],
            excluded={e.model_id: f"{e.reason}: {e.detail}" for e in d.excluded},
            chosen_model=result.target.model_id if result is not None else None,
            chosen_zone=result.target.zone if result is not None else None, attempts=attempts)
    usage = trace.usage or {}
    return AuditRecord(
        request_id=trace.request_id, key_id=getattr(principal, "key_id", None),
        tenant=getattr(principal, "tenant", None), endpoint=trace.endpoint, model_requested=trace.requested,
        classification=classification, decision=decision, status=trace.status, error_code=trace.error_code,
        usage=Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0)),
        latency_ms=round((time.monotonic() - trace.started) * 1000, 3), stream=trace.stream, content=content)
