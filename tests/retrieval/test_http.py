"""Retrieval over real loopback HTTP: /v1/collections, /v1/embeddings (official openai SDK) and chat requests that
name collections - with data classes inherited from what was retrieved (fail closed) and audit records."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import audit_rows, gateway_server

ADVISORY = ("PYSEC-2099-7: libdemo before 4.2.1 allows remote attackers to read arbitrary files through crafted "
            "archive paths. The fixed version is 4.2.1; upgrade libdemo to 4.2.1 or later.")
NOTE = ("Internal incident note: Dr. Alice Brennan (alice.brennan@example.com, +1 415 555 0199) says the billing "
        "cluster still runs libdemo 4.1.0 archive extraction; patch before Friday.")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    lt = LoopThread()
    up = FakeOpenAIUpstream(reply_tokens=8)
    lt.run(up.start())
    config = f"""
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: local-a, backend: fake, zone: onprem, license: Apache-2.0, options: {{reply: "Upgrade to 4.2.1 [1]."}}}}
  - {{id: cloud-b, backend: fake, zone: cloud, license: proprietary-api, options: {{reply: "Use 4.2.1 [1]."}}}}
  - {{id: cloud-silent, backend: fake, zone: cloud, license: proprietary-api, options: {{reply: "No idea."}}}}
  - {{id: cloud-embed, backend: openai, zone: cloud, license: proprietary-api, capabilities: [embeddings],
      endpoints: [{{url: "{up.url}"}}]}}
routes:
  cloudonly: [cloud-b]
  silent: [cloud-silent]
retrieval:
  embedder: hashing
