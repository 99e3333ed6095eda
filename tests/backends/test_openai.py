"""The `openai` backend against the fake OpenAI-compatible upstream, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from fedinf.backends import create_backend
from fedinf.backends.base import CallContext
from fedinf.backends.openai import OpenAIBackend
from fedinf.config import Endpoint, ModelSpec, Timeouts
from fedinf.errors import (
    BackendRejected, BackendTimeout, BackendUnavailable, CapabilityError, ConfigError, StreamInterrupted,
)
from fedinf.protocol import ChatRequest
from fedinf.testing.upstream import FakeOpenAIUpstream


@pytest.fixture
async def up():
    async with FakeOpenAIUpstream() as server:
        yield server


def spec(url: str | None, *, connect_s: float = 2.0, read_s: float = 10.0, capabilities: list[str] | None = None,
         options: dict[str, Any] | None = None, api_key_env: str | None = None) -> ModelSpec:
    return ModelSpec(
        id="m1", backend="openai", zone="cloud", license="MIT", upstream_model="up-model",
        capabilities=capabilities or [], options=options or {},
        endpoints=[Endpoint(url=url, api_key_env=api_key_env)],
        timeouts=Timeouts(connect_s=connect_s, read_s=read_s, total_s=30),
    )


def make(url: str | None, **kw: Any) -> OpenAIBackend:
    s = spec(url, **kw)
    backend = create_backend(s, s.endpoints[0])
    assert isinstance(backend, OpenAIBackend)
    return backend


@pytest.fixture
async def backend(up):
    b = make(up.url)
    yield b
    await b.aclose()


def req(text: str = "hello world", **kw: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m1", "messages": [{"role": "user", "content": text}], **kw})


def ctx(timeout_s: float = 5.0) -> CallContext:
    return CallContext(request_id="r1", deadline=time.monotonic() + timeout_s, upstream_model="up-model")


async def collect(b: OpenAIBackend, request: ChatRequest, c: CallContext) -> list[dict[str, Any]]:
    return [ch async for ch in b.stream(request, c)]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join((ch["choices"][0]["delta"].get("content") or "") for ch in chunks if ch["choices"])


# ---------------------------------------------------------------- happy paths

async def test_chat_plain(up, backend):
    r = req(fedinf={"data_class": "internal"}, temperature=0.5)
    out = await backend.chat(r, ctx())
    assert out["choices"][0]["message"]["content"] == "echo: hello world"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    sent = up.bodies[-1]
    assert sent["model"] == "up-model" and sent["stream"] is False and sent["temperature"] == 0.5
    assert "fedinf" not in sent and "stream_options" not in sent


async def test_stream_chunks_and_usage(up, backend):
    c = ctx()
    chunks = await collect(backend, req(), c)
    assert text_of(chunks) == "echo: hello world"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all("usage" not in ch for ch in chunks[:-1])
    assert any(ch["choices"] and ch["choices"][0]["finish_reason"] == "stop" for ch in chunks)
    assert up.bodies[-1]["stream"] is True and up.bodies[-1]["stream_options"] == {"include_usage": True}
    assert "usage_estimated" not in c.extra


async def test_stream_usage_option_off(up):
    b = make(up.url, options={"stream_usage": False})
    try:
        c = ctx()
        chunks = await collect(b, req(stream_options={"include_usage": True}), c)
        assert "stream_options" not in up.bodies[-1]
        assert chunks[-1]["usage"]["completion_tokens"] >= 1 and c.extra["usage_estimated"] is True
    finally:
        await b.aclose()


async def test_missing_usage_is_estimated(up, backend):
    up.no_usage(times=2)
    c = ctx()
    out = await backend.chat(req(), c)
    assert out["usage"]["completion_tokens"] >= 1 and out["usage"]["prompt_tokens"] >= 1
    assert c.extra["usage_estimated"] is True
    c2 = ctx()
    chunks = await collect(backend, req(), c2)
    assert chunks[-1]["usage"]["total_tokens"] >= 2 and c2.extra["usage_estimated"] is True


async def test_length_finish_reason(up, backend):
    out = await backend.chat(req("one two three four five", max_tokens=2), ctx())
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["choices"][0]["message"]["content"] == "echo: one"
    up.length(tokens=1, times=1)
    chunks = await collect(backend, req(), ctx())
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][-1] == "length"


async def test_scripted_answers_and_tool_calls(up, backend):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    up.script("not json", '{"ok": true,\n  "n": [1, 2]}\n', {"content": None, "tool_calls": [call]}, {"tool_calls": [call]})
    assert (await backend.chat(req(), ctx()))["choices"][0]["message"]["content"] == "not json"
    assert (await backend.chat(req(), ctx()))["choices"][0]["message"]["content"] == '{"ok": true,\n  "n": [1, 2]}\n'
    out = await backend.chat(req(), ctx())
    assert out["choices"][0]["message"]["tool_calls"] == [call]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    chunks = await collect(backend, req(), ctx())
    calls = [tc for ch in chunks if ch["choices"] for tc in ch["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls[0]["function"]["name"] == "get_weather"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"city": "Oslo"}'
    up.script('{"a":\n 1}')
    assert text_of(await collect(backend, req(), ctx())) == '{"a":\n 1}'


async def test_keep_alive_reuses_one_connection(up, backend):
    for _ in range(5):
        await backend.chat(req(), ctx())
    peers = {r.peer for r in up.requests}
    assert len(peers) == 1


async def test_concurrent_requests(up, backend):
    outs = await asyncio.gather(*(backend.chat(req(f"n{i}"), ctx()) for i in range(50)))
    assert sorted(o["choices"][0]["message"]["content"] for o in outs) == sorted(f"echo: n{i}" for i in range(50))


# ---------------------------------------------------------------- error mapping

@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_retryable_statuses(up, backend, status):
    up.fail(status, times=2, message="secret prompt text", retry_after=2)
    with pytest.raises(BackendUnavailable) as e:
        await backend.chat(req(), ctx())
    assert e.value.retryable and e.value.details["upstream_status"] == status
    assert str(status) in e.value.message and "secret" not in e.value.message
    assert e.value.details["retry_after"] == "2"
    with pytest.raises(BackendUnavailable):
        await collect(backend, req(), ctx())
    assert (await backend.chat(req(), ctx()))["choices"]  # the fault was for 2 requests only


async def test_client_error_is_rejected_with_upstream_message(up, backend):
    up.fail(400, times=1, message="max_tokens is too large")
    with pytest.raises(BackendRejected) as e:
        await backend.chat(req(), ctx())
    assert not e.value.retryable
    assert "max_tokens is too large" in e.value.message and "400" in e.value.message
    assert e.value.details["upstream_status"] == 400 and e.value.details["upstream_code"] == "400"


async def test_missing_api_key_hint(monkeypatch):
    monkeypatch.delenv("FEDINF_TEST_MISSING_KEY", raising=False)
    async with FakeOpenAIUpstream(api_key="sk-right") as up:
        b = make(up.url, api_key_env="FEDINF_TEST_MISSING_KEY")
        try:
            with pytest.raises(BackendRejected) as e:
                await b.chat(req(), ctx())
            assert "401" in e.value.message and "FEDINF_TEST_MISSING_KEY is not set" in e.value.message
        finally:
            await b.aclose()
        monkeypatch.setenv("FEDINF_TEST_KEY", "sk-right")
        b = make(up.url, api_key_env="FEDINF_TEST_KEY")
        try:
            assert (await b.chat(req(), ctx()))["choices"]
            assert up.requests[-1].headers["authorization"] == "Bearer sk-right"
        finally:
            await b.aclose()


async def test_connection_reset(up, backend):
    up.reset_connection(times=2)
    with pytest.raises(BackendUnavailable) as e:
        await backend.chat(req(), ctx())
    assert e.value.retryable
    with pytest.raises(BackendUnavailable):
        await collect(backend, req(), ctx())
    assert (await backend.chat(req(), ctx()))["choices"]


async def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = make(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(BackendUnavailable) as e:
            await b.chat(req(), ctx())
        assert "cannot connect" in e.value.message
        assert await b.health() is False
    finally:
        await b.aclose()


async def test_connect_timeout():
    """A listener whose accept queue is full drops new SYNs: the connect hangs until connect_s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        b = make(f"http://127.0.0.1:{port}/v1", connect_s=0.3)
        try:
            t0 = time.monotonic()
            with pytest.raises((BackendTimeout, BackendUnavailable)) as e:
                await b.chat(req(), ctx(5))
            elapsed = time.monotonic() - t0
            if isinstance(e.value, BackendUnavailable):
                pytest.skip("this kernel completes connections past the accept queue")
            assert "connect timeout" in e.value.message and elapsed < 1.5
        finally:
            await b.aclose()
            for s in fillers:
                s.close()


