"""The admin HTTP API over real loopback HTTP: keys and tenants CRUD, audit query/verify/export, roles enforced."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from fedinf.access import AccessControl, SqliteAccessStore
from fedinf.audit import Auditor, AuditRecord, ClassificationSummary, DecisionSummary, SqliteAuditStore
from fedinf.server import admin
from fedinf.server.errors import HANDLERS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def server(tmp_path) -> Any:
    access = AccessControl(SqliteAccessStore(tmp_path / "keys.db"))
    auditor = Auditor(lambda: SqliteAuditStore(tmp_path / "audit.db"))
    await auditor.start()
    app = Starlette(routes=[Mount("/admin", routes=admin.routes(admin.AdminContext(access=access, auditor=auditor)))], exception_handlers=HANDLERS)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    admin_secret = await access.ensure_admin_key()
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        yield SimpleNamespace(http=http, access=access, auditor=auditor, admin=admin_secret, tmp=tmp_path)
    srv.should_exit = True
    await task
    await auditor.aclose()
    await access.aclose()


def H(secret: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"} if secret else {}


async def call(s, method: str, path: str, secret: str | None, body: Any = None) -> tuple[int, Any]:
    async with s.http.request(method, path, headers=H(secret), json=body) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def test_keys_crud(server) -> None:
    st, created = await call(server, "POST", "/admin/keys", server.admin, {
        "tenant": "acme", "name": "svc", "roles": ["user"],
        "scopes": {"models": ["local-*"], "zones": ["onprem"], "max_class": "confidential"},
        "limits": {"requests_per_minute": 60, "token_budget": 10000, "budget_period": "day"}})
    assert st == 201 and created["secret"].startswith(f"fk_{created['key_id']}_")
    kid, secret = created["key_id"], created["secret"]
    st, got = await call(server, "GET", f"/admin/keys/{kid}", server.admin)
    assert st == 200 and "secret" not in got and "key_hash" not in got
    assert got["scopes"]["max_class"] == "confidential" and got["limits"]["requests_per_minute"] == 60
    st, lst = await call(server, "GET", "/admin/keys?tenant=acme", server.admin)
    assert [k["key_id"] for k in lst["data"]] == [kid]
    st, who = await call(server, "GET", "/admin/whoami", secret)
    assert st == 200 and who["key_id"] == kid and who["tenant"] == "acme"
    st, upd = await call(server, "PATCH", f"/admin/keys/{kid}", server.admin, {"roles": ["user", "auditor"]})
    assert st == 200 and upd["roles"] == ["user", "auditor"]
    st, rot = await call(server, "POST", f"/admin/keys/{kid}/rotate", server.admin, {})
    assert st == 201 and rot["rotated_from"] == kid
    st, err = await call(server, "GET", "/admin/whoami", secret)
    assert st == 401 and err["error"]["code"] == "revoked_api_key"
    st, _ = await call(server, "DELETE", f"/admin/keys/{rot['key_id']}", server.admin)
    assert st == 200
    st, err = await call(server, "GET", "/admin/whoami", rot["secret"])
    assert st == 401 and err["error"]["code"] == "revoked_api_key"
    st, err = await call(server, "GET", "/admin/keys/000000000000", server.admin)
    assert st == 404 and err["error"]["code"] == "key_not_found"


async def test_bad_input_is_400(server) -> None:
    for body, code in [({"tenant": "acme", "roles": ["root"]}, "invalid_value"),
                       ({"tenant": "acme", "bogus": 1}, "unknown_field"),
                       ({"tenant": "acme", "scopes": {"modles": ["x"]}}, "invalid_value"),
                       ({"tenant": "acme", "limits": {"requests_per_minute": -1}}, "invalid_value"),
                       ({"tenant": "no spaces allowed"}, "invalid_value")]:
        st, err = await call(server, "POST", "/admin/keys", server.admin, body)
        assert (st, err["error"]["code"]) == (400, code), body


async def test_roles_enforced(server) -> None:
    _, user = await server.access.create_key(tenant="acme", roles=("user",))
    _, auditor = await server.access.create_key(tenant="acme", roles=("auditor",))
    matrix = [  # (path, method, admin, auditor, user)
        ("/admin/keys", "GET", 200, 403, 403),
        ("/admin/tenants", "GET", 200, 403, 403),
        ("/admin/audit", "GET", 200, 200, 403),
        ("/admin/audit/verify", "GET", 200, 200, 403),
        ("/admin/audit/export", "GET", 200, 200, 403),
        ("/admin/whoami", "GET", 200, 200, 200),
    ]
    for path, method, *want in matrix:
        for secret, expected in zip((server.admin, auditor, user), want):
            st, body = await call(server, method, path, secret)
            assert st == expected, (path, expected, body)
            if st == 403:
                assert body["error"]["code"] == "role_required"
        st, body = await call(server, method, path, None)
        assert st == 401 and body["error"]["code"] == "missing_api_key"


async def test_tenants(server) -> None:
    st, t = await call(server, "PUT", "/admin/tenants/acme", server.admin, {"description": "Acme", "log_content": True})
    assert st == 200 and t["log_content"] is True
    st, t = await call(server, "PUT", "/admin/tenants/acme", server.admin, {"log_content": False})
    assert t["description"] == "Acme" and t["log_content"] is False
    st, lst = await call(server, "GET", "/admin/tenants", server.admin)
    assert "acme" in [x["name"] for x in lst["data"]]
    st, err = await call(server, "GET", "/admin/tenants/nope", server.admin)
    assert st == 404


async def test_audit_endpoints(server) -> None:
    for i in range(12):
        await server.auditor.write(AuditRecord(
            request_id=f"r{i}", key_id="k1" if i % 2 else "k2", tenant="acme",
            classification=ClassificationSummary(data_class="internal", entities={"EMAIL": 1}),
            decision=DecisionSummary(chosen_model="m", chosen_zone="onprem"), status=200 if i % 3 else 403,
            error_code=None if i % 3 else "policy_violation"))
    st, page = await call(server, "GET", "/admin/audit?key_id=k1&limit=3", server.admin)
    assert st == 200 and [r["seq"] for r in page["data"]] == [2, 4, 6] and page["next_after_seq"] == 6
    st, page = await call(server, "GET", "/admin/audit?outcome=policy_violation", server.admin)
    assert [r["request_id"] for r in page["data"]] == ["r0", "r3", "r6", "r9"]
    st, page = await call(server, "GET", "/admin/audit?order=desc&limit=2", server.admin)
    assert [r["seq"] for r in page["data"]] == [12, 11]
    st, rep = await call(server, "GET", "/admin/audit/verify", server.admin)
    assert st == 200 and rep["ok"] and rep["records"] == 12
    st, rep = await call(server, "GET", f"/admin/audit/verify?anchor=12:{rep['head_hash']}", server.admin)
    assert st == 200 and rep["ok"]
    st, rep = await call(server, "GET", f"/admin/audit/verify?anchor=12:{'0' * 64}", server.admin)
    assert not rep["ok"] and rep["problems"][0]["kind"] == "rewritten"
    st, text = await call(server, "GET", "/admin/audit/export?format=csv&tenant=acme", server.admin)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "seq" and len(rows) == 13
    st, text = await call(server, "GET", "/admin/audit/export", server.admin)
    assert [json.loads(x)["seq"] for x in text.splitlines()] == list(range(1, 13))
    st, err = await call(server, "GET", "/admin/audit?since=yesterday", server.admin)
    assert st == 400
    # tamper: verify reports it
    SqliteAuditStore(server.tmp / "audit.db").execute("DELETE FROM audit_records WHERE seq = 5")
    st, rep = await call(server, "GET", "/admin/audit/verify", server.admin)
    assert not rep["ok"] and rep["problems"][0]["kind"] == "deleted" and rep["problems"][0]["seq"] == 5


async def test_export_pages_through_large_trails(server) -> None:
    await asyncio.gather(*(server.auditor.write(AuditRecord(request_id=f"r{i}", tenant="acme")) for i in range(2100)))
    st, text = await call(server, "GET", "/admin/audit/export?format=jsonl", server.admin)
    seqs = [json.loads(x)["seq"] for x in text.splitlines()]
    assert st == 200 and seqs == list(range(1, 2101))
    st, text = await call(server, "GET", "/admin/audit/export?format=csv&after_seq=2000", server.admin)
    assert len(text.splitlines()) == 101


def test_admin_mounted_in_the_real_app() -> None:
    """Through the server's own app factory: /admin is mounted, needs an admin key, and sees the gateway's audit."""
    import urllib.error
    import urllib.request

    from tests.conftest import gateway_server

    cfg = """
zones: {onprem: {kind: onprem, clearance: restricted}}
models: [{id: m, backend: fake, zone: onprem, license: Apache-2.0}]
"""
    with gateway_server(cfg) as srv:
        def get(path: str, headers: dict[str, str]) -> tuple[int, Any]:
            req = urllib.request.Request(srv.url + path, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        chat = urllib.request.Request(srv.url + "/v1/chat/completions", method="POST", headers={
            **srv.auth, "content-type": "application/json"}, data=json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
        with urllib.request.urlopen(chat, timeout=10) as r:
            rid = r.headers["x-fedinf-request-id"]
        st, keys = get("/admin/keys", srv.auth)
        assert st == 200 and len(keys["data"]) == 1
        st, recs = get("/admin/audit?order=desc&limit=1", srv.auth)
        assert st == 200 and recs["data"][0]["request_id"] == rid
        st, rep = get("/admin/audit/verify", srv.auth)
        assert st == 200 and rep["ok"]
        st, err = get("/admin/keys", {})
        assert st == 401 and err["error"]["code"] == "missing_api_key"
