"""The model network at runtime: zones, models and routes resolved from the config, with license verdicts.

Built once at startup from :class:`~fedinf.config.Config`. Immutable afterwards; live state (health, latency,
breakers) lives in :mod:`fedinf.routing`, not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedinf.backends import capabilities_for
from fedinf.backends.base import Capabilities
from fedinf.config import Config, ModelSpec, Route, Zone
from fedinf.data_class import DataClass
from fedinf.errors import NotFound

log = logging.getLogger("fedinf.network")

@dataclass(frozen=True, slots=True)
class LicenseStatus:
    allowed: bool
    status: str  # allowed | conditional | forbidden | unknown
    reason: str


@dataclass(frozen=True, slots=True)
class ModelEntry:
    spec: ModelSpec
    zone_name: str
    zone: Zone
    capabilities: Capabilities
    license: LicenseStatus

    @property
    def id(self) -> str:
        return self.spec.id

    def clearance_for(self, data_class: DataClass) -> str | None:
        """'direct' if the zone may receive ``data_class``, 'pseudonymized' if only after pseudonymization, else None."""
        if self.zone.clearance >= data_class:
            return "direct"
        if self.zone.pseudonymized_clearance is not None and self.zone.pseudonymized_clearance >= data_class:
            return "pseudonymized"
        return None


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the `model` field named: a route (ordered model ids + strategy) or a single model."""

    name: str
    route: Route | None
    model_ids: tuple[str, ...]

    @property
    def strategy(self) -> str:
        return self.route.strategy if self.route else "priority"


@dataclass
class Network:
    config: Config
    models: dict[str, ModelEntry] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config, *, license_check: Callable[[str], LicenseStatus] | None = None) -> "Network":
        check = license_check or _default_license_check(config)
        net = cls(config=config)
        for spec in config.models:
            verdict = check(spec.license)
            if not verdict.allowed:
                log.warning("model %s excluded from serving: license %s is %s (%s)",
                            spec.id, spec.license, verdict.status, verdict.reason)
            net.models[spec.id] = ModelEntry(spec=spec, zone_name=spec.zone, zone=config.zones[spec.zone],
                                             capabilities=capabilities_for(spec), license=verdict)
        return net

    def resolve(self, name: str) -> Resolved:
        route = self.config.routes.get(name)
        if route is not None:
            return Resolved(name=name, route=route, model_ids=tuple(route.models))
        if name in self.models:
            return Resolved(name=name, route=None, model_ids=(name,))
        known = sorted(self.models) + sorted(self.config.routes)
        raise NotFound(f"unknown model or route {name!r}; available: {', '.join(known)}",
                       param="model", code="model_not_found")


    def describe(self) -> dict[str, Any]:
        """The network by zone (for the admin API and UI): each zone's kind and clearances, its models with
        backend, license verdict, capabilities and replica names, and the routes. No URLs or secrets."""
        zones: dict[str, Any] = {
            name: {"name": name, "kind": z.kind, "clearance": z.clearance.label, "description": z.description,
                   "pseudonymized_clearance": z.pseudonymized_clearance.label if z.pseudonymized_clearance else None,
                   "models": []}
            for name, z in self.config.zones.items()}
        for entry in self.models.values():
            caps = entry.capabilities
            zones[entry.zone_name]["models"].append({
                "id": entry.id, "backend": entry.spec.backend, "license": entry.spec.license,
                "license_status": entry.license.status, "served": entry.license.allowed,
                "license_reason": entry.license.reason, "context_window": entry.spec.context_window,
                "capabilities": {k: getattr(caps, k) for k in ("streaming", "tools", "vision", "structured")},
                "cost": entry.spec.cost.model_dump()})
        routes = {name: {"models": list(r.models), "strategy": r.strategy} for name, r in self.config.routes.items()}
        return {"zones": list(zones.values()), "routes": routes, "use": self.config.governance.use}


def _default_license_check(config: Config) -> Callable[[str], LicenseStatus]:
    from fedinf.licenses import license_verdict

    def check(lic: str) -> LicenseStatus:
        v = license_verdict(lic, config.governance)
        return LicenseStatus(allowed=v.allowed, status=v.status, reason=v.reason)

    return check
