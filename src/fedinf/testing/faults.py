"""Fault rules for the fake upstream servers: what to break, for how many requests, with what probability.

A :class:`FaultPlan` holds an ordered list of :class:`FaultRule`. For each request the first rule that applies
(its scope matches, it has uses left, its probability roll succeeds) is taken and one of its uses consumed.

Kinds (``params`` in brackets):

=================  ================================================================================================
``status``         answer an HTTP error in the server's error shape [``status`` (503), ``message``, ``retry_after``]
``reset``          reset the TCP connection (RST) without answering
``hang``           accept the request and never answer (until the client goes away)
``slow``           answer after a delay [``delay_ms``, or ``min_ms``..``max_ms`` uniform; ``token_delay_ms``]
``stall``          stream ``after_tokens`` tokens then go silent forever (non-streamed: like ``hang``)
``cutoff``         stream ``after_tokens`` tokens then close the connection mid-stream (non-streamed: half a body)
``malformed_json`` answer 200 with a body that is not JSON (streamed: the first event is not JSON)
``malformed_sse``  stream ``after_tokens`` good events then a broken one (non-streamed: like ``malformed_json``)
``length``         stop after ``tokens`` tokens (default: ``max_tokens`` or 3) with finish reason "length"
``no_usage``       answer normally but without any usage
``no_stream``      ignore ``stream: true`` and answer one JSON document (a quirk of some servers)
=================  ================================================================================================

``scope`` is ``"chat"`` (generation endpoints only, the default) or ``"all"`` (also ``/health`` and the model list:
a replica that is down).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

KINDS = frozenset({"status", "reset", "hang", "slow", "stall", "cutoff", "malformed_json", "malformed_sse", "length",
                   "no_usage", "no_stream"})
Scope = Literal["chat", "all"]


@dataclass(slots=True)
class FaultRule:
    """One fault: ``kind`` with ``params``; ``times`` uses left (``None`` = unlimited), applied with ``probability``."""

    kind: str
    times: int | None = None
    probability: float = 1.0
    scope: Scope = "chat"
    params: dict[str, Any] = field(default_factory=dict)
    applied: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        if self.scope not in ("chat", "all"):
            raise ValueError("scope must be 'chat' or 'all'")

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "times": self.times, "probability": self.probability, "scope": self.scope,
                "applied": self.applied, **self.params}


class FaultPlan:
    """The ordered fault rules of one fake server, plus a seeded random source (reproducible runs)."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self.rng = random.Random(seed)

    def add(self, kind: str, *, times: int | None = None, probability: float = 1.0, scope: Scope = "chat",
            **params: Any) -> FaultRule:
        rule = FaultRule(kind, times=times, probability=probability, scope=scope, params=params)
        self.rules.append(rule)
        return rule

    def add_dict(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from its JSON form: ``{"kind": ..., "times": ..., "probability": ..., "scope": ..., **params}``."""
        spec = dict(spec)
        try:
            kind = spec.pop("kind")
        except KeyError:
            raise ValueError("a fault needs a `kind`") from None
        return self.add(kind, times=spec.pop("times", None), probability=float(spec.pop("probability", 1.0)),
                        scope=spec.pop("scope", "chat"), **spec)

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, *, chat: bool) -> FaultRule | None:
        """The rule to apply to this request (consuming one use), or ``None``."""
        if not self.rules:
            return None
        for rule in self.rules:
            if not chat and rule.scope != "all":
                continue
            if rule.times is not None and rule.applied >= rule.times:
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            rule.applied += 1
            return rule
        return None

    def delay_s(self, rule: FaultRule) -> float:
        """Seconds to wait before answering under a ``slow`` rule."""
        if "max_ms" in rule.params:
            return self.rng.uniform(float(rule.get("min_ms", 0.0)), float(rule.params["max_ms"])) / 1000.0
        return float(rule.get("delay_ms", 0.0)) / 1000.0
