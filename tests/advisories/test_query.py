"""Answers over ingested advisories (real retrieval service on SQLite, hashing embedder), merging, and the HTTP API."""

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest
import uvicorn
import yaml

from fedinf.access.principal import Scopes
from fedinf.advisories.ingest import ingest, merge_files
from fedinf.data_class import DataClass
from fedinf.advisories.query import affected, fixed_version, parse_blocks, parse_requirements
from fedinf.config import Config
from fedinf.errors import RequestError
from fedinf.gateway import Gateway
from fedinf.privacy import Classifier
from fedinf.retrieval import HashingEmbedder, Retrieval, render_osv
from fedinf.retrieval.store import open_store
from fedinf.server.app import create_app
from tests.conftest import audit_rows

OSV = {"id": "PYSEC-2021-11", "modified": "2021-04-06T18:40:00Z", "aliases": ["CVE-2021-21416"],
       "details": "django-registration before 3.1.2 leaks data.",
       "affected": [{"package": {"name": "django-registration", "ecosystem": "PyPI"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.2"}]}]}]}
PROSE = (b"CVE-2023-1111: Foolib before 2.4.1 and 3.x before 3.0.2 allows remote code execution in this Python "
         b"package (pip install foolib).")


@pytest.fixture
async def rt(tmp_path):
    service = Retrieval(store=open_store(f"sqlite:///{tmp_path}/rt.db"), embedder=HashingEmbedder(),
                        classifier=Classifier.from_config())
    yield service
    await service.aclose()


def test_parse_requirements_and_blocks():
    wanted = parse_requirements("# pinned\nDjango==3.2.1  # web\nrequests>=2.0\n-r other.txt\nfoo 1.2\nbar@v0.3.1\n")
    assert [(w.name, w.version) for w in wanted] == [("Django", "3.2.1"), ("requests", None), ("foo", "1.2"),
                                                     ("bar", "0.3.1")]
    with pytest.raises(RequestError) as exc:
        parse_requirements("ok==1\n!!! not a requirement")
    assert "line 2" in exc.value.message
    text = render_osv(OSV)
    (name, eco, entry, start, end), = parse_blocks(text)
    assert (name, eco) == ("django-registration", "PyPI")
    assert entry["ranges"] == OSV["affected"][0]["ranges"]
    assert text[start:end].startswith("affected package: django-registration")


async def test_affected_and_fixed_with_citations(rt):
    rows = await ingest(rt, "adv", [("PYSEC-2021-11.yaml", yaml.safe_dump(OSV).encode()), ("foolib.txt", PROSE)])
    assert [r["osv_id"] for r in rows] == ["PYSEC-2021-11", "CVE-2023-1111"]
    again = await ingest(rt, "adv", [("PYSEC-2021-11.yaml", yaml.safe_dump(OSV).encode())])
    assert again[0]["created"] is False
    wanted = parse_requirements("django-registration==3.1.1\nfoolib==3.0.2\nFOOLIB==3.0.1\nunknown==1.0\n"
                                "django_registration>=3\n")
    ans = await affected(rt, "adv", wanted)
    by = [(a["package"], a["status"]) for a in ans["answers"]]
    assert by == [("django-registration", "affected"), ("foolib", "not_affected"), ("FOOLIB", "affected"),
                  ("unknown", "no_advisories"), ("django_registration", "unpinned")]
    assert ans["affected"] == ["FOOLIB", "django-registration"] and ans["data_class"] == "public"
    first = ans["answers"][0]
    assert first["cited"] and first["advisories"][0]["upgrade_to"] == "3.1.2"
    assert first["advisories"][0]["aliases"] == ["CVE-2021-21416"]
    cite = first["advisories"][0]["citation"]
    hits = await rt.search("adv", "affected package django-registration", k=5, mode="bm25")
    doc_text = next(h for h in hits.hits if h.document_id == cite["document_id"] and h.start <= cite["start"])
    assert doc_text.text[cite["start"] - doc_text.start:].startswith("affected package: django-registration")
    assert ans["answers"][2]["advisories"][0]["upgrade_to"] == "3.0.2"
    unknown = ans["answers"][3]
    assert unknown["cited"] is False and "nothing to cite" in unknown["note"]
    fx = await fixed_version(rt, "adv", "foolib", version="2.0")
    assert fx["upgrade_to"] == "2.4.1" and fx["cited"]
    none = await fixed_version(rt, "adv", "foolib", version="9.9")
    assert none["cited"] is False and "nothing to cite" in none["note"]


async def test_internal_note_raises_the_answer_class(rt):
    await rt.create_collection("mixed", data_class="public")
    note = dict(OSV, id="x_internal-1", details="Internal: our build server pins django-registration.")
    await ingest(rt, "mixed", [("note.json", json.dumps(note).encode())], data_class="internal")
    ans = await affected(rt, "mixed", parse_requirements("django-registration==3.0"))
    assert ans["data_class"] == "internal" and ans["answers"][0]["status"] == "affected"


async def test_merge_sources_reports_conflicts():
    merged = await merge_files([
        ("nvd.txt", b"CVE-2023-1111: Foolib before 2.4.1 in PyPI. CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"),
        ("ghsa.json", json.dumps({"id": "GHSA-jfp7-4j67-8r3q", "modified": "2023-01-01T00:00:00Z",
                                  "aliases": ["CVE-2023-1111"], "summary": "Foolib RCE",
                                  "severity": [{"type": "CVSS_V3",
                                                "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                                  "affected": [{"package": {"name": "Foolib", "ecosystem": "PyPI"},
                                                "ranges": [{"type": "ECOSYSTEM", "events": [
                                                    {"introduced": "0"}, {"fixed": "2.4.2"}]}]}]}).encode()),
        ("other.txt", b"CVE-2020-0001: barlib before 1.0 in PyPI."),
    ], modified="2026-01-01T00:00:00Z")
    assert len(merged) == 2
    rec, conflicts = merged[0]["osv"], merged[0]["conflicts"]
    assert rec["id"] == "GHSA-jfp7-4j67-8r3q" and rec["aliases"] == ["CVE-2023-1111"]
    assert rec["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "2.4.2"}]
    assert {c["field"] for c in conflicts} == {"affected[foolib].fixed_or_last_affected", "severity[CVSS_V3]"}
    assert rec["severity"][0]["score"].endswith("C:H/I:H/A:H")  # the highest score is kept
    assert merged[0]["sources"] == ["nvd.txt", "ghsa.json"]


async def test_http_api(tmp_path: Path):
    cfg = Config.model_validate({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"}},
        "models": [{"id": "fake", "backend": "fake", "zone": "onprem", "license": "MIT"}],
        "routes": {"auto": ["fake"]}, "retrieval": {"embedder": "hashing"},
        "server": {"state_dir": str(tmp_path)}})
    gw = Gateway.from_config(cfg)
    await ingest(gw.retrieval_service(), "adv", [("PYSEC-2021-11.json", json.dumps(OSV).encode())])
    note = dict(OSV, id="x_note-1", details="our internal note")
    await ingest(gw.retrieval_service(), "notes", [("note.json", json.dumps(note).encode())], data_class="internal")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(gw), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    _, secret = await gw.access.create_key(tenant="acme", name="adv-test")
    url, headers = f"http://127.0.0.1:{sock.getsockname()[1]}", {"authorization": f"Bearer {secret}"}
    _, narrow = await gw.access.create_key(tenant="acme", name="narrow",
                                           scopes=Scopes(collections=("adv",), max_class=DataClass.PUBLIC))
    narrow_headers = {"authorization": f"Bearer {narrow}"}
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{url}/v1/advisories/affected", headers=headers,
                              json={"collections": "adv", "requirements": "django-registration==3.1.1"}) as r:
                body = await r.json()
                assert r.status == 200 and body["affected"] == ["django-registration"]
                assert r.headers["x-fedinf-data-class"] == "public"
            async with s.post(f"{url}/v1/advisories/fixed", headers=headers,
                              json={"collection": "adv", "package": "django-registration"}) as r:
                assert (await r.json())["upgrade_to"] == "3.1.2"
            async with s.post(f"{url}/v1/advisories/merge", headers=headers,
                              json={"documents": [{"name": "a", "text": "CVE-2023-1234 foo before 1.0 (PyPI)"}]}) as r:
                assert r.status == 200 and (await r.json())["data"][0]["osv"]["id"] == "CVE-2023-1234"
            for bad in ({"collections": "adv"}, {"collections": [], "packages": []}, [1],
                        {"collections": "adv", "packages": [{"name": 3}]},
                        {"collections": "adv", "requirements": "?? nope"}):
                async with s.post(f"{url}/v1/advisories/affected", headers=headers, json=bad) as r:
                    assert r.status == 400, bad
                    assert (await r.json())["error"]["code"] in ("invalid_body", "invalid_requirements")
            async with s.post(f"{url}/v1/advisories/affected", headers=headers,
                              json={"collections": "nope", "packages": [{"name": "x", "version": "1"}]}) as r:
                assert r.status == 404
            async with s.post(f"{url}/v1/advisories/affected",
                              json={"collections": "adv", "requirements": "x==1"}) as r:
                assert r.status == 401
            ask = {"collections": ["notes"], "requirements": "django-registration==3.0"}
            async with s.post(f"{url}/v1/advisories/affected", headers=headers, json=ask) as r:
                assert r.status == 200 and r.headers["x-fedinf-data-class"] == "internal"
            async with s.post(f"{url}/v1/advisories/affected", headers=narrow_headers, json=ask) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "collection_not_allowed"
            async with s.post(f"{url}/v1/advisories/fixed", headers=narrow_headers,
                              json={"collection": "adv", "package": "django-registration"}) as r:
                assert r.status == 200
        def seen(rows: list[dict]) -> bool:  # another connection sees them once the batched inserts ran
            mine = [r for r in rows if r["endpoint"].startswith("advisories.")]
            return {"advisories.affected", "advisories.fixed", "advisories.merge"} <= {r["endpoint"] for r in mine} \
                and any(r["model_requested"] == "notes" and r["status"] == 403 for r in mine)

        rows = await asyncio.to_thread(audit_rows, cfg, seen, limit=1000)
        mine = [r for r in rows if r["endpoint"].startswith("advisories.")]
        assert {"advisories.affected", "advisories.fixed", "advisories.merge"} <= {r["endpoint"] for r in mine}
        assert any(r["model_requested"] == "notes" and r["status"] == 403 for r in mine)
    finally:
        server.should_exit = True
        await task  # the app's lifespan closes the gateway
