"""The Pipeline on its own (in-process, fake backends, a recording audit sink): every request - answered, refused
or broken - gets exactly one audit record, and no reply is complete before its record is durable."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from fedinf.audit import AuditRecord
from fedinf.audit.record import Recordable
from fedinf.config import parse_config
from fedinf.errors import FedinfError, ServiceUnavailable
from fedinf.gateway import Gateway
from fedinf.protocol import ChatRequest

CONFIG = """
zones:
  onprem: {kind: onprem, clearance: restricted}
  cloud: {kind: cloud, clearance: public}
models:
  - {id: local, backend: fake, zone: onprem, license: MIT, capabilities: [json_schema],
     options: {reply: '{"n": 1}'}}
  - {id: remote, backend: fake, zone: cloud, license: MIT, options: {reply: alpha beta gamma}}
routes:
  auto: [remote, local]
reliability: {health_interval_s: 0}
access: {require_keys: false}
"""


class Recorder:
    """An AuditSink that keeps the records; ``fail`` makes every write fail (the store is down)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.fail = False

    async def start(self) -> None:
        return None

    def begin(self, make: Any) -> None:
        return None

    async def write(self, record: Recordable, intent: object = None) -> None:
        if self.fail:
            raise ServiceUnavailable("the audit trail is unavailable", code="audit_unavailable")
        self.records.append(AuditRecord.from_dict(record.to_dict()))  # the body, read back as the schema reads it

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def gw(tmp_path: Any) -> Any:
    cfg = parse_config(CONFIG.replace("access:", f"server: {{state_dir: {tmp_path}}}\naccess:"), source="t.yaml")
    gateway = Gateway.from_config(cfg, auditor=Recorder())
    async with gateway:
        yield gateway


def recorder(gw: Gateway) -> Recorder:
    assert isinstance(gw.auditor, Recorder)
    return gw.auditor


def body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


async def test_an_answer_is_returned_only_once_its_record_is_written(gw: Gateway) -> None:
    reply = await gw.pipeline.chat(body(), request_id="r-1")
    assert reply.status == 200 and reply.error is None and reply.body is not None
    assert reply.body["model"] == "remote" and reply.body["choices"][0]["message"]["content"] == "alpha beta gamma"
    assert reply.headers["x-fedinf-request-id"] == "r-1" and reply.headers["x-fedinf-model"] == "remote"
    [rec] = recorder(gw).records
    assert (rec.request_id, rec.status, rec.decision.chosen_model) == ("r-1", 200, "remote")
    assert rec.classification.data_class == "public"


async def test_sensitive_content_is_routed_by_class_and_never_audited(gw: Gateway) -> None:
    reply = await gw.pipeline.chat(body("my card is 4111 1111 1111 1111, charge it"))
    assert reply.status == 200 and reply.headers["x-fedinf-model"] == "local"
    [rec] = recorder(gw).records
    assert rec.classification.data_class == "restricted"
    assert "4111" not in json.dumps(rec.to_dict())


async def test_a_refusal_is_audited_and_answered_with_the_error(gw: Gateway) -> None:
    reply = await gw.pipeline.chat(body("card 4111 1111 1111 1111", model="remote"))
    assert reply.status == 403 and reply.body is None
    assert reply.error is not None and reply.error.code == "policy_violation"
    assert reply.headers["x-fedinf-data-class"] == "restricted"
    [rec] = recorder(gw).records
    assert (rec.status, rec.error_code) == (403, "policy_violation")
    bad = await gw.pipeline.chat({"model": "auto", "messages": []})
    assert bad.status == 400 and bad.error is not None
    assert recorder(gw).records[-1].status == 400


async def test_no_durable_record_means_no_answer(gw: Gateway) -> None:
    recorder(gw).fail = True
    reply = await gw.pipeline.chat(body())
    assert reply.status == 503 and reply.body is None
    assert reply.error is not None and reply.error.code == "audit_unavailable"


async def test_a_stream_ends_only_after_its_record_is_written(gw: Gateway) -> None:
    reply = await gw.pipeline.chat(body(stream=True, stream_options={"include_usage": True}))
    assert reply.stream is not None and reply.status == 200
    chunks = []
    async for c in reply.stream:
        chunks.append(c)
        assert recorder(gw).records == []  # nothing is recorded while chunks still flow
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")) == \
        "alpha beta gamma"
    assert chunks[-1]["usage"]["total_tokens"] > 0 and all(c["model"] == "remote" for c in chunks)
    [rec] = recorder(gw).records
    assert rec.stream and rec.status == 200 and rec.usage.completion_tokens == 3