async def test_hang_ends_at_deadline(up, backend):
    up.hang()
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout):
        await backend.chat(req(), ctx(0.4))
    with pytest.raises(BackendTimeout):
        await collect(backend, req(), ctx(0.4))
    assert time.monotonic() - t0 < 1.5


async def test_silence_longer_than_read_timeout(up):
    b = make(up.url, read_s=0.3)
    up.hang()
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendTimeout) as e:
            await b.chat(req(), ctx(10))
        assert time.monotonic() - t0 < 1.5 and "read timeout" in e.value.message
    finally:
        await b.aclose()


async def test_deadline_already_passed(up, backend):
    with pytest.raises(BackendTimeout):
        await backend.chat(req(), ctx(-1))
    assert up.bodies == []


async def test_slow_answer_within_deadline(up, backend):
    up.slow(200, times=1)
    t0 = time.monotonic()
    assert (await backend.chat(req(), ctx(2)))["choices"]
    assert time.monotonic() - t0 >= 0.2
    up.slow(min_ms=300, max_ms=400, times=1)
    with pytest.raises(BackendTimeout):
        await backend.chat(req(), ctx(0.2))


async def test_malformed_json(up, backend):
    up.malformed_json(times=1)
    with pytest.raises(BackendUnavailable) as e:
        await backend.chat(req(), ctx())
    assert e.value.code == "bad_upstream_response" and e.value.retryable


