"""The `anthropic` backend against the fake Messages API server, over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fedinf.backends import create_backend
from fedinf.backends.anthropic import AnthropicBackend, to_anthropic
from fedinf.backends.base import CallContext
from fedinf.config import Endpoint, ModelSpec, Timeouts
from fedinf.errors import (
    BackendRejected, BackendTimeout, BackendUnavailable, CapabilityError, ConfigError, StreamInterrupted,
)
from fedinf.protocol import ChatRequest
from fedinf.testing.anthropic_upstream import FakeAnthropicUpstream

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
async def up():
    async with FakeAnthropicUpstream(api_key="sk-ant") as server:
        yield server


def make(url: str | None, *, options: dict[str, Any] | None = None, read_s: float = 10.0,
         capabilities: list[str] | None = None) -> AnthropicBackend:
    spec = ModelSpec(id="claude", backend="anthropic", zone="cloud", license="proprietary",
                     upstream_model="claude-fake", capabilities=capabilities or ["tools", "vision"],
                     options=options or {}, endpoints=[Endpoint(url=url, api_key_env="FEDINF_TEST_ANT_KEY")],
                     timeouts=Timeouts(connect_s=2, read_s=read_s))
    backend = create_backend(spec, spec.endpoints[0])
    assert isinstance(backend, AnthropicBackend)
    return backend


@pytest.fixture
async def backend(up, monkeypatch):
    monkeypatch.setenv("FEDINF_TEST_ANT_KEY", "sk-ant")
    b = make(up.url, options={"max_tokens": 64})
    yield b
    await b.aclose()


def req(messages: list[dict[str, Any]] | None = None, **kw: Any) -> ChatRequest:
    messages = messages or [{"role": "user", "content": "hello world"}]
    return ChatRequest.model_validate({"model": "claude", "messages": messages, **kw})


def ctx(timeout_s: float = 5.0) -> CallContext:
    return CallContext(request_id="r1", deadline=time.monotonic() + timeout_s, upstream_model="claude-fake")


async def collect(b: AnthropicBackend, request: ChatRequest, c: CallContext | None = None) -> list[dict[str, Any]]:
    return [ch async for ch in b.stream(request, c or ctx())]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join((ch["choices"][0]["delta"].get("content") or "") for ch in chunks if ch["choices"])


# ---------------------------------------------------------------- translation

async def test_chat_translation_both_ways(up, backend):
    r = req([{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "No emojis."},
             {"role": "user", "content": "hello world"}], temperature=1.5, top_p=0.9, stop="END", user="u-1",
            max_tokens=10, frequency_penalty=0.5, seed=3)
    out = await backend.chat(r, ctx())
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-msg_fake_")
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello world"}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    sent = up.bodies[-1]
    assert sent == {"model": "claude-fake", "max_tokens": 10, "system": "Be brief.\n\nNo emojis.",
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
                    "temperature": 1.0, "top_p": 0.9, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}}
    headers = up.requests[-1].headers
    assert headers["x-api-key"] == "sk-ant" and headers["anthropic-version"] == "2023-06-01"


async def test_default_max_tokens_and_length(up, backend):
    await backend.chat(req(), ctx())
    assert up.bodies[-1]["max_tokens"] == 64
    out = await backend.chat(req([{"role": "user", "content": "a b c d e"}], max_tokens=2), ctx())
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["choices"][0]["message"]["content"] == "echo: a"


async def test_tool_round_trip(up, backend):
    up.script({"tool_use": [{"id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]})
    r = req([{"role": "user", "content": "weather in Oslo?"}], tools=[WEATHER_TOOL], tool_choice="required",
            parallel_tool_calls=False)
    out = await backend.chat(r, ctx())
    msg = out["choices"][0]
    assert msg["finish_reason"] == "tool_calls" and msg["message"]["content"] is None
    assert msg["message"]["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    sent = up.bodies[-1]
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    # the follow-up turn: assistant tool call + two tool results (merged into one user turn)
    follow = req([
        {"role": "user", "content": "weather in Oslo and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rainy"},
    ], tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    out = await backend.chat(follow, ctx())
    assert out["choices"][0]["message"]["content"].startswith("echo:")
    sent = up.bodies[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rainy"}]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_images_and_unsupported_parts():
    r = req([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    body = to_anthropic(r, model="m", max_tokens=5)
    assert body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]
    bad = req([{"role": "user", "content": [{"type": "text", "text": "x"},
                                            {"type": "input_audio", "input_audio": {}}]}])
    with pytest.raises(CapabilityError, match="input_audio"):
        to_anthropic(bad, model="m", max_tokens=5)


# ---------------------------------------------------------------- streaming

async def test_stream_events_become_openai_chunks(up, backend):
    chunks = await collect(backend, req())
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "echo: hello world"
    finishes = [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert {ch["id"] for ch in chunks} == {"chatcmpl-msg_fake_1"}
    assert up.bodies[-1]["stream"] is True


async def test_stream_tool_use(up, backend):
    up.script({"content": "Let me check.",
               "tool_use": [{"id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}]})
    chunks = await collect(backend, req(tools=[WEATHER_TOOL]))
    assert text_of(chunks) == "Let me check."
    calls = [tc for ch in chunks if ch["choices"] for tc in ch["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls[0] == {"index": 0, "id": "toolu_9", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Oslo"}
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][-1] == "tool_calls"


async def test_stream_without_usage_is_estimated(up, backend):
    up.no_usage(times=1)
    c = ctx()
    chunks = await collect(backend, req(), c)
    assert chunks[-1]["usage"]["completion_tokens"] >= 1 and c.extra["usage_estimated"] is True


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("status", [429, 500, 529])
async def test_retryable_errors(up, backend, status):
    up.fail(status, times=2)
    with pytest.raises(BackendUnavailable) as e:
        await backend.chat(req(), ctx())
    assert e.value.details["upstream_status"] == status
    if status == 529:
        assert e.value.details["upstream_type"] == "overloaded_error"
    with pytest.raises(BackendUnavailable):
        await collect(backend, req())


async def test_rejected_errors(up, backend, monkeypatch):
    up.fail(400, times=1, message="messages.0.content: bad")
    with pytest.raises(BackendRejected) as e:
        await backend.chat(req(), ctx())
    assert "messages.0.content: bad" in e.value.message
    assert e.value.details["upstream_type"] == "invalid_request_error"
    monkeypatch.setenv("FEDINF_TEST_ANT_KEY", "wrong")
    wrong = make(up.url)
    try:
        with pytest.raises(BackendRejected) as e:
            await wrong.chat(req(), ctx())
        assert e.value.details["upstream_status"] == 401
    finally:
        await wrong.aclose()


async def test_error_event_mid_stream(up, backend):
    up.inject("status", status=529, after_tokens=1, times=1)
    got: list[dict[str, Any]] = []
    with pytest.raises(StreamInterrupted):
        async for ch in backend.stream(req(), ctx()):
            got.append(ch)
    assert text_of(got) == "echo:"


async def test_malformed_sse(up, backend):
    up.malformed_sse(after_tokens=1, times=1)
    with pytest.raises(StreamInterrupted):
        await collect(backend, req())
    up.malformed_json(times=2)
    with pytest.raises(BackendUnavailable) as e:
        await collect(backend, req())
    assert e.value.code == "bad_upstream_response"
    with pytest.raises(BackendUnavailable) as e:
        await backend.chat(req(), ctx())
    assert e.value.code == "bad_upstream_response"


async def test_stream_cut_off_and_stall(up, backend):
    up.cut_off(after_tokens=1, times=1)
    with pytest.raises(StreamInterrupted):
        await collect(backend, req())
    up.stall(after_tokens=1, times=1)
    t0 = time.monotonic()
    with pytest.raises(StreamInterrupted):
        await collect(backend, req(), ctx(0.4))
    assert time.monotonic() - t0 < 1.5


async def test_hang_and_reset(up, backend):
    up.hang(times=1)
    with pytest.raises(BackendTimeout):
        await backend.chat(req(), ctx(0.3))
    up.reset_connection(times=1)
    with pytest.raises(BackendUnavailable):
        await backend.chat(req(), ctx())


# ---------------------------------------------------------------- config, health

def test_options_and_capabilities():
    with pytest.raises(ConfigError, match="unknown option"):
        make("http://127.0.0.1:1", options={"max_token": 5})
    with pytest.raises(ConfigError, match="json_schema"):
        make("http://127.0.0.1:1", capabilities=["json_schema"])
    b = make("http://127.0.0.1:1/v1", options={"anthropic_version": "2024-01-01", "headers": {"anthropic-beta": "x"}})
    assert b.messages_url == "http://127.0.0.1:1/v1/messages"
    assert b.http.base_headers["anthropic-version"] == "2024-01-01" and b.http.base_headers["anthropic-beta"] == "x"
    assert b.capabilities.tools and b.capabilities.vision and b.capabilities.structured == "none"


async def test_health(up, backend):
    assert await backend.health() is True
    up.fail(529, scope="all")
    assert await backend.health() is False
