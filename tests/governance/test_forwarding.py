"""Every forwarded string is classified, or it is not forwarded: the allow-list, the walk, pseudonymization of every
field, the re-check of pseudonymized requests, and what errors, logs and audit records may say."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedinf.data_class import DataClass
from fedinf.errors import PolicyViolation
from fedinf.forwarding import FieldWarnings, dropped, forwarded, rewrite, strings
from fedinf.gateway import Gateway
from fedinf.privacy import Classifier, Pseudonymizer
from fedinf.protocol import ChatRequest
from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import make_config
from tests.privacy.pii_checks import luhn_complete

CARD = luhn_complete("453977091453416")
EMAIL = "jane.roe@example.com"


def _everywhere(value: str) -> dict[str, Any]:
    """A body with ``value`` in every field of the chat schema that carries text."""
    return {
        "model": "m", "user": value, "stop": [value], "metadata": {"note": value, value: "key"},
        "prediction": {"type": "content", "content": value},
        "tools": [{"type": "function", "function": {"name": "lookup", "description": value, "parameters": {
            "type": "object", "properties": {"q": {"type": "string", "description": value, "enum": [value]}}}}}],
        "functions": [{"name": "legacy", "description": value}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {
            "type": "object", "properties": {"a": {"type": "string", "description": value}}}}},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "name": value, "content": [{"type": "text", "text": "hi"},
                                                        {"type": "image_url", "image_url": {"url": f"https://x/{value}"}}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": value}]},
            {"role": "assistant", "content": None, "function_call": {"name": "legacy", "arguments": json.dumps({"v": value})}},
            {"role": "function", "name": "legacy", "content": "ok"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": value, "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "user", "content": "thanks"},
        ],
    }


FIELDS = ["user", "stop", "metadata", "prediction", "tools", "functions", "response_format", "messages"]


def test_every_field_is_read() -> None:
    req = ChatRequest.model_validate(_everywhere(EMAIL))
    texts = req.texts()
    assert sum(EMAIL in t for t in texts) >= 14
    for field in FIELDS:
        body = _everywhere(EMAIL)
        only = {k: v for k, v in body.items() if k in ("model", field)}
        if field != "messages":
            only["messages"] = [{"role": "user", "content": "hi"}]
        assert any(EMAIL in t for t in ChatRequest.model_validate(only).texts()), field


def test_classification_sees_every_field() -> None:
    clf = Classifier.from_config()
    for field in FIELDS:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], field: _everywhere(CARD)[field]}
        assert clf.classify(ChatRequest.model_validate(body).texts()).data_class == DataClass.RESTRICTED, field


def test_unknown_fields_are_dropped_and_named() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi", "secret_note": CARD}],
            "x_custom": {"v": CARD}, "temperature": 0.5, "fedinf": {}}
    assert dropped(body) == ["messages[].secret_note", "x_custom"]
    out = ChatRequest.model_validate(body).upstream_body(model="up")
    assert CARD not in json.dumps(out) and out["temperature"] == 0.5 and out["model"] == "up"
    assert "fedinf" not in out and set(forwarded(body)) == {"model", "messages", "temperature"}


def test_walk_rules() -> None:
    png = base64.b64encode(b"\x89PNG" + bytes(range(200))).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                      "image_url": {"url": f"data:image/png;base64,{png}"}}]}],
            "seed": 4111111111111111, "metadata": {"n": 4111111111111111}, "logit_bias": {"50256": -100}}
    got = strings(body)
    assert "data:image/png;base64" in got and png not in "".join(got)  # media payloads are not text
    assert "user" not in got  # roles are a fixed vocabulary
    assert got.count("4111111111111111") == 1  # in metadata, not the typed seed
    assert "50256" in got  # logit_bias keys are token ids, but any key may carry data


def test_field_warnings_once_and_without_values(caplog: pytest.LogCaptureFixture) -> None:
    w = FieldWarnings()
    with caplog.at_level(logging.WARNING, logger="fedinf.forwarding"):
        w.warn(["x_custom", CARD, "messages[].secret_note"])
        w.warn(["x_custom"])
    assert len(caplog.records) == 1
    assert "x_custom" in caplog.text and "messages[].secret_note" in caplog.text and CARD not in caplog.text


def test_pseudonymize_rewrites_every_field_and_keeps_the_shape() -> None:
    clf = Classifier.from_config()
    req = ChatRequest.model_validate(_everywhere(EMAIL))
    p = Pseudonymizer(clf)
    safe = req.with_texts(p.pseudonymize_checked(req.texts(), clearance=DataClass.INTERNAL))
    body = safe.upstream_body(model="up")
    assert EMAIL not in json.dumps(body)
    assert body["messages"][5]["tool_calls"][0]["function"]["name"] == "<EMAIL_ADDRESS_1>"
    assert body["messages"][1]["name"] == "<EMAIL_ADDRESS_1>" and body["user"] == "<EMAIL_ADDRESS_1>"
    assert p.restore(body["stop"][0]) == EMAIL


def test_recheck_refuses_what_pseudonymization_cannot_hide() -> None:
    clf = Classifier.from_config()
    p = Pseudonymizer(clf, types=["EMAIL_ADDRESS"])  # a pseudonymizer that leaves cards alone
    with pytest.raises(PolicyViolation) as err:
        p.pseudonymize_checked([f"mail {EMAIL}, card {CARD}"], clearance=DataClass.CONFIDENTIAL)
    assert err.value.code == "pseudonymization_insufficient" and "CREDIT_CARD" in err.value.message
    assert CARD not in json.dumps(err.value.to_dict()) and EMAIL not in json.dumps(err.value.to_dict())


# ---------------------------------------------------------------- through the gateway

CONFIG = """
zones:
  cloud: {{kind: cloud, clearance: internal, pseudonymized_clearance: confidential}}
  plain: {{kind: cloud, clearance: internal}}