"""
    with gateway_server(config) as srv:
        http = httpx.Client(base_url=srv.url, headers=srv.auth, timeout=30)
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key=srv.key, max_retries=0, timeout=30)
        yield {"srv": srv, "http": http, "client": client, "up": up}
        http.close()
    lt.run(up.stop())
    lt.stop()


def _setup(http: httpx.Client, name: str, *docs: tuple[str, str]) -> list[dict[str, Any]]:
    r = http.post("/v1/collections", json={"name": name, "description": "test"})
    assert r.status_code == 201, r.text
    out = []
    for doc_name, text in docs:
        r = http.post(f"/v1/collections/{name}/documents", json={"text": text, "name": doc_name})
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def test_collection_lifecycle_and_search(stack: dict[str, Any]) -> None:
    http = stack["http"]
    pub, = _setup(http, "life", ("adv.txt", ADVISORY))
    assert pub["data_class"] == "public" and pub["chunks"] == 1
    again = http.post("/v1/collections/life/documents", json={"text": ADVISORY, "name": "dup.txt"})
    assert again.status_code == 200 and again.json()["created"] is False
    files = {"file": ("osv.json", b'{"id": "GHSA-1", "details": "x before 2 bad", "affected": []}', "application/json")}
    up = http.post("/v1/collections/life/documents", files=files, data={"data_class": "internal"})
    assert up.status_code == 201 and up.json()["kind"] == "osv" and up.json()["data_class"] == "internal"
    r = http.post("/v1/collections/life/search", json={"query": "which libdemo version is fixed?", "k": 2})
    assert r.status_code == 200, r.text
    hit = r.json()["data"][0]
    assert hit["document"] == "adv.txt" and ADVISORY[hit["start"]:hit["end"]] == hit["text"]
    assert r.headers["x-fedinf-data-class"] in ("public", "internal")
    listed = http.get("/v1/collections/life/documents").json()
    assert {d["name"] for d in listed["data"]} == {"adv.txt", "osv.json"}
    assert "life" in {c["name"] for c in http.get("/v1/collections").json()["data"]}
    info = http.get("/v1/collections/life").json()
    assert info["documents"] == 2 and info["data_class"] == "internal"
    assert http.delete(f"/v1/collections/life/documents/{pub['id']}").json()["deleted"] is True
    assert http.get(f"/v1/collections/life/documents/{pub['id']}").status_code == 404
    assert http.delete("/v1/collections/life").status_code == 200
    assert http.get("/v1/collections/life").status_code == 404


@pytest.mark.parametrize("method,path,body,status,code", [
    ("post", "/v1/collections", {"name": "bad name"}, 400, "invalid_collection_name"),
    ("post", "/v1/collections", {}, 400, "missing_field"),
    ("post", "/v1/collections", {"name": "x", "colour": 1}, 400, "invalid_body"),
    ("post", "/v1/collections", {"name": "x", "data_class": "topsecret"}, 400, "invalid_data_class"),
    ("post", "/v1/collections/nope/search", {"query": "q"}, 404, "collection_not_found"),
    ("post", "/v1/collections/nope/documents", {"text": "t"}, 404, "collection_not_found"),
    ("get", "/v1/collections/nope/documents/doc-x", None, 404, "collection_not_found"),
])
def test_bad_requests_get_clear_errors(stack: dict[str, Any], method: str, path: str, body: Any, status: int,
                                       code: str) -> None:
    r = getattr(stack["http"], method)(path, **({"json": body} if body is not None else {}))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_ugly_bodies(stack: dict[str, Any]) -> None:
    http = stack["http"]
    _setup(http, "ugly")
    for body in ({"text": ""}, {"text": 5}, {"json": None}, {"file": {"content_base64": "!!"}}, {"text": "a", "html": "b"},
                 {"file": {"name": "x.pdf", "content_base64": base64.b64encode(b"%PDF-1.4 broken").decode()}}):
        r = http.post("/v1/collections/ugly/documents", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
    r = http.post("/v1/collections/ugly/documents", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert http.post("/v1/collections/ugly/search", json={"query": "q", "k": "5"}).status_code == 400
    assert http.post("/v1/collections/ugly/search", json={"query": "q", "k": 1000}).status_code == 400
    assert http.get("/v1/collections/ugly/documents?limit=abc").status_code == 400
    assert http.post("/v1/collections", json={"name": "ugly"}).status_code == 409


def test_chat_with_public_sources_may_go_to_the_cloud_and_cites(stack: dict[str, Any]) -> None:
    http, client = stack["http"], stack["client"]
    _setup(http, "pubonly", ("adv.txt", ADVISORY))
    raw = client.chat.completions.with_raw_response.create(
        model="cloudonly", messages=[{"role": "user", "content": "Which libdemo version fixes the archive bug?"}],
        extra_body={"fedinf": {"collections": ["pubonly"]}})
    out = raw.parse()
    assert raw.headers["x-fedinf-model"] == "cloud-b" and raw.headers["x-fedinf-sources"] == "1"
    extra = out.model_extra["fedinf"]
    assert extra["cited"] is True and extra["citations"][0]["document"] == "adv.txt"
    c = extra["citations"][0]
    assert c["start"] == 0 and c["end"] == len(ADVISORY) and c["chunk"] == 0 and c["ref"] == 1
    # the model saw the sources; the upstream body never carries fedinf's namespace
    silent = client.chat.completions.create(
        model="silent", messages=[{"role": "user", "content": "Which libdemo version fixes the archive bug?"}],
        extra_body={"fedinf": {"collections": ["pubonly"]}})
    assert silent.model_extra["fedinf"]["cited"] is False and silent.model_extra["fedinf"]["citations"] == []


def test_confidential_note_makes_a_retrieving_chat_ineligible_for_the_cloud(stack: dict[str, Any]) -> None:
    http, client = stack["http"], stack["client"]
    _setup(http, "mixed", ("adv.txt", ADVISORY), ("note.txt", NOTE))
    assert http.get("/v1/collections/mixed").json()["data_class"] in ("confidential", "restricted")
    question = "Is the billing cluster affected by the libdemo archive extraction bug?"
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="cloudonly", messages=[{"role": "user", "content": question}],
                                       extra_body={"fedinf": {"collections": ["mixed"], "top_k": 2}})
    assert info.value.body["code"] == "policy_violation"
    # the same question without retrieval is public and may go to the cloud
    ok = client.chat.completions.create(model="cloudonly", messages=[{"role": "user", "content": question}])
    assert ok.choices[0].message.content
    # on-prem may read it, and the answer's class says so
    raw = client.chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": question}],
        extra_body={"fedinf": {"collections": ["mixed"], "top_k": 2}})
    assert raw.headers["x-fedinf-data-class"] in ("confidential", "restricted")
    assert raw.parse().model_extra["fedinf"]["retrieved_class"] in ("confidential", "restricted")


def test_streamed_answer_carries_citations_in_its_last_chunk(stack: dict[str, Any]) -> None:
    http, client = stack["http"], stack["client"]
    _setup(http, "streamed", ("adv.txt", ADVISORY))
    stream = client.chat.completions.create(
        model="cloudonly", stream=True, messages=[{"role": "user", "content": "fixed libdemo version?"}],
        extra_body={"fedinf": {"collections": ["streamed"]}})
    extras = [ch.model_extra.get("fedinf") for ch in stream if ch.model_extra and ch.model_extra.get("fedinf")]
    assert extras and extras[-1]["cited"] is True and extras[-1]["citations"][0]["document"] == "adv.txt"


def test_unknown_collection_in_chat_is_404(stack: dict[str, Any]) -> None:
    with pytest.raises(openai.NotFoundError):
        stack["client"].chat.completions.create(model="local-a", messages=[{"role": "user", "content": "q"}],
                                                extra_body={"fedinf": {"collections": ["missing-coll"]}})


def test_embeddings_endpoint_with_the_openai_sdk_stays_in_the_eligible_set(stack: dict[str, Any]) -> None:
    client, up = stack["client"], stack["up"]
    out = client.embeddings.create(model="cloud-embed", input=["public release notes", "another public line"])
    assert len(out.data) == 2 and len(out.data[0].embedding) == 8 and out.model == "cloud-embed"
    floats = client.embeddings.create(model="cloud-embed", input="x y", encoding_format="float")
    assert isinstance(floats.data[0].embedding[0], float)
    seen = len(up.bodies)
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="cloud-embed", input="patient SSN 536-22-1234, call +1 415 555 0199")
    assert len(up.bodies) == seen  # refused before any byte left
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="cloud-b", input="no embeddings capability")
    for bad in ({"model": "cloud-embed", "input": []}, {"model": "cloud-embed", "input": [[1, 2, 3]]},
                {"model": "cloud-embed"}, {"model": "cloud-embed", "input": "a", "encoding_format": "hex"},
                {"model": "cloud-embed", "input": ""}):
        r = stack["http"].post("/v1/embeddings", json=bad)
        assert r.status_code == 400, (bad, r.text)


@pytest.mark.embeddings
def test_local_embedding_model_over_http(stack: dict[str, Any], local_embedder: Any) -> None:
    out = stack["client"].embeddings.create(model="all-MiniLM-L6-v2", input=["the cat", "a kitten", "tax law"])
    v = np.array([d.embedding for d in out.data])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    assert abs(float(v[0] @ v[0]) - 1.0) < 1e-3


def test_collection_scope_and_audit_records(stack: dict[str, Any]) -> None:
    from fedinf.audit import AuditQuery, open_audit_store

    srv, http = stack["srv"], stack["http"]
    _setup(http, "team-a", ("note.txt", NOTE))
    _setup(http, "team-b", ("adv.txt", ADVISORY))
    gw = srv.gateway
    made = http.post("/admin/keys", json={"tenant": "t", "name": "scoped", "roles": ["user"],
                                          "scopes": {"collections": ["team-b"]}})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    scoped = httpx.Client(base_url=srv.url, headers={"authorization": f"Bearer {secret}"}, timeout=30)
    assert scoped.post("/v1/collections/team-b/search", json={"query": "libdemo"}).status_code == 200
    denied = scoped.post("/v1/collections/team-a/search", json={"query": "libdemo"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "collection_not_allowed"
    names = [c["name"] for c in scoped.get("/v1/collections").json()["data"]]
    assert "team-b" in names and "team-a" not in names
    scoped.close()
    raw = stack["client"].chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": "which libdemo version is fixed?"}],
        extra_body={"fedinf": {"collections": ["team-b"]}})
    chat_id = raw.headers["x-fedinf-request-id"]
    cfg = gw.config
    audit_rows(cfg, lambda rows: any(r["request_id"] == chat_id for r in rows))
    store = open_audit_store(cfg.audit, state_dir=cfg.server.state_dir)
    try:
        rows = store.query(AuditQuery(limit=5000))
        endpoints = {r["endpoint"] for r in rows}
        assert {"collections.create", "collections.documents.add", "collections.search"} <= endpoints
        adds = [r for r in rows if r["endpoint"] == "collections.documents.add" and r["model_requested"] == "team-a"]
        assert adds and "EMAIL_ADDRESS" in adds[-1]["classification"]["entities"]
        assert any(r["error_code"] == "collection_not_allowed" for r in rows)
        assert "alice.brennan" not in str(rows) and "Brennan" not in str(rows)
        chat = [r for r in rows if r["request_id"] == chat_id]
        assert chat and chat[0]["retrieved"] and chat[0]["retrieved"][0].startswith("team-b/doc-")
        assert store.verify().ok
    finally:
        store.close()

