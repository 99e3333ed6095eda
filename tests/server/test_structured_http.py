"""Structured output end to end with the openai SDK: constrained local model, re-ask on a remote upstream that
answers invalid JSON first, truncation, schema rejection, streaming."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import gateway_server

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 150}},
          "required": ["name", "age"], "additionalProperties": False}
RF = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}


class LoopThread:
    """An asyncio loop in a thread, hosting the fake upstream while the gateway serves in another."""

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
    up = FakeOpenAIUpstream(reply_tokens=64)
    lt.run(up.start())
    config = f"""
zones:
  onprem: {{kind: onprem, clearance: restricted}}
models:
  - {{id: smollm2, backend: local, zone: onprem, license: Apache-2.0, options: {{n_ctx: 1024}}}}
  - {{id: remote, backend: openai, zone: onprem, license: Apache-2.0, endpoints: [{{url: "{up.url}"}}]}}
"""
    with gateway_server(config) as srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key=srv.key, max_retries=0, timeout=120)
        yield {"client": client, "up": up, "lt": lt}
    lt.run(up.stop())
    lt.stop()


@pytest.mark.model
@pytest.mark.parametrize("stream", [False, True])
def test_local_model_output_is_constrained_to_the_schema(stack: dict[str, Any], stream: bool) -> None:
    client = stack["client"]
    messages = [{"role": "user", "content": "Invent a person. Reply in JSON."}]
    if stream:
        chunks = list(client.chat.completions.create(model="smollm2", messages=messages, response_format=RF,
                                                     max_tokens=60, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        r = client.chat.completions.create(model="smollm2", messages=messages, response_format=RF, max_tokens=60)
        text = r.choices[0].message.content
    value = json.loads(text)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int) and 0 <= value["age"] <= 150


def test_remote_invalid_json_is_reasked_with_the_errors(stack: dict[str, Any]) -> None:
    up: FakeOpenAIUpstream = stack["up"]
    up.forget()
    up.script('{"name": "Ann"', '{"name": "Ann", "age": "old"}', '{"name": "Ann", "age": 41}')
    raw = stack["client"].chat.completions.with_raw_response.create(
        model="remote", messages=[{"role": "user", "content": "person please"}], response_format=RF)
    r = raw.parse()
    assert json.loads(r.choices[0].message.content) == {"name": "Ann", "age": 41}
    assert len(up.bodies) == 3
    reask = json.dumps(up.bodies[2]["messages"])
    assert "age" in reask  # the validation errors went back to the model
    assert r.model_extra["fedinf"]["structured"]["attempts"] == 3


def test_exhausted_reasks_give_output_validation_error(stack: dict[str, Any]) -> None:
    up: FakeOpenAIUpstream = stack["up"]
    up.script("not json", "still not json", "nope")
    with pytest.raises(openai.APIStatusError) as info:
        stack["client"].chat.completions.create(model="remote", messages=[{"role": "user", "content": "x"}],
                                                response_format=RF)
    assert info.value.status_code == 422
    body = info.value.body
    assert body["code"] == "output_validation_failed"
    assert body["fedinf"]["last_output"] == "nope" and body["fedinf"]["errors"]


def test_truncated_output_is_never_repaired(stack: dict[str, Any]) -> None:
    up: FakeOpenAIUpstream = stack["up"]
    up.clear()
    up.inject("length", tokens=2)
    with pytest.raises(openai.APIStatusError) as info:
        stack["client"].chat.completions.create(model="remote", messages=[{"role": "user", "content": "x"}],
                                                response_format=RF, max_tokens=5,
                                                extra_body={"fedinf": {"max_reasks": 0}})
    assert info.value.status_code == 422 and info.value.body["code"] == "output_truncated"
    up.clear()


def test_invalid_schema_is_rejected_with_where(stack: dict[str, Any]) -> None:
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {
        "a": {"type": "strin"}}}}}
    with pytest.raises(openai.BadRequestError) as info:
        stack["client"].chat.completions.create(model="remote", messages=[{"role": "user", "content": "x"}],
                                                response_format=bad)
    assert info.value.body["code"] == "invalid_schema"
    assert "/properties/a" in info.value.body["message"]


def test_structured_stream_from_remote_is_validated_then_streamed(stack: dict[str, Any]) -> None:
    up: FakeOpenAIUpstream = stack["up"]
    up.clear()
    up.script('{"name": "Bo", "age": 7}')
    chunks = list(stack["client"].chat.completions.create(
        model="remote", messages=[{"role": "user", "content": "x"}], response_format=RF, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"name": "Bo", "age": 7}
    assert chunks[-1].usage is not None
