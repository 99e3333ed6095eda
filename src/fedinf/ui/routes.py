"""The admin web UI, mounted under ``/ui`` by the server's app factory.

Static HTML, CSS and vanilla JavaScript (no build step) that call the admin API (:mod:`fedinf.server.admin`) with the
session cookie issued here:

    GET  /ui/             the app once logged in, else the login page
    POST /ui/login        form field ``key``: an admin or auditor API key -> session cookie, redirect to /ui/
    POST /ui/logout       (needs the CSRF header) -> cookie deleted
    GET  /ui/session      the logged-in key (id, tenant, roles), the session's expiry and its CSRF token
    GET  /ui/static/...   app.js, style.css

Every page carries a strict Content-Security-Policy (scripts and styles from this origin only, no inline script,
no framing), so data shown in the UI cannot run as code.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fedinf.errors import AuthError, FedinfError, Forbidden
from fedinf.server.admin import AdminContext
from fedinf.server.errors import error_response, json_response
from fedinf.ui.session import COOKIE, UI_ROLES, Sessions, check_origin, cookie_header

STATIC = Path(__file__).resolve().parent / "static"
_MAX_LOGIN_BODY = 4096
_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class AdminUI:
    """The UI's own endpoints: pages, login, logout and the session view (see the module docstring)."""

    def __init__(self, ctx: AdminContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def _page(self, name: str, status: int = 200, *, message: str = "",
              headers: dict[str, str] | None = None) -> Response:
        text = (STATIC / name).read_text(encoding="utf-8")
        text = text.replace("<!--message-->", f'<p class="error" role="alert">{html.escape(message)}</p>'
                            if message else "")
        return Response(text, status_code=status, media_type="text/html", headers={**_HEADERS, **(headers or {})})

    async def _principal(self, request: Request) -> Any:
        try:
            p = await self.sessions.principal(request, self.ctx.require_access())
        except AuthError:
            return None
        return p if p is not None and any(p.has_role(r) for r in UI_ROLES) else None

    async def index(self, request: Request) -> Response:
        if await self._principal(request) is None:
            clear = {"set-cookie": cookie_header(None, secure=_secure(request), ttl_s=0)} \
                if COOKIE in request.cookies else None
            return self._page("login.html", headers=clear)
        return self._page("app.html")

    async def login(self, request: Request) -> Response:
        try:
            check_origin(request)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > _MAX_LOGIN_BODY:
                raise AuthError("the login form is too large", code="invalid_api_key")
            form = await request.form(max_files=0, max_fields=4)
            key = str(form.get("key") or "").strip()
            await form.close()
            if not key:
                raise AuthError("enter an API key with the admin or auditor role", code="missing_api_key")
            principal = await self.ctx.require_access().authenticator.authenticate(f"Bearer {key}")
            if not any(principal.has_role(r) for r in UI_ROLES):
                raise Forbidden(f"key {principal.key_id} has neither the admin nor the auditor role",
                                code="insufficient_role")
        except FedinfError as exc:
            return self._page("login.html", exc.status_code, message=exc.message)
        session = self.sessions.issue(principal.key_id)
        return RedirectResponse("/ui/", status_code=303, headers={
            **_HEADERS, "set-cookie": cookie_header(session, secure=_secure(request), ttl_s=self.sessions.ttl_s)})

    async def logout(self, request: Request) -> Response:
        session = self.sessions.parse(request.cookies.get(COOKIE))
        try:
            if session is not None:
                self.sessions.check_csrf(request, session)
        except FedinfError as exc:
            return error_response(exc)
        return json_response({"logged_out": True}, headers={
            "set-cookie": cookie_header(None, secure=_secure(request), ttl_s=0), "cache-control": "no-store"})

    async def session(self, request: Request) -> Response:
        try:
            principal = await self.sessions.principal(request, self.ctx.require_access())
            if principal is None:
                raise AuthError("not logged in", code="missing_session")
            principal.require_role(*UI_ROLES)
        except FedinfError as exc:
            return error_response(exc)
        session = self.sessions.parse(request.cookies.get(COOKIE))
        assert session is not None
        return json_response({"key_id": principal.key_id, "tenant": principal.tenant, "name": principal.name,
                              "roles": sorted(principal.roles), "expires_at": session.expires_at,
                              "csrf": self.sessions.csrf_for(session)}, headers={"cache-control": "no-store"})


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def routes(ctx: AdminContext) -> list[BaseRoute]:
    """The UI routes (relative to the ``/ui`` mount); none when ``ui.enabled`` is false."""
    sessions = ctx.sessions
    if sessions is None:
        return []
    ui = AdminUI(ctx, sessions)
    return [
        Route("/", ui.index, methods=["GET"]),
        Route("/login", ui.login, methods=["POST"]),
        Route("/logout", ui.logout, methods=["POST"]),
        Route("/session", ui.session, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="ui-static"),
    ]
