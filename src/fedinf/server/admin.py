"""The admin HTTP API, mounted under ``/admin`` (JSON; designed for the admin web UI as well as scripts).

Every endpoint needs an API key; keys and tenants need the ``admin`` role, the audit endpoints ``admin`` or
``auditor``. Errors are FedinfErrors, mapped to OpenAI's error shape by the server's single handler.

    GET    /admin/whoami                      the calling key
    GET    /admin/keys?tenant=&all=true       list keys (never secrets)
    POST   /admin/keys                        create: {tenant, name, roles, scopes, limits, expires_at} -> secret once
    GET    /admin/keys/{key_id}               one key
    PATCH  /admin/keys/{key_id}               change name, roles, scopes, limits, expires_at
    POST   /admin/keys/{key_id}/rotate        {grace_s} -> successor key and its secret
    DELETE /admin/keys/{key_id}               revoke
    GET    /admin/tenants                     list tenants
    GET    /admin/tenants/{name}              one tenant
    PUT    /admin/tenants/{name}              create/update: {description, log_content}
    GET    /admin/audit?key_id=&tenant=&model=&zone=&data_class=&since=&until=&outcome=&after_seq=&before_seq=
                                              &limit=&order=
    GET    /admin/audit/verify?anchor=SEQ:HASH&from=SEQ:HASH   chain verification (anchors repeatable; from:
                                              check incrementally from a record verified earlier)
    GET    /admin/audit/export?format=jsonl|csv&<filters>   streamed
    GET    /admin/network                     zones, models (license verdicts, capabilities), replica health, routes
    GET    /admin/tasks                       the task registry and recent batch runs (``fedinf run`` progress)

Browsers (the admin UI under ``/ui``) authenticate with the UI's session cookie instead of a key; state-changing
requests then also need its CSRF token (see :mod:`fedinf.ui.session`). An ``Authorization`` header always wins.

The API is built over an :class:`AdminContext`: the :class:`~fedinf.access.AccessControl` (None: keys are off, the
API answers 503), the audit sink (not a durable :class:`~fedinf.audit.Auditor`: the audit endpoints answer 503),
and the gateway's network, pool, config and tasks.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fedinf.access import AccessControl, Limits, Principal, Scopes, Tenant
from fedinf.access.keys import check_name
from fedinf.audit import AuditQuery, AuditSink, AuditStore, Auditor
from fedinf.audit.export import CSV_COLUMNS, csv_line, csv_row, jsonl_line, parse_when
from fedinf.errors import NotFound, RequestError, ServiceUnavailable

if TYPE_CHECKING:
    from fedinf.config import Config
    from fedinf.gateway import Gateway
    from fedinf.network import Network
    from fedinf.routing.pool import BackendPool
    from fedinf.tasks import TaskRegistry
    from fedinf.ui.session import Sessions

_KEY_FIELDS = {"tenant", "name", "roles", "scopes", "limits", "expires_at"}
_PATCH_FIELDS = {"name", "roles", "scopes", "limits", "expires_at"}
_FILTERS = ("key_id", "tenant", "model", "zone", "data_class", "outcome", "request_id")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False), status_code=status,
                    media_type="application/json")


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise RequestError("the request body must be JSON", code="invalid_body") from None
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object", code="invalid_body")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RequestError(f"unknown field(s) {unknown}; allowed: {sorted(allowed)}", code="unknown_field",
                           param=unknown[0])
    return data


def _parsed(data: dict[str, Any]) -> dict[str, Any]:
    """Validated key fields (ValueError -> 400)."""
    out: dict[str, Any] = {}
    try:
        if "scopes" in data:
            extra = set(data["scopes"] or {}) - set(Scopes().to_dict())
            if extra:
                raise ValueError(f"unknown scope field(s) {sorted(extra)}")
            out["scopes"] = Scopes.from_dict(data["scopes"])
        if "limits" in data:
            extra = set(data["limits"] or {}) - set(Limits().to_dict())
            if extra:
                raise ValueError(f"unknown limit field(s) {sorted(extra)}")
            out["limits"] = Limits.from_dict(data["limits"])
        if "roles" in data:
            from fedinf.access import ROLES
            roles = tuple(data["roles"] or ())
            if not roles or any(r not in ROLES for r in roles):
                raise ValueError(f"roles must be a non-empty list of {', '.join(ROLES)}")
            out["roles"] = roles
        if "name" in data:
            out["name"] = str(data["name"])
        if "expires_at" in data:
            out["expires_at"] = None if data["expires_at"] is None else float(data["expires_at"])
    except (ValueError, TypeError) as exc:
        raise RequestError(str(exc), code="invalid_value") from None
    return out


@dataclass
class AdminContext:
    """What the admin API (and the UI over it) works on. Built from a gateway with :meth:`of`; tests may give only
    ``access`` and ``auditor`` (the network and task endpoints then answer 503)."""

    access: AccessControl | None
    auditor: AuditSink
    sessions: Sessions | None = None  # the UI's login sessions (None: API keys only)
    network: Network | None = None
    pool: BackendPool | None = None
    config: Config | None = None
    tasks: TaskRegistry | None = None

    @classmethod
    def of(cls, gateway: Gateway) -> AdminContext:
        return cls(access=gateway.access, auditor=gateway.auditor, sessions=gateway.ui_sessions(),
                   network=gateway.network, pool=gateway.pool, config=gateway.config, tasks=gateway.tasks)

    def require_access(self) -> AccessControl:
        if self.access is None:
            raise ServiceUnavailable("access control is not configured on this server", code="admin_unavailable")
        return self.access


class AdminAPI:
    """The admin endpoints (see the module docstring)."""

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx
        self.sessions = ctx.sessions

    def access(self) -> AccessControl:
        return self.ctx.require_access()

    async def _principal(self, request: Request, *roles: str) -> Principal:
        access = self.access()
        auth = request.headers.get("authorization") or request.headers.get("x-api-key")
        p = None
        if not auth and self.sessions is not None:
            p = await self.sessions.principal(request, access)
        if p is None:
            p = await access.authenticator.authenticate(auth)
        if roles:
            p.require_role(*roles)
        return p

    async def whoami(self, request: Request) -> Response:
        p = await self._principal(request)
        return _json({"key_id": p.key_id, "tenant": p.tenant, "name": p.name, "roles": sorted(p.roles),
                      "scopes": p.scopes.to_dict(), "limits": p.limits.to_dict()})

    async def keys(self, request: Request) -> Response:
        await self._principal(request, "admin")
        access = self.access()
        if request.method == "GET":
            q = request.query_params
            recs = await access.list_keys(tenant=q.get("tenant"), include_inactive=q.get("all") in ("1", "true"))
            return _json({"data": [r.to_dict() for r in recs]})
        data = await _body(request, _KEY_FIELDS)
        tenant = data.get("tenant") or "default"
        fields = _parsed(data)
        try:
            rec, secret = await access.create_key(tenant=str(tenant), **fields)
        except ValueError as exc:
            raise RequestError(str(exc), code="invalid_value") from None
        return _json({**rec.to_dict(), "secret": secret}, 201)

    async def key(self, request: Request) -> Response:
        await self._principal(request, "admin")
        access = self.access()
        key_id = request.path_params["key_id"]
        if request.method == "GET":
            return _json((await access.get_key(key_id)).to_dict())
        if request.method == "DELETE":
            return _json((await access.revoke_key(key_id)).to_dict())
        fields = _parsed(await _body(request, _PATCH_FIELDS))
        return _json((await access.update_key(key_id, **fields)).to_dict())

    async def rotate(self, request: Request) -> Response:
        await self._principal(request, "admin")
        data = await _body(request, {"grace_s"})
        try:
            grace = float(data.get("grace_s") or 0.0)
        except (TypeError, ValueError):
            raise RequestError("grace_s must be a number of seconds", code="invalid_value") from None
        rec, secret = await self.access().rotate_key(request.path_params["key_id"], grace_s=grace)
        return _json({**rec.to_dict(), "secret": secret}, 201)

    async def tenants(self, request: Request) -> Response:
        await self._principal(request, "admin")
        return _json({"data": [t.to_dict() for t in await self.access().list_tenants()]})

    async def tenant(self, request: Request) -> Response:
        await self._principal(request, "admin")
        access = self.access()
        name = request.path_params["name"]
        if request.method == "GET":
            return _json((await access.get_tenant(name)).to_dict())
        data = await _body(request, {"description", "log_content"})
        try:
            check_name("tenant", name)
        except ValueError as exc:
            raise RequestError(str(exc), code="invalid_value") from None
        try:
            cur = await access.get_tenant(name)
        except NotFound:
            cur = Tenant(name=name)
        t = Tenant(name=name, description=str(data.get("description", cur.description)),
                   log_content=bool(data.get("log_content", cur.log_content)), created_at=cur.created_at)
        return _json((await access.upsert_tenant(t)).to_dict())

    def _auditor(self) -> Auditor:
        if not isinstance(self.ctx.auditor, Auditor):
            raise ServiceUnavailable("the audit trail is not enabled on this server", code="audit_disabled")
        return self.ctx.auditor

    async def audit(self, request: Request) -> Response:
        await self._principal(request, "admin", "auditor")
        q = _audit_query(request)
        recs = await self._auditor().read(lambda s: s.query(q))
        return _json({"data": recs, "next_after_seq": recs[-1]["seq"] if recs and not q.descending else None})

    async def verify(self, request: Request) -> Response:
        await self._principal(request, "admin", "auditor")
        anchors = dict(_anchor(a, "anchor") for a in request.query_params.getlist("anchor"))
        begin = _anchor(request.query_params["from"], "from") if request.query_params.get("from") else None
        report = await self._auditor().read(lambda s: s.verify(anchors, begin))
        return _json(report.to_dict())

    async def export(self, request: Request) -> Response:
        await self._principal(request, "admin", "auditor")
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise RequestError("format must be jsonl or csv", code="invalid_value", param="format")
        q = _audit_query(request)
        aud = self._auditor()

        async def body() -> Any:  # page by page: memory stays flat however large the trail is
            if fmt == "csv":
                yield csv_line(list(CSV_COLUMNS)).encode()
            after = q.after_seq
            while True:
                page_q = replace(q, after_seq=after, limit=1000, descending=False)
                page = await aud.read(functools.partial(_query, q=page_q))
                if page:
                    yield "".join(jsonl_line(r) if fmt == "jsonl" else csv_line(csv_row(r)) for r in page).encode()
                if len(page) < 1000:
                    return
                after = page[-1]["seq"]
        media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
        return StreamingResponse(body(), media_type=media,
                                 headers={"content-disposition": f'attachment; filename="audit.{fmt}"'})


    async def network(self, request: Request) -> Response:
        await self._principal(request, "admin", "auditor")
        network, pool = self.ctx.network, self.ctx.pool
        if network is None or pool is None:
            raise ServiceUnavailable("this server has no model network", code="admin_unavailable")
        view = network.describe()
        status = pool.status()
        for zone in view["zones"]:
            for model in zone["models"]:
                model["replicas"] = [{"name": name, **rep} for name, rep in status.get(model["id"], {}).items()]
        return _json(view)

    async def tasks(self, request: Request) -> Response:
        await self._principal(request, "admin", "auditor")
        from fedinf.tasks.progress import list_batches

        config, registry = self.ctx.config, self.ctx.tasks
        if config is None or registry is None:
            raise ServiceUnavailable("this server has no task configuration", code="admin_unavailable")
        batches = await asyncio.to_thread(list_batches, config.server.state_dir)
        return _json({"tasks": [t.describe() for t in registry], "batches": batches})


def routes(ctx: AdminContext) -> list[Route]:
    """The admin routes (relative to the ``/admin`` mount)."""
    api = AdminAPI(ctx)
    return [
        Route("/whoami", api.whoami, methods=["GET"]),
        Route("/keys", api.keys, methods=["GET", "POST"]),
        Route("/keys/{key_id}", api.key, methods=["GET", "PATCH", "DELETE"]),
        Route("/keys/{key_id}/rotate", api.rotate, methods=["POST"]),
        Route("/tenants", api.tenants, methods=["GET"]),
        Route("/tenants/{name}", api.tenant, methods=["GET", "PUT"]),
        Route("/audit", api.audit, methods=["GET"]),
        Route("/audit/verify", api.verify, methods=["GET"]),
        Route("/audit/export", api.export, methods=["GET"]),
        Route("/network", api.network, methods=["GET"]),
        Route("/tasks", api.tasks, methods=["GET"]),
    ]




def _query(store: AuditStore, *, q: AuditQuery) -> list[dict[str, Any]]:
    return store.query(q)


def _audit_query(request: Request) -> AuditQuery:
    qp = request.query_params
    try:
        return AuditQuery(**{f: qp.get(f) for f in _FILTERS}, since=parse_when(qp.get("since")),
                          until=parse_when(qp.get("until")),
                          after_seq=int(qp["after_seq"]) if qp.get("after_seq") else None,
                          before_seq=int(qp["before_seq"]) if qp.get("before_seq") else None,
                          limit=max(1, min(int(qp.get("limit", 100)), 1000)), descending=qp.get("order") == "desc")
    except ValueError as exc:
        raise RequestError(str(exc), code="invalid_value") from None


def _anchor(text: str, param: str) -> tuple[int, str]:
    seq, _, h = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(h) != 64:
        raise RequestError(f"{param} must be SEQ:HASH (64 hex characters)", code="invalid_value", param=param)
    return int(seq), h.lower()
