"""The pipeline over real loopback HTTP with the official openai SDK, against scripted in-process backends."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import audit_rows, gateway_server

CONFIG = """
zones:
  onprem: {kind: onprem, clearance: restricted}
  cloud: {kind: cloud, clearance: internal}
models:
  - {id: local-a, backend: fake, zone: onprem, license: Apache-2.0}
  - {id: broken, backend: fake, zone: onprem, license: Apache-2.0, options: {fail: unavailable}}
  - {id: rejecting, backend: fake, zone: onprem, license: Apache-2.0, options: {fail: rejected}}
  - {id: cloud-b, backend: fake, zone: cloud, license: proprietary-api}
  - {id: nc-model, backend: fake, zone: onprem, license: CC-BY-NC-4.0}
routes:
  auto: [broken, local-a]
  cloudonly: [cloud-b]
  strict-fail: [rejecting, local-a]
  all-broken: [broken]
"""


@pytest.fixture(scope="module")
def server():
    with gateway_server(CONFIG) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.key, max_retries=0, timeout=10)


def test_plain_completion_with_headers_and_usage(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": "hello there"}])
    resp = raw.parse()
    assert resp.choices[0].message.content == "echo: hello there"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert raw.headers["x-fedinf-model"] == "local-a"
    assert raw.headers["x-fedinf-zone"] == "onprem"
    assert raw.headers["x-fedinf-data-class"] == "public"
    assert raw.headers["x-fedinf-request-id"]


def test_route_falls_back_on_retryable_failure(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "fallback please"}])
    assert raw.parse().choices[0].message.content == "echo: fallback please"
    assert raw.headers["x-fedinf-model"] == "local-a"
    assert raw.headers["x-fedinf-attempts"] == "2"
    assert raw.headers["x-fedinf-route"] == "auto"


def test_non_retryable_failure_does_not_fall_back(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="strict-fail", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert info.value.body["code"] == "backend_rejected"


def test_all_targets_failed_is_503_with_attempts(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="all-broken", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    assert info.value.body["code"] == "backend_unavailable"


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="local-a", messages=[{"role": "user", "content": "stream me now"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me now"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert all(c.model == "local-a" for c in chunks)


def test_streaming_without_usage_option_sends_no_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="local-a", messages=[{"role": "user", "content": "no usage"}], stream=True))
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: no usage"


def test_sensitive_request_never_reaches_cloud_route(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="cloudonly", messages=[
            {"role": "user", "content": "my card is 4111 1111 1111 1111, email jane.doe@example.com"}])
    body = info.value.body
    assert body["code"] == "policy_violation"
    assert "4111" not in str(body) and "jane" not in str(body)
    assert "cloud" in body["message"]


def test_declared_class_raises_and_is_enforced(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="cloudonly", messages=[{"role": "user", "content": "hello"}],
                                       extra_body={"fedinf": {"data_class": "restricted"}})


def test_lowering_without_permission_is_forbidden(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="local-a", messages=[
            {"role": "user", "content": "SSN 536-22-1234"}], extra_body={"fedinf": {"data_class": "public"}})
    assert info.value.body["code"] == "lowering_not_permitted"


def test_models_list_shows_zone_and_license_and_hides_forbidden_licenses(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list().data}
    assert models["local-a"].fedinf["zone"] == "onprem"
    assert models["local-a"].fedinf["license"] == "Apache-2.0"
    assert "nc-model" not in models  # CC-BY-NC forbids commercial use
    assert "auto" in models


def test_forbidden_license_model_is_never_served(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="nc-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "policy_violation"
    assert "license" in info.value.body["message"]


def test_health_ready_metrics(server: Any) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(server.url + "/healthz") as r:
        assert json.loads(r.read()) == {"status": "ok"}
    with urllib.request.urlopen(urllib.request.Request(server.url + "/readyz", headers=server.auth)) as r:
        ready = json.loads(r.read())
    assert ready["models"]["local-a"] and not any(ready["models"]["broken"].values())
    with urllib.request.urlopen(server.url + "/metrics") as r:
        text = r.read().decode()
    assert "fedinf_requests_total" in text and "fedinf_audit_journal_stalls_total" in text


def test_every_request_has_a_durable_audit_record_without_content(server: Any, client: openai.OpenAI) -> None:
    from fedinf.audit import AuditQuery, open_audit_store

    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "mail bob@example.org please"}])
    rid = raw.headers["x-fedinf-request-id"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="cloudonly", messages=[{"role": "user", "content": "SSN 536-22-1234"}])
    cfg = server.gateway.config
    audit_rows(cfg, lambda rows: any(r["request_id"] == rid for r in rows)
               and any(r["error_code"] == "policy_violation" for r in rows))
    store = open_audit_store(cfg.audit, state_dir=cfg.server.state_dir)
    try:
        rows = store.query(AuditQuery(limit=1000))
        mine = [r for r in rows if r["request_id"] == rid]
        assert len(mine) == 1
        rec = mine[0]
        assert rec["decision"]["chosen_model"] == "local-a"
        assert [a["model"] for a in rec["decision"]["attempts"]] == ["broken", "local-a"]
        assert any("EMAIL" in k for k in rec["classification"]["entities"]), rec["classification"]
        assert rec["classification"]["data_class"] in ("confidential", "restricted")
        refused = [r for r in rows if r["error_code"] == "policy_violation"]
        assert refused and refused[-1]["status"] == 403
        dump = str(rows)
        assert "bob@example.org" not in dump and "536-22-1234" not in dump
        assert store.verify().ok
    finally:
        store.close()
