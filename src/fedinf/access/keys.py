"""API keys: ``fk_<key id>_<secret>``, shown once, stored only as a SHA-256 hash.

The key id (12 hex characters) is not secret: it names the key in lists, logs and the audit trail and makes lookup
O(1). The secret is 256 random bits (``secrets.token_urlsafe(32)``), so a plain SHA-256 of the whole key is safe to
store (no password-style stretching needed: the key cannot be guessed). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from fedinf.access.principal import ROLES, Limits, Principal, Scopes

PREFIX = "fk_"
_KEY = re.compile(r"^fk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


def hash_key(full_key: str) -> str:
    return hashlib.sha256(full_key.encode("utf-8")).hexdigest()


def parse_key(full_key: str) -> str | None:
    """The key id of a well-formed key, else ``None``."""
    m = _KEY.match(full_key)
    return m.group(1) if m else None


def matches(full_key: str, stored_hash: str) -> bool:
    """Constant-time check of ``full_key`` against a stored hash."""
    return hmac.compare_digest(hash_key(full_key), stored_hash)


def check_name(kind: str, value: str) -> str:
    """Validate a tenant or key name (letters, digits, ``. _ : @ -``, up to 64 characters)."""
    if not _NAME.match(value):
        raise ValueError(f"invalid {kind} name {value!r}: use 1-64 letters, digits and . _ : @ -")
    return value


@dataclass(frozen=True, slots=True)
class Tenant:
    """A customer or team owning keys. ``log_content``: audit records may carry pseudonymized content."""

    name: str
    description: str = ""
    log_content: bool = False
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "log_content": self.log_content,
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key (never the secret). ``expires_at``/``revoked_at`` are epoch seconds or ``None``."""

    key_id: str
    key_hash: str
    tenant: str
    name: str = ""
    roles: tuple[str, ...] = ("user",)
    scopes: Scopes = field(default_factory=Scopes)
    limits: Limits = field(default_factory=Limits)
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None
    rotated_from: str | None = None

    def state(self, now: float | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        now = time.time() if now is None else now
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def principal(self, *, log_content: bool = False) -> Principal:
        return Principal(key_id=self.key_id, tenant=self.tenant, roles=frozenset(self.roles), scopes=self.scopes,
                         limits=self.limits, name=self.name, log_content=log_content)

    def to_dict(self) -> dict[str, Any]:
        """The public view (for lists and the admin API): everything but the hash."""
        return {"key_id": self.key_id, "display": f"{PREFIX}{self.key_id}_…", "tenant": self.tenant,
                "name": self.name, "roles": list(self.roles), "scopes": self.scopes.to_dict(),
                "limits": self.limits.to_dict(), "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "rotated_from": self.rotated_from, "state": self.state()}


def new_key(*, tenant: str, name: str = "", roles: tuple[str, ...] | list[str] = ("user",),
            scopes: Scopes | None = None, limits: Limits | None = None, expires_at: float | None = None,
            rotated_from: str | None = None) -> tuple[KeyRecord, str]:
    """A new key record and its secret (``fk_<id>_<secret>``); the secret is not kept anywhere."""
    check_name("tenant", tenant)
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"unknown role(s) {bad or '(none)'}; roles are: {', '.join(ROLES)}")
    key_id = secrets.token_hex(6)
    full = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    rec = KeyRecord(key_id=key_id, key_hash=hash_key(full), tenant=tenant, name=name, roles=tuple(dict.fromkeys(roles)),
                    scopes=scopes or Scopes(), limits=limits or Limits(), expires_at=expires_at,
                    rotated_from=rotated_from)
    return rec, full


def rotated(old: KeyRecord) -> tuple[KeyRecord, str]:
    """A successor of ``old``: same tenant, name, roles, scopes and limits; a new id and secret."""
    rec, secret = new_key(tenant=old.tenant, name=old.name, roles=old.roles, scopes=old.scopes, limits=old.limits,
                          expires_at=old.expires_at, rotated_from=old.key_id)
    return replace(rec), secret
