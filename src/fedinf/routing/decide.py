"""``decide()``: the pure policy step. No I/O, no clocks, no randomness.

Given what was asked, what the content holds, who asks and the network, compute the *eligible set* and order it by the
route's strategy. Every later step (executor, retries, fallbacks, hedges, cascades) may only choose from
``Decision.targets``. An empty eligible set is a refusal (fail closed): :class:`~fedinf.errors.PolicyViolation`
when policy excluded models, :class:`~fedinf.errors.CapabilityError` when only capabilities did. Reasons name data
classes, zones, licenses and capabilities, never content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fedinf.data_class import DataClass
from fedinf.errors import CapabilityError, Forbidden, PolicyViolation
from fedinf.network import ModelEntry, Network


@dataclass(frozen=True, slots=True)
class Needs:
    """Capabilities the request requires (derived from the request before deciding)."""

    streaming: bool = False
    tools: bool = False
    vision: bool = False
    structured: bool = False  # response_format json_schema / json_object: any backend can serve via validation
    grammar: bool = False  # fedinf.regex / fedinf.grammar: token-level constraint required
    embeddings: bool = False  # /v1/embeddings and remote retrieval embedders


class PrincipalView(Protocol):
    """What decide needs to know about the caller (implemented by fedinf.access.Principal)."""

    @property
    def key_id(self) -> str: ...

    def may_use_model(self, model_id: str, zone: str) -> str | None: ...

    @property
    def max_class(self) -> DataClass: ...


@dataclass(frozen=True, slots=True)
class Target:
    model_id: str
    zone: str
    pseudonymize: bool = False


@dataclass(frozen=True, slots=True)
class Exclusion:
    model_id: str
    zone: str
    reason: str  # clearance | license | access | capability
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    requested: str
    route: str | None
    strategy: str
    data_class: DataClass
    targets: tuple[Target, ...]
    excluded: tuple[Exclusion, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested, "route": self.route, "strategy": self.strategy,
            "data_class": self.data_class.label,
            "eligible": [{"model": t.model_id, "zone": t.zone, "pseudonymize": t.pseudonymize} for t in self.targets],
            "excluded": [{"model": e.model_id, "zone": e.zone, "reason": e.reason, "detail": e.detail}
                         for e in self.excluded],
        }


def _capability_gap(entry: ModelEntry, needs: Needs) -> str | None:
    if not (needs.streaming or needs.tools or needs.vision or needs.grammar or needs.embeddings):
        return None  # nothing asked that a model may lack
    caps = entry.capabilities
    missing = [name for name, want, have in (
        ("streaming", needs.streaming, caps.streaming),
        ("tools", needs.tools, caps.tools),
        ("vision", needs.vision, caps.vision),
        ("grammar constraints", needs.grammar, caps.structured == "grammar"),
        ("embeddings", needs.embeddings, caps.embeddings),
    ) if want and not have]
    return f"does not support {', '.join(missing)}" if missing else None


def _exclusion(entry: ModelEntry, data_class: DataClass, principal: PrincipalView | None,
               needs: Needs) -> tuple[Exclusion | None, bool]:
    """Return (exclusion or None, pseudonymize?) for one candidate."""
    zone = entry.zone_name
    if not entry.license.allowed:
        return Exclusion(entry.id, zone, "license",
                         f"license {entry.spec.license} is {entry.license.status}: {entry.license.reason}"), False
    clearance = entry.clearance_for(data_class)
    if clearance is None:
        return Exclusion(entry.id, zone, "clearance",
                         f"zone {zone} ({entry.zone.kind}) is cleared for {entry.zone.clearance.label}, "
                         f"request is {data_class.label}"), False
    if principal is not None:
        denied = principal.may_use_model(entry.id, zone)
        if denied:
            return Exclusion(entry.id, zone, "access", denied), False
    gap = _capability_gap(entry, needs)
    if gap:
        return Exclusion(entry.id, zone, "capability", gap), False
    return None, clearance == "pseudonymized"


def _order(strategy: str, entries: list[tuple[ModelEntry, bool]],
           latency_ms: Mapping[str, float]) -> list[tuple[ModelEntry, bool]]:
    if strategy == "cost":
        return sorted(entries, key=lambda e: e[0].spec.cost.input_per_mtok + e[0].spec.cost.output_per_mtok)
    if strategy == "latency":
        return sorted(entries, key=lambda e: latency_ms.get(e[0].id, float("inf")))
    if strategy == "cascade":  # smallest, most private first: on-prem before vpc before cloud, then route order
        rank = {"onprem": 0, "vpc": 1, "cloud": 2}
        return sorted(entries, key=lambda e: rank[e[0].zone.kind])
    return entries  # priority: route order (stable)


def decide(requested: str, *, network: Network, data_class: DataClass, principal: PrincipalView | None = None,
           needs: Needs = Needs(), latency_ms: Mapping[str, float] | None = None) -> Decision:
    """Compute the eligible, ordered targets for a request; refuse (fail closed) when none is eligible.

    Pure: the same inputs give the same Decision.
    """
    decision = evaluate(requested, network=network, data_class=data_class, principal=principal, needs=needs,
                        latency_ms=latency_ms)
    if not decision.targets:
        raise refusal(decision)
    return decision


def evaluate(requested: str, *, network: Network, data_class: DataClass, principal: PrincipalView | None = None,
             needs: Needs = Needs(), latency_ms: Mapping[str, float] | None = None) -> Decision:
    """Like :func:`decide` but returns an empty-target Decision instead of refusing (for ``route explain``)."""
    resolved = network.resolve(requested)
    if principal is not None and data_class > principal.max_class:
        raise Forbidden(f"this API key may send data up to {principal.max_class.label}; the request is "
                        f"{data_class.label}", code="data_class_not_allowed")
    eligible: list[tuple[ModelEntry, bool]] = []
    excluded: list[Exclusion] = []
    for mid in resolved.model_ids:
        entry = network.models[mid]
        exc, pseudo = _exclusion(entry, data_class, principal, needs)
        if exc is None:
            eligible.append((entry, pseudo))
        else:
            excluded.append(exc)
    ordered = _order(resolved.strategy, eligible, latency_ms or {})
    return Decision(
        requested=requested, route=resolved.name if resolved.route else None, strategy=resolved.strategy,
        data_class=data_class, targets=tuple(Target(e.id, e.zone_name, p) for e, p in ordered),
        excluded=tuple(excluded))


def refusal(decision: Decision) -> PolicyViolation | CapabilityError:
    """The error for an empty eligible set: explains why, with classes and zones, never content."""
    reasons = "; ".join(f"{e.model_id}: {e.detail}" for e in decision.excluded)
    details = {"decision": decision.to_dict()}
    if decision.excluded and all(e.reason == "capability" for e in decision.excluded):
        return CapabilityError(f"no model for {decision.requested!r} supports this request ({reasons})",
                               details=details)
    return PolicyViolation(
        f"no eligible model for {decision.requested!r}: the request is classified "
        f"{decision.data_class.label} and every candidate was excluded ({reasons})", details=details)
