"""Turn a pipeline :class:`~fedinf.pipeline.Trace` into an :class:`AuditRecord` (ids, classes, counts; no content).

The pipeline's types are imported for type checking only, so the audit package does not import the pipeline at run
time. Only summaries are copied: entity types and counts, class labels, model and zone ids, exclusion
reasons, attempt outcomes and token counts; ``content`` is what the caller passes (pseudonymized, and only for
tenants with content logging on).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fedinf.audit.record import Attempt, AuditRecord, ClassificationSummary, Completion, DecisionSummary, Usage, iso_time

if TYPE_CHECKING:
    from fedinf.access import Principal
    from fedinf.pipeline import Trace
    from fedinf.privacy.classifier import Classified
    from fedinf.routing.decide import Decision
    from fedinf.routing.executor import Attempt as Tried, Result


def classification_summary(cls: Classified | None, principal: Principal | None) -> ClassificationSummary:
    if cls is None:
        return ClassificationSummary()
    return ClassificationSummary(
        data_class=cls.data_class.label, entities=dict(sorted(cls.counts().items())),
        detected_class=cls.detected_class.label, adjustment=cls.adjustment,
        adjusted_by=principal.key_id if principal is not None and cls.adjustment else None)


def attempts_summary(result: Result | None, attempts_seen: Sequence[Tried]) -> list[Attempt]:
    """The attempts made (the result's, else those seen before a failure) as audit summaries."""
    raw = result.attempts if result is not None else (attempts_seen or [])
    return [Attempt(model=a.model, zone=a.zone, outcome="ok" if a.outcome == "ok" else "error",
                    error_code=None if a.outcome == "ok" else a.outcome, latency_ms=round(a.latency_ms, 2),
                    replica=a.replica, reask=a.reask) for a in raw]


def usage_summary(usage: dict[str, int] | None) -> Usage:
    usage = usage or {}
    return Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                 completion_tokens=int(usage.get("completion_tokens") or 0))


def decision_summary(d: Decision | None, result: Result | None, attempts_seen: Sequence[Tried]) -> DecisionSummary:
    attempts = attempts_summary(result, attempts_seen)
    if d is None:
        return DecisionSummary(attempts=attempts)
    return DecisionSummary(
        route=d.route, strategy=d.strategy, eligible=[t.model_id for t in d.targets],
        excluded={e.model_id: f"{e.reason}: {e.detail}" for e in d.excluded},
        chosen_model=result.target.model_id if result is not None else None,
        chosen_zone=result.target.zone if result is not None else None, attempts=attempts)


def record_from_trace(trace: Trace, *, content: dict[str, Any] | None = None) -> AuditRecord:
    """The audit record of one finished (or refused) request."""
    principal = trace.principal
    return AuditRecord(
        request_id=trace.request_id, key_id=principal.key_id if principal is not None else None,
        tenant=principal.tenant if principal is not None else None, endpoint=trace.endpoint, model_requested=trace.requested,
        classification=classification_summary(trace.classification, principal),
        decision=decision_summary(trace.decision, trace.result, trace.attempts),
        status=trace.status, error_code=trace.error_code,
        usage=usage_summary(trace.usage),
        latency_ms=round((time.monotonic() - trace.started) * 1000, 3), stream=bool(trace.stream), content=content,
        rules=tuple(trace.rules), retrieved=_retrieved(trace.retrieved))


def completion(intent_body: dict[str, Any], trace: Trace, *, content: dict[str, Any] | None = None) -> Completion:
    """The final record of a request whose intent (``intent_body``, journaled when its decision was final) is
    durable: that body with the outcome put in, equal to ``record_from_trace(trace).to_dict()`` (but for the time
    it is made) at a fraction of the cost on the reply's path."""
    result = trace.result
    decision = dict(intent_body["decision"])
    decision["chosen_model"] = result.target.model_id if result is not None else None
    decision["chosen_zone"] = result.target.zone if result is not None else None
    decision["attempts"] = [a.to_dict() for a in attempts_summary(result, trace.attempts)]
    now = time.time()
    outcome = {"decision": decision, "status": trace.status, "error_code": trace.error_code,
               "usage": usage_summary(trace.usage).to_dict(),
               "latency_ms": round((time.monotonic() - trace.started) * 1000, 3), "time": iso_time(now),
               "stream": bool(trace.stream), "content": content}
    if trace.rules:
        outcome["rules"] = list(trace.rules)
    if trace.retrieved is not None and (retrieved := _retrieved(trace.retrieved)):
        outcome["retrieved"] = list(retrieved)
    return Completion(intent_body, outcome, now)


def _retrieved(retrieved: Any) -> tuple[str, ...]:
    """``collection/document_id#chunk`` for each chunk a request read (ids only, never text or document names)."""
    if retrieved is None:
        return ()
    return tuple(f"{h.collection}/{h.document_id}#{h.chunk}" for h in retrieved.hits)
