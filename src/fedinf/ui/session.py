"""Admin UI login sessions: a signed, HttpOnly, SameSite=Strict cookie instead of the API key in the browser.

``POST /ui/login`` checks the key once against the key store and issues a cookie naming only the key id, an expiry
and a nonce, signed with HMAC-SHA256. The key itself is never stored by the browser. Each request with the cookie
re-checks the key (:meth:`~fedinf.access.Authenticator.principal_of`), so revoking the key ends its sessions.

CSRF: the cookie is ``SameSite=Strict`` (browsers do not send it on cross-site requests) and, in addition, every
state-changing request authenticated by the cookie must carry ``x-fedinf-csrf`` with the session's token, which only
same-origin script can read (``GET /ui/session``). Login posts must come from the same origin.

The signing secret comes from ``ui.session_secret_env`` or, by default, a random file in ``server.state_dir``
(created once, mode 0600), so the sessions survive restarts and are valid in every worker process of one host.
A stateless cookie cannot be revoked on its own before it expires: logging out deletes it from the browser, and
revoking the key ends every session of that key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from fedinf.errors import AuthError, ConfigError, Forbidden

if TYPE_CHECKING:
    from fedinf.access import Principal
    from fedinf.config import Config

COOKIE = "fedinf_session"
CSRF_HEADER = "x-fedinf-csrf"
UI_ROLES = ("admin", "auditor")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_at: float
    token: str  # the cookie value


class Sessions:
    """Issue and check session cookies (see the module docstring)."""

    def __init__(self, secret: bytes, *, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ConfigError("the UI session secret must be at least 16 bytes long")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def from_config(cls, config: "Config") -> "Sessions":
        ui = config.ui
        if ui.session_secret_env:
            value = os.environ.get(ui.session_secret_env, "")
            if not value:
                raise ConfigError(f"ui.session_secret_env names {ui.session_secret_env!r}, which is not set")
            return cls(value.encode(), ttl_s=ui.session_ttl_s)
        return cls(_state_secret(Path(config.server.state_dir)), ttl_s=ui.session_ttl_s)

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str) -> Session:
        expires = int(self._clock() + self.ttl_s)
        nonce = secrets.token_urlsafe(12)
        body = f"{_VERSION}.{key_id}.{expires}.{nonce}"
        return Session(key_id=key_id, expires_at=expires, token=f"{body}.{self._mac(body)}")

    def parse(self, token: str | None) -> Session | None:
        """The session a cookie value names, or None when it is missing, forged, malformed or expired."""
        if not token or len(token) > 512:
            return None
        body, _, mac = token.rpartition(".")
        parts = body.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
            return None
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        expires = float(parts[2])
        if expires <= self._clock():
            return None
        return Session(key_id=parts[1], expires_at=expires, token=token)

    def csrf_for(self, session: Session) -> str:
        return self._mac("csrf", session.token)

    def check_csrf(self, request: Request, session: Session) -> None:
        """State-changing requests must echo the session's CSRF token and come from this origin."""
        if request.method in _SAFE_METHODS:
            return
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, self.csrf_for(session)):
            raise Forbidden("missing or wrong CSRF token: UI requests must send the `x-fedinf-csrf` header",
                            code="csrf_failed")
        check_origin(request)

    async def principal(self, request: Request, access: Any) -> "Principal | None":
        """The principal of the request's session cookie, or None when the request has no cookie.

        Raises AuthError when the cookie is invalid or expired, or its key no longer works; Forbidden on a CSRF
        failure."""
        raw = request.cookies.get(COOKIE)
        if raw is None:
            return None
        session = self.parse(raw)
        if session is None:
            raise AuthError("the UI session has expired or is invalid: log in again", code="invalid_session")
        self.check_csrf(request, session)
        principal: Principal = await access.authenticator.principal_of(session.key_id)
        return principal


def check_origin(request: Request) -> None:
    """Reject a request whose ``Origin`` (browsers send it on every POST) is not this server's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser-originated cross-site request (the SameSite cookie covers browsers that omit it)
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1].rstrip("/") != host:
        raise Forbidden("cross-origin request refused", code="csrf_failed")


def cookie_header(session: Session | None, *, secure: bool, ttl_s: float) -> str:
    """``Set-Cookie`` value for ``session`` (None: delete the cookie)."""
    attrs = "; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    if session is None:
        return f"{COOKIE}=; Max-Age=0{attrs}"
    return f"{COOKIE}={session.token}; Max-Age={int(ttl_s)}{attrs}"


def _state_secret(state_dir: Path) -> bytes:
    """The per-installation signing secret in ``state_dir`` (created on first use, readable by the owner only)."""
    path = state_dir / "ui-session.secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ConfigError(f"{path} is corrupt: delete it (existing UI sessions end)") from None
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex())
    try:
        os.link(tmp, path)  # first writer wins when several workers start at once
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