models:
  - {{id: gpt, backend: openai, zone: cloud, license: proprietary-api, endpoints: [{{url: "{url}"}}],
     capabilities: [tools, vision]}}
  - {{id: plain, backend: openai, zone: plain, license: proprietary-api, endpoints: [{{url: "{url}"}}]}}
"""


async def _gateway_run(bodies: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]], Path]:
    async with FakeOpenAIUpstream(reply_tokens=8) as up:
        cfg = make_config(CONFIG.format(url=up.url), require_keys=False)
        gw = Gateway.from_config(cfg)
        async with gw:
            replies = [await gw.pipeline.chat(b) for b in bodies]
        return replies, list(up.bodies), Path(cfg.server.state_dir)


def _files_contain(root: Path, value: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


def test_gateway_pseudonymizes_every_field_for_a_cloud_zone(caplog: pytest.LogCaptureFixture) -> None:
    body = {**_everywhere(EMAIL), "model": "gpt", "x_custom": EMAIL}
    body.pop("response_format")  # structured output has its own test in the property run
    with caplog.at_level(logging.DEBUG):
        replies, received, state = asyncio.run(_gateway_run([body, body]))
    assert [r.status for r in replies] == [200, 200], replies[0].body
    assert received and all(EMAIL not in json.dumps(b) for b in received)
    assert all("x_custom" not in b for b in received)
    assert EMAIL not in caplog.text
    assert sum("x_custom" in r.getMessage() for r in caplog.records) == 1  # logged once
    assert not _files_contain(state, EMAIL)  # audit records hold no values


@pytest.mark.parametrize("bad", [
    {"model": "plain", "messages": [{"role": CARD, "content": "hi"}]},
    {"model": "plain", "messages": [{"role": "user", "content": "hi"}], "temperature": CARD},
    {"model": "plain", "messages": [{"role": "user", "content": "hi"}], "max_tokens": f"x{CARD}"},
    {"model": "plain", "messages": [{"role": "user", "content": "hi"}], "n": 2, "user": CARD},
    {"model": "plain", "messages": [{"role": "user", "content": f"card {CARD}"}]},  # refused: no eligible model
    {"model": "plain", "messages": [{"role": "user", "content": "hi"}], "stop": {"a": CARD}},
    {"model": "plain", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}], "user": CARD},
    {"model": CARD, "messages": [{"role": "user", "content": "hi"}]},  # not echoed in the error nor audited
    {"model": "gpt", "fedinf": {"route": f"r-{CARD}"}, "messages": [{"role": "user", "content": "hi"}]},
])
def test_bad_or_refused_input_gets_a_4xx_without_values(bad: dict[str, Any],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        replies, received, state = asyncio.run(_gateway_run([bad]))
    reply = replies[0]
    assert 400 <= reply.status < 500 and reply.error is not None, reply.body
    body = reply.error.to_dict()  # what the HTTP layer sends
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    text = json.dumps(body) + json.dumps(reply.headers) + repr(reply.error)
    assert CARD not in text and CARD not in caplog.text
    assert not received and not _files_contain(state, CARD)


def test_tool_names_and_arguments_are_restored_in_answers() -> None:
    from fedinf.routing.executor import _restore_completion, _restore_stream

    clf = Classifier.from_config()
    p = Pseudonymizer(clf)
    (safe,) = p.pseudonymize([f"mail {EMAIL}"])
    ph = safe.split()[-1]
    completion = {"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": ph, "arguments": json.dumps({"to": ph})}}]}}]}
    _restore_completion(completion, p)
    fn = completion["choices"][0]["message"]["tool_calls"][0]["function"]
    assert fn["name"] == EMAIL and json.loads(fn["arguments"]) == {"to": EMAIL}

    async def chunks():  # the placeholder split over two argument deltas
        args = json.dumps({"to": ph})
        yield {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": ph,
                                                                                          "arguments": args[:9]}}]}}]}
        yield {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args[9:]}}]},
                            "finish_reason": "tool_calls"}]}

    async def collect() -> tuple[str, str]:
        name, args = "", ""
        async for c in _restore_stream(chunks(), p):
            for call in c["choices"][0]["delta"].get("tool_calls") or []:
                name += call["function"].get("name", "")
                args += call["function"].get("arguments", "")
        return name, args

    name, args = asyncio.run(collect())
    assert name == EMAIL and json.loads(args) == {"to": EMAIL}


def _rewrite_reads(body: Any) -> list[str]:
    """What :func:`rewrite` passes to its ``fn``, in order (the reference for :func:`strings`)."""
    seen: list[str] = []

    def take(s: str) -> str:
        seen.append(s)
        return s

    rewrite(body, take)
    return seen


_KEYS = st.sampled_from(["role", "content", "url", "image_url", "data", "file_data", "seed", "max_tokens", "n",
                         "type", "properties", "q", "note", "jane.roe@example.com", ""]) | st.text(max_size=6)
_SCALARS = (st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-10**9, 10**9)
            | st.sampled_from(["data:image/png;base64,AAAA,BB", "data:", "user", "4111111111111111"])
            | st.text(max_size=8))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _JSON, max_size=6) | _JSON)
def test_strings_reads_exactly_what_rewrite_would(body: Any) -> None:
    assert strings(body) == _rewrite_reads(body)


def test_strings_of_every_field_match_rewrite() -> None:
    body = forwarded(_everywhere(EMAIL))
    assert strings(body) == _rewrite_reads(body) and EMAIL in strings(body)
