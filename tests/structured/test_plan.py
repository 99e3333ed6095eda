"""OutputSpec / Plan: engines per capability, check() verdicts, re-ask content, truncation, pydantic."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from fedinf.backends.base import Capabilities
from fedinf.errors import CapabilityError, OutputTruncated, OutputValidationError, SchemaError
from fedinf.protocol import ChatRequest, completion
from fedinf.structured import OutputSpec, StreamCollector, plan_for, run

SCHEMA = {"type": "object", "properties": {"total": {"type": "number", "minimum": 0},
                                           "currency": {"type": "string", "enum": ["EUR", "USD"]}},
          "required": ["total", "currency"], "additionalProperties": False}
RF = {"type": "json_schema", "json_schema": {"name": "bill", "schema": SCHEMA, "strict": True}}


def req(**kw) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": "Total of the bill?"}], **kw)


def test_from_request_kinds() -> None:
    assert OutputSpec.from_request(None, None, None) is None
    assert OutputSpec.from_request({"type": "text"}, None, None) is None
    assert OutputSpec.from_request({"type": "json_object"}, None, None).kind == "json_object"
    assert OutputSpec.from_request(RF, None, None).kind == "json_schema"
    assert OutputSpec.from_request(None, r"\d+", None).kind == "regex"
    with pytest.raises(SchemaError):
        OutputSpec.from_request({"type": "yaml"}, None, None)
    with pytest.raises(SchemaError):
        OutputSpec.from_request(RF, r"\d+", None)
    with pytest.raises(SchemaError):
        OutputSpec.from_request(None, "(unclosed", None)


def test_check_valid_invalid_truncated() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"))
    ok = plan.check(completion(model="m", content='{"total": 12.5, "currency": "EUR"}'))
    assert ok.ok and ok.value == {"total": 12.5, "currency": "EUR"} and not ok.truncated
    fenced = plan.check(completion(model="m", content='```json\n{"total": 1, "currency": "USD"}\n```'))
    assert fenced.ok
    bad = plan.check(completion(model="m", content='{"total": -1, "currency": "GBP"}'))
    assert not bad.ok and not bad.truncated and len(bad.errors) == 2
    assert any("/total" in e for e in bad.errors) and any("/currency" in e for e in bad.errors)
    cut = plan.check(completion(model="m", content='{"total": 12.5, "curr', finish_reason="length"))
    assert not cut.ok and cut.truncated and cut.value is None
    prose = plan.check(completion(model="m", content="The total is 12.5 EUR"))
    assert not prose.ok and not prose.truncated and "not valid JSON" in prose.errors[0]


def test_reask_appends_previous_output_and_errors() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="json_object"))
    first, extra = plan.prepare(req(), 0, None)
    assert extra == {} and first.response_format == {"type": "json_object"}
    assert first.messages[0].role == "system" and '"currency"' in first.messages[0].text()
    bad = plan.check(completion(model="m", content='{"total": "12"}'))
    second, _ = plan.prepare(req(), 1, bad)
    assert second.messages[-2].role == "assistant" and second.messages[-2].content == '{"total": "12"}'
    assert second.messages[-1].role == "user"
    assert "currency" in second.messages[-1].text() and "/total" in second.messages[-1].text()


def test_truncation_raises_max_tokens_then_fails() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"),
                    max_tokens_ceiling=100)
    cut = plan.check(completion(model="m", content='{"total": 1', finish_reason="length",
                                usage={"prompt_tokens": 5, "completion_tokens": 30, "total_tokens": 35}))
    assert plan.can_retry(cut, 0)
    again, _ = plan.prepare(req(max_tokens=30), 1, cut)
    assert again.max_tokens == 60 and again.messages[-1].role == "user"  # no re-ask text for truncation
    third, _ = plan.prepare(req(max_tokens=60), 2, cut)
    assert third.max_tokens == 100
    assert not plan.can_retry(cut, 2)
    err = plan.error_for(cut)
    assert isinstance(err, OutputTruncated) and err.code == "output_truncated"
    assert err.details["last_output"] == '{"total": 1'


def test_no_ceiling_means_truncated_is_final() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"),
                    max_tokens_ceiling=None)
    cut = plan.check(completion(model="m", content="{", finish_reason="length"))
    assert not plan.can_retry(cut, 0)


def test_strict_engine_and_null_undo() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "required": ["a"]}
    spec = OutputSpec.from_request({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
                                   None, None)
    plan = plan_for(spec, Capabilities(structured="strict"))
    sent, _ = plan.prepare(req(), 0, None)
    rf = sent.response_format
    assert plan.engine == "openai_strict" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"]["required"] == ["a", "b"]
    chk = plan.check(completion(model="m", content='{"a": 1, "b": null}'))
    assert chk.ok and chk.value == {"a": 1}


def test_strict_not_exact_falls_back_to_json_object() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "minLength": 3}}}
    spec = OutputSpec.from_request({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
                                   None, None)
    plan = plan_for(spec, Capabilities(structured="strict"))
    assert plan.engine == "json_object" and "minLength" in plan.metadata()["fallback_reason"]


def test_steerable_plan_sends_constraint_and_reports_keywords() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True, "minItems": 1}
    spec = OutputSpec.from_request({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
                                   None, None)
    plan = plan_for(spec, Capabilities(structured="grammar"))
    sent, extra = plan.prepare(req(response_format={"type": "json_object"}), 0, None)
    assert sent.response_format is None
    assert extra["grammar"].startswith("%llguidance {}\nstart: %json {")
    constraint = json.loads(extra["grammar"].split("%json ", 1)[1])
    assert constraint["items"] == {"type": "integer"} and "uniqueItems" not in constraint
    meta = plan.metadata()
    assert meta["enforced_by_validation"] == ["uniqueItems"]
    assert {"items", "minItems", "type"} <= set(meta["enforced_by_constraint"])
    assert not plan.check(completion(model="m", content="[1, 1]")).ok


def test_grammar_needs_a_steerable_backend() -> None:
    pytest.importorskip("llguidance")
    spec = OutputSpec.from_request(None, None, 'start: "yes" | "no"')
    with pytest.raises(CapabilityError):
        plan_for(spec, Capabilities(structured="strict"))
    plan = plan_for(spec, Capabilities(structured="grammar"))
    assert plan.prepare(req(), 0, None)[1] == {"grammar": 'start: "yes" | "no"'}
    assert plan.check(completion(model="m", content="yes")).ok
    assert not plan.check(completion(model="m", content="maybe")).ok


def test_regex_remote_is_instructed_and_validated() -> None:
    plan = plan_for(OutputSpec.from_request(None, r"[A-Z]{2}-\d{4}", None), Capabilities(structured="none"))
    sent, extra = plan.prepare(req(), 0, None)
    assert extra == {} and "[A-Z]{2}" in sent.messages[0].text()
    assert plan.check(completion(model="m", content="AB-1234")).ok
    assert not plan.check(completion(model="m", content="AB-12345")).ok


class Bill(BaseModel):
    total: float
    currency: str


async def test_run_reasks_then_returns_pydantic_instance() -> None:
    plan = plan_for(OutputSpec.from_pydantic(Bill), Capabilities(structured="none"), max_reasks=2)
    replies = iter(['{"total": "x"}', '{"total": 3, "currency": "EUR"}'])
    seen = []

    async def send(request: ChatRequest, extra: dict) -> dict:
        seen.append(request)
        return completion(model="m", content=next(replies))

    comp, chk = await run(plan, req(), send)
    assert isinstance(chk.value, Bill) and chk.value.total == 3
    assert len(seen) == 2 and plan.metadata()["attempts"] == 2


async def test_run_exhausted_raises_with_last_output() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"), max_reasks=1)

    async def send(request: ChatRequest, extra: dict) -> dict:
        return completion(model="m", content='{"total": -5, "currency": "EUR"}')

    with pytest.raises(OutputValidationError) as exc:
        await run(plan, req(), send)
    assert exc.value.code == "output_validation_failed" and exc.value.status_code == 422
    assert exc.value.details["last_output"] == '{"total": -5, "currency": "EUR"}'
    assert exc.value.details["attempts"] == 2 and exc.value.details["errors"]


def test_stream_collector_rebuilds_completion() -> None:
    col = StreamCollector()
    for piece in ['{"total"', ': 2, "currency"', ': "USD"}']:
        col.feed({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": piece},
                                                          "finish_reason": None}]})
    col.feed({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="grammar"))
    assert plan.check(col.completion()).ok


def test_spec_cache_reuses_specs() -> None:
    from fedinf.structured import SpecCache

    cache = SpecCache(maxsize=2)
    a = cache.get(RF, None, None)
    assert cache.get(RF, None, None) is a
    cache.get({"type": "json_object"}, None, None)
    cache.get(None, r"\d", None)
    assert cache.get(RF, None, None) is not a  # evicted


def test_metadata_carries_no_output_content() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"))
    plan.prepare(req(), 0, None)
    plan.check(completion(model="m", content='{"total": "secret-value-123"}'))
    assert "secret-value-123" not in json.dumps(plan.metadata())


def test_existing_system_message_gets_the_instruction_appended() -> None:
    plan = plan_for(OutputSpec.from_request(RF, None, None), Capabilities(structured="none"))
    r = ChatRequest(model="m", messages=[{"role": "system", "content": "You are terse."},
                                         {"role": "user", "content": "Bill?"}])
    sent, _ = plan.prepare(r, 0, None)
    assert len(sent.messages) == 2 and sent.messages[0].text().startswith("You are terse.")
    assert '"currency"' in sent.messages[0].text()
    assert r.messages[0].content == "You are terse."  # the caller's request is not modified
