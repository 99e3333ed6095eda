"""Who is calling and what they may do: roles, scopes, limits and the :class:`Principal` built from an API key.

Roles: ``admin`` (everything, including ``/admin`` and key management), ``user`` (inference within its scopes),
``auditor`` (reads the audit trail through the admin API; no inference). Scopes are glob patterns (``*``,
``gpt-*``) over model ids, zone names, route names, task names and retrieval collection names; an empty list allows nothing. ``max_class`` is
the highest data class the key may send; ``may_lower_class`` lets it declare a lower class than the one detected.

Each ``may_*`` method returns ``None`` when allowed and otherwise a short reason (safe to log and to audit: it names
the scope, never content); the ``check_*`` methods raise :class:`Forbidden` with a stable code instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from fedinf.data_class import DataClass
from fedinf.errors import Forbidden

ROLES = ("admin", "user", "auditor")
Period = Literal["hour", "day", "week", "month"]
PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")


def _match(patterns: tuple[str, ...], name: str) -> bool:
    return "*" in patterns or any(fnmatchcase(name, p) for p in patterns)  # "*" matches every name


@dataclass(frozen=True, slots=True)
class Scopes:
    """What a key may reach. Patterns are globs; ``("*",)`` allows all, ``()`` allows none."""

    models: tuple[str, ...] = ("*",)
    zones: tuple[str, ...] = ("*",)
    routes: tuple[str, ...] = ("*",)
    tasks: tuple[str, ...] = ("*",)
    collections: tuple[str, ...] = ("*",)
    max_class: DataClass = DataClass.RESTRICTED
    may_lower_class: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"models": list(self.models), "zones": list(self.zones), "routes": list(self.routes),
                "tasks": list(self.tasks), "collections": list(self.collections), "max_class": self.max_class.label, "may_lower_class": self.may_lower_class}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Scopes":
        d = d or {}
        base = cls()
        return cls(
            models=tuple(d.get("models", base.models)), zones=tuple(d.get("zones", base.zones)),
            routes=tuple(d.get("routes", base.routes)), tasks=tuple(d.get("tasks", base.tasks)),
            collections=tuple(d.get("collections", base.collections)),
            max_class=DataClass.parse(d.get("max_class", base.max_class)),
            may_lower_class=bool(d.get("may_lower_class", False)),
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-key limits; ``None`` means unlimited. The token budget resets at each UTC calendar ``budget_period``."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    token_budget: int | None = None
    budget_period: Period = "month"

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute", "token_budget"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive (or unset for unlimited)")
        if self.budget_period not in PERIODS:
            raise ValueError(f"budget_period must be one of {', '.join(PERIODS)}")

    @property
    def unlimited(self) -> bool:
        return not (self.requests_per_minute or self.tokens_per_minute or self.token_budget)

    @property
    def counts_tokens(self) -> bool:
        """Whether the tokens a request used are charged (a tokens-per-minute limit or a token budget)."""
        return bool(self.tokens_per_minute or self.token_budget)

    def to_dict(self) -> dict[str, Any]:
        return {"requests_per_minute": self.requests_per_minute, "tokens_per_minute": self.tokens_per_minute,
                "token_budget": self.token_budget, "budget_period": self.budget_period}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Limits":
        d = d or {}
        return cls(requests_per_minute=d.get("requests_per_minute"), tokens_per_minute=d.get("tokens_per_minute"),
                   token_budget=d.get("token_budget"), budget_period=d.get("budget_period") or "month")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. Built by the :class:`~fedinf.access.authenticator.Authenticator` from a key."""

    key_id: str
    tenant: str
    roles: frozenset[str] = frozenset({"user"})
    scopes: Scopes = field(default_factory=Scopes)
    limits: Limits = field(default_factory=Limits)
    name: str = ""
    log_content: bool = False

    @property
    def max_class(self) -> DataClass:
        return self.scopes.max_class

    @property
    def may_lower_class(self) -> bool:
        return self.scopes.may_lower_class

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, role: str) -> bool:
        """``admin`` holds every role."""
        return role in self.roles or self.is_admin

    def may_infer(self) -> str | None:
        return None if self.has_role("user") else f"key {self.key_id} has no 'user' role (roles: " \
                                                  f"{', '.join(sorted(self.roles)) or 'none'})"

    def may_use_model(self, model_id: str, zone: str) -> str | None:
        if not _match(self.scopes.models, model_id):
            return f"model {model_id} is outside key {self.key_id}'s model scope"
        if not _match(self.scopes.zones, zone):
            return f"zone {zone} is outside key {self.key_id}'s zone scope"
        return None

    def may_use_route(self, route: str) -> str | None:
        return None if _match(self.scopes.routes, route) else f"route {route} is outside key {self.key_id}'s scope"

    def may_use_task(self, task: str) -> str | None:
        return None if _match(self.scopes.tasks, task) else f"task {task} is outside key {self.key_id}'s scope"

    def may_use_collection(self, collection: str) -> str | None:
        return None if _match(self.scopes.collections, collection) else \
            f"collection {collection} is outside key {self.key_id}'s scope"

    def may_send_class(self, data_class: DataClass) -> str | None:
        if data_class > self.max_class:
            return f"data class {data_class.label} exceeds key {self.key_id}'s maximum ({self.max_class.label})"
        return None

    def may_lower(self, detected: DataClass, declared: DataClass) -> str | None:
        """Whether the caller may declare ``declared`` when ``detected`` was found (raising is always allowed)."""
        if declared >= detected or self.may_lower_class:
            return None
        return f"key {self.key_id} may not lower the data class from {detected.label} to {declared.label}"

    # ---- raising variants (stable error codes)

    def require_role(self, *roles: str) -> None:
        """Raise Forbidden(``role_required``) unless the principal holds one of ``roles`` (admin holds all)."""
        if not any(self.has_role(r) for r in roles):
            raise Forbidden(f"this requires the {' or '.join(roles)} role; key {self.key_id} has "
                            f"{', '.join(sorted(self.roles)) or 'none'}", code="role_required")

    def check_infer(self) -> None:
        if (why := self.may_infer()) is not None:
            raise Forbidden(why, code="role_required")

    def check_model(self, model_id: str, zone: str) -> None:
        if (why := self.may_use_model(model_id, zone)) is not None:
            raise Forbidden(why, code="model_not_allowed" if why.startswith("model ") else "zone_not_allowed")

    def check_route(self, route: str) -> None:
        if (why := self.may_use_route(route)) is not None:
            raise Forbidden(why, code="route_not_allowed")

    def check_task(self, task: str) -> None:
        if (why := self.may_use_task(task)) is not None:
            raise Forbidden(why, code="task_not_allowed")

    def check_collection(self, collection: str) -> None:
        if (why := self.may_use_collection(collection)) is not None:
            raise Forbidden(why, code="collection_not_allowed")

    def check_class(self, data_class: DataClass) -> None:
        if (why := self.may_send_class(data_class)) is not None:
            raise Forbidden(why, code="data_class_not_allowed")

    def check_lower(self, detected: DataClass, declared: DataClass) -> None:
        if (why := self.may_lower(detected, declared)) is not None:
            raise Forbidden(why, code="lowering_not_allowed")
