"""Build an :class:`AuditRecord` from the pipeline's ``Trace`` (``fedinf.pipeline.Trace``).

Duck-typed on purpose (the trace, classification, decision and result are read by attribute), so the audit package
does not import the pipeline. Only summaries are copied: entity types and counts, class labels, model and zone ids,
exclusion reasons, attempt outcomes and token counts — never content or entity values.
"""

from __future__ import annotations

import time
from typing import Any

from fedinf.audit.record import Attempt, AuditRecord, ClassificationSummary, DecisionSummary, Usage


def _label(v: Any) -> str | None:
    return None if v is None else str(getattr(v, "label", v))


def classification_summary(c: Any, principal: Any) -> ClassificationSummary:
    if c is None:
        return ClassificationSummary(data_class="public")
    counts = c.counts() if hasattr(c, "counts") else {}
    adjustment = getattr(c, "adjustment", None)
    return ClassificationSummary(
        data_class=_label(c.data_class) or "public", entities=dict(sorted(counts.items())),
        detected_class=_label(getattr(c, "detected_class", None)), adjustment=adjustment,
        adjusted_by=getattr(principal, "key_id", None) if adjustment else None)


def decision_summary(d: Any, result: Any) -> DecisionSummary:
    attempts = []
    for a in getattr(result, "attempts", None) or []:
        ok = a.outcome == "ok"
        attempts.append(Attempt(model=a.model, zone=a.zone, outcome="ok" if ok else "error",
                                error_code=None if ok else a.outcome, latency_ms=round(a.latency_ms, 3),
                                replica=getattr(a, "replica", None), reask=getattr(a, "reask", 0)))
    target = getattr(result, "target", None)
    if d is None:
        return DecisionSummary(attempts=attempts)
    return DecisionSummary(
        route=d.route, strategy=d.strategy, eligible=[t.model_id for t in d.targets],
        excluded={e.model_id: f"{e.reason}: {e.detail}" for e in d.excluded},
        chosen_model=getattr(target, "model_id", None), chosen_zone=getattr(target, "zone", None), attempts=attempts)


def record_from_trace(trace: Any, *, now: float | None = None) -> AuditRecord:
    """The audit record of one finished (or refused) request."""
    principal = trace.principal
    usage = trace.usage or {}
    return AuditRecord(
        request_id=trace.request_id, key_id=getattr(principal, "key_id", None),
        tenant=getattr(principal, "tenant", None), endpoint=trace.endpoint, model_requested=trace.requested,
        classification=classification_summary(trace.classification, principal),
        decision=decision_summary(trace.decision, trace.result), status=trace.status, error_code=trace.error_code,
        usage=Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0)),
        latency_ms=round((time.monotonic() - trace.started) * 1000.0, 3), time=time.time() if now is None else now,
        stream=bool(trace.stream), content=getattr(trace, "audit_content", None))
