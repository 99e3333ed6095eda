"""OpenTelemetry spans through the real pipeline: a gateway on a real loopback port, real HTTP to a fake
OpenAI-compatible upstream (a separate process, with fault injection), spans collected by the SDK's
InMemorySpanExporter. Then the OTLP/HTTP exporter as configured in a config file, from `fedinf serve` to a real
HTTP collector."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the `otel` extra is not installed")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from fedinf.tracing import NOOP, OtelTracer, build_tracer  # noqa: E402
from tests.conftest import ServeProcess, ThreadServer, UpstreamProcess, gateway_server  # noqa: E402

CONFIG = """
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - id: up
    backend: openai
    zone: onprem
    license: Apache-2.0
    endpoints: [{{url: "{up}/v1", name: r0}}]
    timeouts: {{connect_s: 1, read_s: 3, total_s: 5}}
  - {{id: cloud-fake, backend: fake, zone: cloud, license: proprietary-api, options: {{reply: "cloud reply"}}}}
routes:
  auto: [cloud-fake, up]
  cloud-only: [cloud-fake]
reliability: {{health_interval_s: 0, retries: {{backoff_base_ms: 1, backoff_cap_ms: 2}}}}
"""

CANARY = "zebra-canary-7731"
EMAIL = "jane.doe@example.com"
STEPS = ["fedinf.authenticate", "fedinf.classify", "fedinf.decide", "fedinf.execute", "fedinf.audit"]


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    exporter = InMemorySpanExporter()
    tracer = OtelTracer.with_exporter(exporter)
    with UpstreamProcess() as up, gateway_server(CONFIG.format(up=up.origin), tracer=tracer) as srv:
        http = httpx.Client(base_url=srv.url, headers=srv.auth, timeout=15)
        yield {"srv": srv, "up": up, "http": http, "exporter": exporter}
        http.close()


@pytest.fixture(autouse=True)
def _reset(stack: dict[str, Any]) -> None:
    stack["up"].control(action="clear")
    stack["exporter"].clear()


def _chat(stack: dict[str, Any], model: str, text: str, *, status: int = 200, headers: dict[str, str] | None = None,
          **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8, **extra}
    r = stack["http"].post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == status, r.text
    return r


def _trace(stack: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The finished spans of one request: ``root`` and the others by name (lists, in start order)."""
    spans = stack["exporter"].get_finished_spans()
    (root,) = [s for s in spans if s.name == "fedinf.request" and s.attributes.get("fedinf.request_id") == request_id]
    mine = sorted((s for s in spans if s.context.trace_id == root.context.trace_id and s is not root),
                  key=lambda s: s.start_time)
    by_name: dict[str, list[Any]] = {}
    for s in mine:
        by_name.setdefault(s.name, []).append(s)
    return {"root": root, "spans": mine, "by": by_name}


def _everything(spans: list[Any]) -> str:
    return json.dumps([{"name": s.name, "attrs": dict(s.attributes), "status": s.status.description,
                        "events": [(e.name, dict(e.attributes or {})) for e in s.events]} for s in spans])


def test_one_span_per_step_with_class_model_zone_and_outcome(stack: dict[str, Any]) -> None:
    r = _chat(stack, "up", "What is the capital of France?")
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    root = t["root"]
    assert [s.name for s in t["spans"] if s.parent.span_id == root.context.span_id] == STEPS
    assert root.attributes["fedinf.data_class"] == "public" and root.attributes["fedinf.outcome"] == "ok"
    assert root.attributes["fedinf.model"] == "up" and root.attributes["fedinf.zone"] == "onprem"
    assert root.attributes["gen_ai.request.model"] == "up" and root.attributes["gen_ai.usage.output_tokens"] > 0
    assert root.attributes["fedinf.tenant"] == "test" and root.status.status_code != StatusCode.ERROR
    (attempt,) = t["by"]["fedinf.attempt"]
    (execute,) = t["by"]["fedinf.execute"]
    assert attempt.parent.span_id == execute.context.span_id
    assert {"fedinf.model": "up", "fedinf.zone": "onprem", "fedinf.replica": "r0", "fedinf.attempt.kind": "first",
            "fedinf.outcome": "ok"}.items() <= dict(attempt.attributes).items()
    (decide,) = t["by"]["fedinf.decide"]
    assert list(decide.attributes["fedinf.eligible"]) == ["up"] and decide.attributes["fedinf.outcome"] == "ok"
    for s in t["spans"]:
        assert s.attributes["fedinf.outcome"] == "ok", s.name
        assert root.start_time <= s.start_time <= s.end_time <= root.end_time