async def test_cut_off_body(up, backend):
    up.cut_off(times=1)
    with pytest.raises(BackendUnavailable):
        await backend.chat(req(), ctx())


# ---------------------------------------------------------------- stream faults

async def test_stream_stall_after_first_tokens(up, backend):
    up.stall(after_tokens=2)
    got: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with pytest.raises(StreamInterrupted):
        async for ch in backend.stream(req(), ctx(0.5)):
            got.append(ch)
    assert time.monotonic() - t0 < 1.5
    assert text_of(got) == "echo: hello"


async def test_stream_stall_read_timeout(up):
    b = make(up.url, read_s=0.3)
    up.stall(after_tokens=1)
    try:
        with pytest.raises(StreamInterrupted) as e:
            await collect(b, req(), ctx(10))
        assert e.value.details["cause"] == "backend_timeout"
    finally:
        await b.aclose()


async def test_stream_cut_off(up, backend):
    up.cut_off(after_tokens=2)
    got: list[dict[str, Any]] = []
    with pytest.raises(StreamInterrupted):
        async for ch in backend.stream(req("a b c d e f"), ctx()):
            got.append(ch)
    assert text_of(got) == "echo: a"


async def test_trickling_stream_ends_at_deadline(up, backend):
    """Each token arrives well within read_s, but the whole stream would outlive the deadline."""
    up.slow(token_delay_ms=100)
    got: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with pytest.raises(StreamInterrupted):
        async for ch in backend.stream(req("a b c d e f g h i j"), ctx(0.5)):
            got.append(ch)
    assert 0.4 < time.monotonic() - t0 < 1.2
    assert 2 <= len(got) <= 7


async def test_cancelled_call_closes_the_upstream_connection(up, backend):
    """A cancelled chat (e.g. the losing hedge) drops its connection: the upstream sees the client leave."""
    up.slow(2000, times=1)
    task = asyncio.create_task(backend.chat(req(), ctx()))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if up.stats["disconnects"]:
            break
        await asyncio.sleep(0.02)
    assert up.stats["disconnects"] == 1
    assert (await backend.chat(req(), ctx()))["choices"]  # the pool is still usable


async def test_stream_malformed_event_after_start(up, backend):
    up.malformed_sse(after_tokens=1)
    with pytest.raises(StreamInterrupted) as e:
        await collect(backend, req(), ctx())
    assert e.value.details["cause"] == "bad_upstream_response"


async def test_stream_malformed_first_event(up, backend):
    up.malformed_json()
    with pytest.raises(BackendUnavailable) as e:
        await collect(backend, req(), ctx())
    assert e.value.code == "bad_upstream_response"


async def test_stream_hang_before_first_byte(up, backend):
    up.hang()
    with pytest.raises(BackendTimeout):
        await collect(backend, req(), ctx(0.3))


async def test_closing_the_stream_closes_the_upstream(up, backend):
    up.token_delay_ms = 30
    it = backend.stream(req("a b c d e f g h i j k l"), ctx())
    first = await it.__anext__()
    assert first["choices"]
    await it.aclose()
    for _ in range(50):
        if up.stats["disconnects"]:
            break
        await asyncio.sleep(0.02)
    assert up.stats["disconnects"] == 1


async def test_stream_request_answered_with_json(up, backend):
    up.inject("no_stream", times=1)
    chunks = await collect(backend, req(), ctx())
    assert text_of(chunks) == "echo: hello world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_backend_survives_a_new_event_loop():
    """A session is bound to its loop; a backend used from a second loop gets a new one (the first loop's idle
    sockets cannot be closed properly once it is closed: they are collected here, inside this test)."""
    import threading
    server_loop = asyncio.new_event_loop()
    up = FakeOpenAIUpstream()
    server_loop.run_until_complete(up.start())
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    b = make(up.url)

    async def once() -> str:
        return (await b.chat(req(), ctx()))["choices"][0]["message"]["content"]

    assert asyncio.run(once()) == "echo: hello world"  # each asyncio.run is a new loop: a new session
    assert asyncio.run(once()) == "echo: hello world"
    asyncio.run(b.aclose())
    asyncio.run_coroutine_threadsafe(up.stop(), server_loop).result(5)
    server_loop.call_soon_threadsafe(server_loop.stop)
    thread.join(5)
    server_loop.close()
    import gc
    gc.collect()


