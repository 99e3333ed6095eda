"""The pipeline's audit step through the real Gateway (fake in-process backend): one durable record per request,
with the classification summary and decision, and never the content or entity values."""

from __future__ import annotations

from fedinf.access import AccessControl, Scopes, SqliteAccessStore
from fedinf.audit import AuditQuery, Auditor, SqliteAuditStore
from fedinf.config import Config
from fedinf.data_class import DataClass
from fedinf.errors import AuthError


def config() -> Config:
    return Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"},
                  "cloud": {"kind": "cloud", "clearance": "public"}},
        "models": [
            {"id": "local", "backend": "fake", "zone": "onprem", "license": "Apache-2.0"},
            {"id": "remote", "backend": "fake", "zone": "cloud", "license": "Apache-2.0"},
        ],
        "routes": {"auto": ["remote", "local"]},
    })


async def test_records_written_by_pipeline(tmp_path) -> None:
    from fedinf.gateway import Gateway

    access = AccessControl(SqliteAccessStore(tmp_path / "keys.db"))
    auditor = Auditor(lambda: SqliteAuditStore(tmp_path / "audit.db"))
    _, secret = await access.create_key(tenant="acme", scopes=Scopes(max_class=DataClass.CONFIDENTIAL))
    email = "jane.doe@example.com"
    async with Gateway.from_config(config(), access=access, auditor=auditor) as gw:
        reply = await gw.chat({"model": "auto", "messages": [{"role": "user", "content": f"mail {email} now"}]},
                              authorization=f"Bearer {secret}")
        assert reply["model"] == "local"  # the email keeps it away from the public-only cloud zone
        try:
            await gw.chat({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, authorization="Bearer fk_bad")
        except AuthError:
            pass
        else:
            raise AssertionError("a bad key was accepted")
    store = SqliteAuditStore(tmp_path / "audit.db")
    recs = store.query(AuditQuery(limit=10))
    assert len(recs) == 2 and store.verify().ok
    ok, bad = recs
    assert ok["tenant"] == "acme" and ok["status"] == 200 and ok["model_requested"] == "auto"
    assert ok["decision"]["chosen_model"] == "local" and ok["decision"]["chosen_zone"] == "onprem"
    assert "remote" in ok["decision"]["excluded"] and ok["classification"]["entities"]
    assert ok["classification"]["data_class"] != "public"
    assert ok["decision"]["attempts"][0]["outcome"] == "ok" and ok["latency_ms"] > 0
    assert bad["status"] == 401 and bad["error_code"] == "invalid_api_key" and bad["key_id"] is None
    raw = (tmp_path / "audit.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("audit.db-*"))
    assert email.encode() not in raw and b"jane" not in raw and b"mail " not in raw