def test_spans_carry_classes_and_entity_types_never_content(stack: dict[str, Any]) -> None:
    r = _chat(stack, "auto", f"Mail {EMAIL} the {CANARY} report")
    assert r.headers["x-fedinf-model"] == "up"  # confidential: the cloud model is excluded
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    (classify,) = t["by"]["fedinf.classify"]
    assert classify.attributes["fedinf.data_class"] == "confidential"
    assert list(classify.attributes["fedinf.entities"]) == ["EMAIL_ADDRESS"]
    (decide,) = t["by"]["fedinf.decide"]
    assert list(decide.attributes["fedinf.excluded"]) == ["cloud-fake"]
    dump = _everything([t["root"], *t["spans"]])
    reply = r.json()["choices"][0]["message"]["content"]
    for secret in (EMAIL, "jane.doe", CANARY, reply, "capital"):
        assert secret not in dump


def test_a_refusal_is_traced_with_its_code_and_never_executes(stack: dict[str, Any]) -> None:
    r = _chat(stack, "cloud-only", "Refund card 4111 1111 1111 1111", status=403)
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    (decide,) = t["by"]["fedinf.decide"]
    assert decide.attributes["fedinf.outcome"] == "policy_violation"
    assert decide.status.status_code == StatusCode.ERROR and decide.status.description == "policy_violation"
    assert "fedinf.execute" not in t["by"] and "fedinf.attempt" not in t["by"]
    (audit,) = t["by"]["fedinf.audit"]
    assert audit.attributes["fedinf.outcome"] == "ok"  # the refusal itself was audited
    root = t["root"]
    assert root.attributes["fedinf.outcome"] == "policy_violation" and root.attributes["fedinf.status"] == 403
    assert root.attributes["fedinf.data_class"] == "restricted" and "4111" not in _everything([root, *t["spans"]])


def test_each_attempt_is_a_span_retries_included(stack: dict[str, Any]) -> None:
    stack["up"].control(action="inject", kind="status", status=503, times=1)
    r = _chat(stack, "up", "hello after a failure")
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    first, retry = t["by"]["fedinf.attempt"]
    assert first.attributes["fedinf.outcome"] == "backend_unavailable" and first.status.status_code == StatusCode.ERROR
    assert retry.attributes["fedinf.outcome"] == "ok" and retry.attributes["fedinf.attempt.kind"] == "retry"
    assert first.end_time <= retry.start_time
    assert t["root"].attributes["fedinf.outcome"] == "ok" and t["root"].attributes["fedinf.attempts"] == 2


def test_structured_output_is_validated_in_its_own_spans(stack: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    stack["up"].control(action="script", responses=['{"town": 1}', '{"city": "Paris"}'])
    rf = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    r = _chat(stack, "up", "Which city?", response_format=rf)
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"city": "Paris"}
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    bad, good = t["by"]["fedinf.validate"]
    assert bad.attributes["fedinf.outcome"] == "output_invalid" and bad.attributes["fedinf.reask"] == 0
    assert good.attributes["fedinf.outcome"] == "ok" and good.attributes["fedinf.reask"] == 1
    (attempt,) = t["by"]["fedinf.attempt"]
    assert bad.parent.span_id == attempt.context.span_id
    assert "Paris" not in _everything([t["root"], *t["spans"]])


def test_a_stream_is_traced_until_its_audit_record_is_durable(stack: dict[str, Any]) -> None:
    body = {"model": "up", "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": "count"}]}
    with stack["http"].stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert text.rstrip().endswith("data: [DONE]")
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    (audit,) = t["by"]["fedinf.audit"]
    assert audit.parent.span_id == t["root"].context.span_id
    assert t["root"].attributes["fedinf.stream"] is True and t["root"].attributes["fedinf.outcome"] == "ok"
    assert audit.end_time <= t["root"].end_time