async def test_sse_parser_tolerates_odd_but_valid_framing():
    """CRLF line ends, comments, event/id fields, `data:` without a space, multi-line data, bytes split anywhere."""
    from aiohttp import web

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        import json
        return json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "x",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    usage = '{"id": "c1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}'
    raw = (": keep-alive comment\r\n\r\n"
           f"event: message\r\nid: 1\r\ndata:{chunk({'role': 'assistant', 'content': ''})}\r\n\r\n"
           f"retry: 100\ndata: {chunk({'content': 'Hé'})}\n\n"
           # one JSON document spread over two data lines (joined with a newline: still valid JSON)
           'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "x",\n'
           'data:  "choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": null}]}\n\n'
           f"data: {chunk({}, 'stop')}\n\n"
           f"data: {usage}\n\ndata: [DONE]").encode()  # no blank line after the last event

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(0, len(raw), 7):  # split mid-line, mid-CRLF and mid-UTF-8
            await resp.write(raw[i:i + 7])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    b = make(f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
    try:
        chunks = await collect(b, req(), ctx())
        assert text_of(chunks) == "Héllo"
        assert chunks[-1]["usage"]["total_tokens"] == 3
    finally:
        await b.aclose()
        await runner.cleanup()


# ---------------------------------------------------------------- config, capabilities, Azure, health, embeddings

def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError, match="unknown option.*'deploymnt'"):
        make("http://127.0.0.1:1/v1", options={"deploymnt": "x"})
    with pytest.raises(ConfigError, match="grammar"):
        make("http://127.0.0.1:1/v1", capabilities=["grammar"])
    with pytest.raises(ConfigError, match="headers"):
        make("http://127.0.0.1:1/v1", options={"headers": {"x": 1}})
    with pytest.raises(ConfigError, match="options.stream_usage must be true or false"):
        make("http://127.0.0.1:1/v1", options={"stream_usage": "yes"})
    with pytest.raises(ConfigError, match="options.max_connections must be a positive integer"):
        make("http://127.0.0.1:1/v1", options={"max_connections": 0})


def test_capabilities():
    b = make("http://127.0.0.1:1/v1", capabilities=["tools", "vision", "json_schema"])
    assert b.capabilities.tools and b.capabilities.vision and not b.capabilities.embeddings
    assert b.capabilities.structured == "json_schema"
    assert make("http://127.0.0.1:1/v1", capabilities=["json_object", "strict"]).capabilities.structured == "strict"
    assert make("http://127.0.0.1:1/v1").capabilities.structured == "none"


async def test_azure_deployment_and_headers(monkeypatch):
    monkeypatch.setenv("FEDINF_TEST_AZURE_KEY", "az-key")
    async with FakeOpenAIUpstream(api_key="az-key") as up:
        b = make(up.origin, api_key_env="FEDINF_TEST_AZURE_KEY",
                 options={"api_version": "2024-10-21", "deployment": "gpt4o-prod", "headers": {"x-team": "a"}})
        try:
            out = await b.chat(req(), ctx())
            assert out["choices"][0]["message"]["content"] == "echo: hello world"
            rec = up.requests[-1]
            assert rec.path == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
            assert rec.headers["api-key"] == "az-key" and "authorization" not in rec.headers
            assert rec.headers["x-team"] == "a"
            assert text_of(await collect(b, req(), ctx())) == "echo: hello world"
            assert await b.health() is True
        finally:
            await b.aclose()


async def test_health(up, backend):
    assert await backend.health() is True
    up.fail(503, scope="all")
    assert await backend.health() is False
    up.clear()
    up.hang(scope="all")
    quick = make(up.url, read_s=0.3)  # health waits at most min(3 s, read_s)
    try:
        t0 = time.monotonic()
        assert await quick.health() is False
        assert time.monotonic() - t0 < 1
    finally:
        await quick.aclose()


async def test_embeddings(up):
    b = make(up.url, capabilities=["embeddings"])
    try:
        out = await b.embed(["a b", "c"], ctx())
        assert [d["index"] for d in out["data"]] == [0, 1] and len(out["data"][0]["embedding"]) == 8
        assert out["usage"]["prompt_tokens"] == 3
        assert up.bodies[-1] == {"model": "up-model", "input": ["a b", "c"]}
    finally:
        await b.aclose()
    b = make(up.url)
    with pytest.raises(CapabilityError):
        await b.embed(["a"], ctx())
