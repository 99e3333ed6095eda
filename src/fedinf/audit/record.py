"""The audit record: one per request, what happened and where the data went — never the content itself.

An :class:`AuditRecord` holds only identifiers, entity *types and counts*, classes, model and zone names, outcomes,
token counts and timings. Raw prompts, completions and entity values have no field here. ``content`` exists only for
tenants that turned content logging on, and then the pipeline must pass pseudonymized text only.

``to_dict`` gives the JSON-able body that is hash-chained; ``from_dict`` reads it back.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ClassificationSummary:
    """What the classifier found: entity type -> count, the resulting data class and any adjustment.

    ``adjustment`` is ``"lowered"`` or ``"raised"`` when the caller declared a class different from the detected one;
    ``adjusted_by`` is then the key id that did it.
    """

    data_class: str = "public"
    entities: dict[str, int] = field(default_factory=dict)
    detected_class: str | None = None
    adjustment: str | None = None
    adjusted_by: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try against one target: ``outcome`` is ``ok`` or ``error`` (with ``error_code``)."""

    model: str
    zone: str | None = None
    outcome: str = "ok"
    error_code: str | None = None
    latency_ms: float | None = None
    replica: str | None = None
    reask: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "zone": self.zone, "outcome": self.outcome, "error_code": self.error_code,
                "latency_ms": self.latency_ms, "replica": self.replica, "reask": self.reask}


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """The routing decision: eligible models in order, excluded models with reasons, the chosen target, attempts."""

    route: str | None = None
    strategy: str | None = None
    eligible: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    chosen_model: str | None = None
    chosen_zone: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One request's audit record (see the module docstring for what may and may not be in it).

    ``time`` is seconds since the epoch (UTC). ``endpoint`` is the HTTP route called (``/v1/chat/completions``);
    ``model_requested`` the ``model`` field as sent (a model id or a route alias).
    """

    request_id: str
    key_id: str | None = None
    tenant: str | None = None
    endpoint: str | None = None
    model_requested: str | None = None
    classification: ClassificationSummary = field(default_factory=ClassificationSummary)
    decision: DecisionSummary = field(default_factory=DecisionSummary)
    status: int = 200
    error_code: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float | None = None
    time: float = field(default_factory=time.time)
    stream: bool = False
    content: dict[str, Any] | None = None
    rules: tuple[str, ...] = ()  # claim rule ids applied (claims workload); absent from the body when empty
    retrieved: tuple[str, ...] = ()  # chunks a chat read: "collection/document_id#chunk" (ids, never text); ditto

    @property
    def model(self) -> str | None:
        """The model the request went to, or (when none was chosen) the one asked for."""
        return self.decision.chosen_model or self.model_requested

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able body (without chain fields); ``time`` is rendered as ISO 8601 UTC with microseconds."""
        c, dec, u = self.classification, self.decision, self.usage
        body = {  # built by hand: dataclasses.asdict deep-copies and is ~10x slower on this hot path
            "v": SCHEMA_VERSION, "request_id": self.request_id, "key_id": self.key_id, "tenant": self.tenant,
            "endpoint": self.endpoint, "model_requested": self.model_requested,
            "classification": {"data_class": c.data_class, "entities": dict(c.entities),
                               "detected_class": c.detected_class, "adjustment": c.adjustment,
                               "adjusted_by": c.adjusted_by},
            "decision": {"route": dec.route, "strategy": dec.strategy, "eligible": list(dec.eligible),
                         "excluded": dict(dec.excluded), "chosen_model": dec.chosen_model,
                         "chosen_zone": dec.chosen_zone, "attempts": [a.to_dict() for a in dec.attempts]},
            "status": self.status, "error_code": self.error_code, "usage": u.to_dict(),
            "latency_ms": self.latency_ms, "time": iso_time(self.time), "stream": self.stream,
            "content": self.content,
        }
        if self.rules:  # only when set: older bodies hash unchanged
            body["rules"] = list(self.rules)
        if self.retrieved:
            body["retrieved"] = list(self.retrieved)
        return body

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AuditRecord":
        """Inverse of :meth:`to_dict` (chain fields and unknown keys are ignored)."""
        dec = dict(d.get("decision") or {})
        dec["attempts"] = [Attempt(**a) for a in dec.get("attempts") or []]
        usage = {k: v for k, v in (d.get("usage") or {}).items() if k != "total_tokens"}
        return cls(
            request_id=d["request_id"], key_id=d.get("key_id"), tenant=d.get("tenant"), endpoint=d.get("endpoint"),
            model_requested=d.get("model_requested"),
            classification=ClassificationSummary(**(d.get("classification") or {})),
            decision=DecisionSummary(**dec), status=int(d.get("status", 200)), error_code=d.get("error_code"),
            usage=Usage(**usage), latency_ms=d.get("latency_ms"), time=parse_time(d["time"]),
            stream=bool(d.get("stream", False)), content=d.get("content"), rules=tuple(d.get("rules") or ()),
            retrieved=tuple(d.get("retrieved") or ()),
        )


class RecordBody:
    """A record already rendered as its body (what :meth:`AuditRecord.to_dict` gives), made on the request path by
    :func:`fedinf.audit.from_trace.record_from_trace` without building the record's dataclasses."""

    __slots__ = ("body", "time")

    def __init__(self, body: dict[str, Any], time: float) -> None:
        self.body = body
        self.time = time

    def to_dict(self) -> dict[str, Any]:
        return self.body


class Completion(RecordBody):
    """A request's final record as the body of its journaled intent (:meth:`fedinf.audit.Auditor.begin`) with the
    ``outcome`` fields put in: what :meth:`AuditRecord.to_dict` of the finished request gives (the chain hashes
    canonical JSON, so key order does not matter), without building the request's summaries and record a second
    time on the reply's path (made by :func:`fedinf.audit.from_trace.completion`; a test checks the two agree).
    The identity, classification and the decision's route, strategy, eligible and excluded models come from the
    intent, which the pipeline journals once they are final; the rest from ``outcome``."""

    __slots__ = ()

    def __init__(self, intent_body: dict[str, Any], outcome: dict[str, Any], time: float) -> None:
        super().__init__({**intent_body, **outcome}, time)


#: What an audit sink's ``write`` takes: a record, or a record's body (a :class:`Completion` among them).
Recordable = AuditRecord | RecordBody


def iso_time(ts: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), exactly as ``datetime.fromtimestamp(ts, timezone.utc).strftime(...)``
    renders it (microseconds rounded half to even), at about a third of its cost."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:  # before 1970
        whole, us = whole - 1, us + 1_000_000
    return f"{_second(int(whole))}.{us:06d}Z"


@functools.lru_cache(maxsize=8)
def _second(whole: int) -> str:
    """The date and time of a whole second (two records a request, ~1,000 requests a second: mostly the same)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def parse_time(value: str | float) -> float:
    """ISO 8601 (``Z`` or offset) or epoch seconds -> epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    v = value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