def test_each_attempt_hands_its_trace_context_to_the_upstream(stack: dict[str, Any]) -> None:
    import urllib.request

    stack["up"].control(action="forget")
    stack["up"].control(action="inject", kind="status", status=503, times=1)
    r = _chat(stack, "up", "hello with context")
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    with urllib.request.urlopen(stack["up"].origin + "/_control?headers=1&last=2", timeout=5) as resp:
        sent = [h.get("traceparent", "")[:-3] for h in json.loads(resp.read())["headers"]]  # without the flags
    expected = [f"00-{a.context.trace_id:032x}-{a.context.span_id:016x}" for a in t["by"]["fedinf.attempt"]]
    assert len(expected) == 2 and sent == expected  # the upstream's spans become children of the calling attempt


def test_the_callers_traceparent_is_continued(stack: dict[str, Any]) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = _chat(stack, "up", "hello", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    t = _trace(stack, r.headers["x-fedinf-request-id"])
    assert f"{t['root'].context.trace_id:032x}" == trace_id
    assert f"{t['root'].parent.span_id:016x}" == parent_id


def test_tracing_is_off_by_default_and_then_a_shared_noop() -> None:
    from fedinf.config import TracingSettings

    tracer = build_tracer(TracingSettings())
    assert tracer is NOOP and not tracer.enabled
    with tracer.span("x", {"a": 1}) as s:
        s.set("b", 2)
    assert tracer.span("y") is tracer.span("z")  # one shared object: nothing allocated per call
    assert tracer.context_headers() == {}
    quiet = OtelTracer.with_exporter(InMemorySpanExporter(), propagate=False)
    with quiet.span("fedinf.attempt"):
        assert quiet.context_headers() == {}  # tracing.propagate: false sends nothing upstream
    loud = OtelTracer.with_exporter(InMemorySpanExporter())
    with loud.span("fedinf.attempt"):
        assert loud.context_headers()["traceparent"].startswith("00-")


class _Collector:
    """A minimal OTLP/HTTP collector: records the ExportTraceServiceRequest bodies POSTed to /v1/traces."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self.requests: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

        async def traces(request: Request) -> Response:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            msg = ExportTraceServiceRequest()
            msg.ParseFromString(await request.body())
            with self.lock:
                self.requests.append(msg)
                self.headers.append(dict(request.headers))
            return Response(b"", media_type="application/x-protobuf")

        async def healthz(request: Request) -> Response:
            return Response("ok")

        self.app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"]),
                                     Route("/healthz", healthz, methods=["GET"])])

    def spans(self) -> list[Any]:
        with self.lock:
            return [s for m in self.requests for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_otlp_http_export_from_fedinf_serve_to_a_collector(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    collector = _Collector()
    with ThreadServer(collector.app) as col, UpstreamProcess() as up:
        cfg = tmp_path / "fedinf.yaml"
        cfg.write_text(CONFIG.format(up=up.origin) + f"""
server: {{state_dir: "{tmp_path / 'state'}"}}
tracing:
  enabled: true
  endpoint: {col.url}/v1/traces
  headers_env: OTLP_TEST_HEADERS
  service_name: fedinf-test
""")
        with ServeProcess(cfg, env={"OTLP_TEST_HEADERS": "x-collector-token=s3cret"}, log_dir=tmp_path) as srv:
            key = srv.admin_key()
            r = httpx.post(srv.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                           json={"model": "up", "messages": [{"role": "user", "content": f"hi {CANARY}"}]},
                           timeout=15)
            assert r.status_code == 200
        # the server stopped: its tracer was shut down, which flushes the batch
        names = {s.name for s in collector.spans()}
        assert {"fedinf.request", *STEPS, "fedinf.attempt"} <= names, names
        assert collector.headers[0]["x-collector-token"] == "s3cret"
        resource = collector.requests[0].resource_spans[0].resource
        assert any(a.key == "service.name" and a.value.string_value == "fedinf-test" for a in resource.attributes)
        assert all(CANARY.encode() not in m.SerializeToString() for m in collector.requests)
