"""The claims endpoints over real HTTP on loopback (uvicorn + aiohttp), with real access control and audit."""

import asyncio
import json
import socket

import aiohttp
import pytest
import uvicorn

from x12gen import BAD_NPI, Claim837, status277
from fedinf.audit import open_audit_store
from fedinf.audit.store import AuditQuery
from fedinf.config import Config
from fedinf.gateway import Gateway
from fedinf.server.app import create_app
from tests.conftest import audit_rows


def config(state_dir) -> Config:
    return Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"},
                  "cloud": {"kind": "cloud", "clearance": "internal"}},
        "models": [{"id": "fake-cloud", "backend": "fake", "zone": "cloud", "license": "MIT"}],
        "server": {"state_dir": str(state_dir)}, "claims": {"max_document_bytes": 200_000}})


@pytest.fixture
async def served(tmp_path):
    cfg = config(tmp_path)
    gw = Gateway.from_config(cfg)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(gw), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    _, user = await gw.access.create_key(tenant="acme", name="claims-user")
    _, admin = await gw.access.create_key(tenant="acme", name="claims-admin", roles=("admin",))
    yield (f"http://127.0.0.1:{sock.getsockname()[1]}", {"authorization": f"Bearer {user}"},
           {"authorization": f"Bearer {admin}"}, cfg)
    server.should_exit = True
    await task


async def test_validate_derive_review_cycle_is_audited(served):
    url, user, admin, cfg = served
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/claims/validate", data=Claim837().x12()) as r:
            assert r.status == 401
        async with s.post(f"{url}/v1/claims/validate", data=Claim837().x12(), headers=user) as r:
            body = await r.json()
            assert r.status == 200 and body["accepted"] and body["claims"] == 1
            assert r.headers["x-fedinf-data-class"] == "restricted"  # claims are PHI whatever was detected
        doc = {"documents": [{"name": "277", "x12": status277("CLM1001", "A7:562:85")}]}
        async with s.post(f"{url}/v1/claims/derive", json=doc, headers=user) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "role_required"
        async with s.post(f"{url}/v1/claims/derive", json=doc, headers=admin) as r:
            derived = await r.json()
            assert r.status == 200 and derived["added"] == 1
        rule_id = derived["rules"][0]["id"]
        async with s.get(f"{url}/v1/claims/rules?status=candidate", headers=user) as r:
            assert [x["id"] for x in (await r.json())["data"]] == [rule_id]
        bad = Claim837(billing_npi=BAD_NPI).x12()
        async with s.post(f"{url}/v1/claims/validate", data=bad, headers=user) as r:
            assert (await r.json())["accepted"]  # a candidate does not apply
        async with s.post(f"{url}/v1/claims/rules/{rule_id}/approve", json={"note": "ok"}, headers=user) as r:
            assert r.status == 403
        async with s.post(f"{url}/v1/claims/rules/{rule_id}/approve", json={"note": "ok"}, headers=admin) as r:
            assert r.status == 200 and (await r.json())["status"] == "approved"
        async with s.post(f"{url}/v1/claims/validate", json={"x12": bad}, headers=user) as r:
            report = await r.json()
        assert not report["accepted"] and report["rules_applied"] == [rule_id]
        (v,) = report["violations"]
        assert v["rule_id"] == rule_id and v["loop"] == "2010AA" and v["segment_id"] == "NM1" and v["position"] > 0
        form = aiohttp.FormData()
        form.add_field("file", bad.encode(), filename="c.837", content_type="application/edi-x12")
        async with s.post(f"{url}/v1/claims/validate", data=form, headers=user) as r:
            assert r.status == 200 and not (await r.json())["accepted"]
        async with s.post(f"{url}/v1/claims/rules/{rule_id}/retire", headers=admin) as r:
            assert (await r.json())["status"] == "retired"
    await asyncio.to_thread(audit_rows, cfg,  # the five validations above are visible to another connection
                            lambda rows: sum(r.get("endpoint") == "claims.validate" for r in rows) >= 5)
    store = open_audit_store(cfg.audit, state_dir=cfg.server.state_dir)
    try:
        records = store.query(AuditQuery(limit=100))
        validated = [r for r in records if r.get("endpoint") == "claims.validate" and r["status"] == 200]
        assert validated and all(r["classification"]["data_class"] == "restricted" for r in validated)
        assert any(r.get("rules") == [rule_id] for r in validated)
        assert not any("CLM1001" in json.dumps(r) or BAD_NPI in json.dumps(r) for r in records)
        assert store.verify().problems == []  # the chain still verifies with the new field
    finally:
        store.close()


@pytest.mark.parametrize("data,ctype,status,code", [
    (b"", "text/plain", 400, "invalid_x12"),
    (b"hello", "text/plain", 400, "invalid_x12"),
    (b"\x00\x01\x02binary", "application/octet-stream", 400, "invalid_x12"),
    (b"{\"x12\": 5}", "application/json", 400, "invalid_body"),
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"ISA" + b"x" * 300_000, "text/plain", 413, "payload_too_large"),
])
async def test_bad_input_is_a_clear_4xx(served, data, ctype, status, code):
    url, user, _, _ = served
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/claims/validate", data=data, headers={**user, "content-type": ctype}) as r:
            body = await r.json()
    assert r.status == status and body["error"]["code"] == code


async def test_malformed_x12_names_the_segment(served):
    url, user, _, _ = served
    text = Claim837().x12().replace("GS*HC", "GS*HC", 1)
    broken = text.replace("ISA*00*", "ISA*00", 1)  # a broken ISA: the separators cannot be read
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/claims/validate", data=broken, headers=user) as r:
            body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "invalid_x12"
    assert body["error"]["fedinf"]["segment_index"] == 1


async def test_unknown_rule_and_action(served):
    url, _, admin, _ = served
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/v1/claims/rules/Rnope", headers=admin) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "rule_not_found"
        async with s.post(f"{url}/v1/claims/rules/Rnope/bless", headers=admin) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_action"


async def test_refusals_are_audited(served):
    url, _, _, cfg = served
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/claims/validate", data=Claim837().x12(),
                          headers={"authorization": "Bearer sk-nope"}) as r:
            assert r.status == 401
    rows = await asyncio.to_thread(audit_rows, cfg, lambda rows: any(r.get("endpoint") == "claims.validate"
                                                                      for r in rows), limit=50)
    recs = [r for r in rows if r.get("endpoint") == "claims.validate"]
    assert recs and recs[-1]["status"] == 401
