"""Turn a pipeline :class:`~fedinf.pipeline.Trace` into its audit record's body (ids, classes, counts; no content).

The pipeline's types are imported for type checking only, so the audit package does not import the pipeline at run
time. Only summaries are copied: entity types and counts, class labels, model and zone ids, exclusion
reasons, attempt outcomes and token counts; ``content`` is what the caller passes (pseudonymized, and only for
tenants with content logging on).

The body is rendered straight into the JSON-able dict of :meth:`~fedinf.audit.record.AuditRecord.to_dict` (the
schema; ``AuditRecord.from_dict`` reads it back): this runs on every request's path, twice for a lone request (its
intent and its final record), and building the record's frozen dataclasses first cost about as much again
(``tests/audit/test_intents.py`` checks that the body reads back as the same record).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fedinf.audit.record import SCHEMA_VERSION, Completion, RecordBody, iso_time

if TYPE_CHECKING:
    from fedinf.access import Principal
    from fedinf.pipeline import Trace
    from fedinf.privacy.classifier import Classified
    from fedinf.routing.decide import Decision
    from fedinf.routing.executor import Attempt as Tried, Result


def classification_body(cls: Classified | None, principal: Principal | None) -> dict[str, Any]:
    if cls is None:
        return {"data_class": "public", "entities": {}, "detected_class": None, "adjustment": None,
                "adjusted_by": None}
    return {"data_class": cls.data_class.label, "entities": dict(sorted(cls.counts().items())),
            "detected_class": cls.detected_class.label, "adjustment": cls.adjustment,
            "adjusted_by": principal.key_id if principal is not None and cls.adjustment else None}


def attempts_body(result: Result | None, attempts_seen: Sequence[Tried]) -> list[dict[str, Any]]:
    """The attempts made (the result's, else those seen before a failure) as audit summaries."""
    raw = result.attempts if result is not None else (attempts_seen or [])
    return [{"model": a.model, "zone": a.zone, "outcome": "ok" if a.outcome == "ok" else "error",
             "error_code": None if a.outcome == "ok" else a.outcome, "latency_ms": round(a.latency_ms, 2),
             "replica": a.replica, "reask": a.reask} for a in raw]


def usage_body(usage: dict[str, int] | None) -> dict[str, int]:
    usage = usage or {}
    prompt, done = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def decision_body(d: Decision | None, result: Result | None, attempts_seen: Sequence[Tried]) -> dict[str, Any]:
    attempts = attempts_body(result, attempts_seen)
    if d is None:
        return {"route": None, "strategy": None, "eligible": [], "excluded": {}, "chosen_model": None,
                "chosen_zone": None, "attempts": attempts}
    return {"route": d.route, "strategy": d.strategy, "eligible": [t.model_id for t in d.targets],
            "excluded": {e.model_id: f"{e.reason}: {e.detail}" for e in d.excluded},
            "chosen_model": result.target.model_id if result is not None else None,
            "chosen_zone": result.target.zone if result is not None else None, "attempts": attempts}


def record_from_trace(trace: Trace, *, content: dict[str, Any] | None = None) -> RecordBody:
    """The audit record of one finished (or refused) request, or of one about to call upstream (its intent)."""
    principal = trace.principal
    now = time.time()
    body = {
        "v": SCHEMA_VERSION, "request_id": trace.request_id,
        "key_id": principal.key_id if principal is not None else None,
        "tenant": principal.tenant if principal is not None else None, "endpoint": trace.endpoint,
        "model_requested": trace.requested,
        "classification": classification_body(trace.classification, principal),
        "decision": decision_body(trace.decision, trace.result, trace.attempts),
        "status": trace.status, "error_code": trace.error_code, "usage": usage_body(trace.usage),
        "latency_ms": round((time.monotonic() - trace.started) * 1000, 3), "time": iso_time(now),
        "stream": bool(trace.stream), "content": content,
    }
    _extras(body, trace)
    return RecordBody(body, now)


def completion(intent_body: dict[str, Any], trace: Trace, *, content: dict[str, Any] | None = None) -> Completion:
    """The final record of a request whose intent (``intent_body``, journaled when its decision was final) is
    durable: that body with the outcome put in, equal to ``record_from_trace(trace).to_dict()`` (but for the time
    it is made) at a fraction of the cost on the reply's path."""
    result = trace.result
    decision = dict(intent_body["decision"])
    decision["chosen_model"] = result.target.model_id if result is not None else None
    decision["chosen_zone"] = result.target.zone if result is not None else None
    decision["attempts"] = attempts_body(result, trace.attempts)
    now = time.time()
    outcome = {"decision": decision, "status": trace.status, "error_code": trace.error_code,
               "usage": usage_body(trace.usage),
               "latency_ms": round((time.monotonic() - trace.started) * 1000, 3), "time": iso_time(now),
               "stream": bool(trace.stream), "content": content}
    _extras(outcome, trace)
    return Completion(intent_body, outcome, now)


def _extras(body: dict[str, Any], trace: Trace) -> None:
    """``rules`` and ``retrieved``, only when set (older bodies hash unchanged)."""
    if trace.rules:
        body["rules"] = list(trace.rules)
    if trace.retrieved is not None and trace.retrieved.hits:
        body["retrieved"] = [f"{h.collection}/{h.document_id}#{h.chunk}" for h in trace.retrieved.hits]