async def test_a_stream_whose_record_cannot_be_written_ends_with_the_error(gw: Gateway) -> None:
    recorder(gw).fail = True
    reply = await gw.pipeline.chat(body(stream=True))
    assert reply.stream is not None
    seen = 0
    with pytest.raises(FedinfError) as err:
        async for _ in reply.stream:
            seen += 1
    assert seen > 0 and err.value.code == "audit_unavailable"


async def test_a_client_that_leaves_mid_stream_is_recorded(gw: Gateway) -> None:
    reply = await gw.pipeline.chat(body(stream=True))
    assert reply.stream is not None
    await reply.stream.__anext__()
    await reply.stream.aclose()
    [rec] = recorder(gw).records
    assert (rec.status, rec.error_code) == (499, "client_disconnected")


async def test_structured_output_is_validated_and_the_schema_compiled_once(gw: Gateway) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "n", "schema": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}
    reply = await gw.pipeline.chat(body(model="local", response_format=schema))
    assert reply.status == 200 and reply.body is not None
    assert reply.body["fedinf"]["structured"]["attempts"] == 1
    assert "x-fedinf-structured" in reply.headers
    one = ChatRequest.model_validate(body(response_format=schema))
    two = ChatRequest.model_validate(body("other text", response_format=json.loads(json.dumps(schema))))
    spec = gw.pipeline.output_spec(one)
    assert spec is not None and gw.pipeline.output_spec(two) is spec  # the SpecCache: parsed and normalised once
    assert gw.pipeline.output_spec(ChatRequest.model_validate(body())) is None


async def test_unknown_fields_are_dropped_and_logged_once(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fedinf.forwarding"):
        for _ in range(3):
            reply = await gw.pipeline.chat(body(not_an_openai_field={"x": 1}))
            assert reply.status == 200
    lines = [r.getMessage() for r in caplog.records if "not_an_openai_field" in r.getMessage()]
    assert len(lines) == 1 and "{'x': 1}" not in lines[0]  # once, by name, never the value
    remote = gw.pool.replicas["remote"][0].backend
    sent = remote.received[-1]  # type: ignore[attr-defined]
    assert "not_an_openai_field" not in sent.upstream_body(model="remote")


async def test_request_ids_are_random_uuid4_hex_and_metrics_count_each_request(gw: Gateway) -> None:
    import uuid

    replies = [await gw.pipeline.chat(body()) for _ in range(3)]
    ids = [r.headers["x-fedinf-request-id"] for r in replies]
    assert len(set(ids)) == 3
    for rid in ids:  # the shape uuid.uuid4().hex had: 32 hex digits, version 4, RFC 4122 variant
        u = uuid.UUID(hex=rid)
        assert u.hex == rid and u.version == 4 and u.variant == uuid.RFC_4122
    await asyncio.sleep(0)  # a request's metrics are counted at the loop's turn after its reply
    text = gw.metrics.render().decode()
    assert 'fedinf_requests_total{code="ok",endpoint="chat.completions",model="remote"} 3.0' in text
    assert 'fedinf_attempts_total{kind="first",model="remote",outcome="ok",replica="remote#0"} 3.0' in text
    # the latency view decide() reads is the snapshot's numbers: measured models, and the pool's others at 0
    assert dict(gw.metrics.latencies()) == gw.metrics.latency_snapshot()
    assert gw.metrics.latencies()["local"] == 0.0 and gw.metrics.latencies()["remote"] > 0.0
    assert gw.metrics.latencies().get("nonexistent", -1.0) == -1.0 and "nonexistent" not in gw.metrics.latencies()


def test_completion_ids_keep_their_shape() -> None:
    import uuid

    from fedinf.protocol import new_completion_id, uuid4_hex

    cid = new_completion_id()
    assert cid.startswith("chatcmpl-") and uuid.UUID(hex=cid.removeprefix("chatcmpl-")).version == 4
    values = {uuid4_hex() for _ in range(2000)}
    assert len(values) == 2000 and all(uuid.UUID(hex=v).variant == uuid.RFC_4122 for v in values)
    assert {v[12] for v in values} == {"4"} and {v[16] for v in values} == set("89ab")
