"""The fake upstream servers themselves: fidelity (checked with the official SDKs as clients), fault rules, the
HTTP control endpoint and the standalone process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from fedinf.testing.anthropic_upstream import FakeAnthropicUpstream
from fedinf.testing.faults import FaultPlan
from fedinf.testing.upstream import FakeOpenAIUpstream

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")


async def test_openai_sdk_reads_the_fake():
    async with FakeOpenAIUpstream() as up:
        client = openai.AsyncOpenAI(base_url=up.url, api_key="x", max_retries=0)
        out = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi there"}])
        assert out.choices[0].message.content == "echo: hi there" and out.usage.total_tokens == 5
        stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                      stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
        assert chunks[-1].usage.completion_tokens == 2
        plain = [c async for c in await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)]
        assert all(c.usage is None and c.choices for c in plain)  # include_usage off: no usage chunk
        models = await client.models.list()
        assert [m.id for m in models.data] == ["fake-model"]
        emb = await client.embeddings.create(model="e", input=["a"])
        assert len(emb.data[0].embedding) == 8
        up.fail(429, times=1)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        await client.close()


async def test_anthropic_sdk_reads_the_fake():
    async with FakeAnthropicUpstream() as up:
        client = anthropic.AsyncAnthropic(base_url=up.url, api_key="x", max_retries=0)
        msg = await client.messages.create(model="claude-fake", max_tokens=20,
                                           messages=[{"role": "user", "content": "hi there"}])
        assert msg.content[0].text == "echo: hi there" and msg.stop_reason == "end_turn"
        up.script({"content": "ok", "tool_use": [{"name": "f", "input": {"a": 1}}]})
        async with client.messages.stream(model="claude-fake", max_tokens=20,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            final = await stream.get_final_message()
        assert final.content[0].text == "ok" and final.content[1].input == {"a": 1}
        assert final.stop_reason == "tool_use" and final.usage.output_tokens >= 1
        up.fail(529, times=1)
        with pytest.raises(anthropic.APIStatusError) as e:
            await client.messages.create(model="claude-fake", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert e.value.status_code == 529 and e.value.body["error"]["type"] == "overloaded_error"
        with pytest.raises(anthropic.BadRequestError):  # the fake rejects what the real API rejects
            await client.messages.create(model="claude-fake", max_tokens=5,
                                         messages=[{"role": "system", "content": "x"}])
        await client.close()


def test_fault_rules_times_probability_scope():
    plan = FaultPlan(seed=7)
    once = plan.add("status", times=1, status=500)
    assert plan.pick(chat=True) is once and plan.pick(chat=True) is None
    half = plan.add("reset", probability=0.5)
    hits = sum(plan.pick(chat=True) is half for _ in range(1000))
    assert 420 < hits < 580
    assert plan.pick(chat=False) is None  # chat-scoped rules leave /health alone
    down = plan.add("status", scope="all", status=503)
    plan.rules.remove(half)
    assert plan.pick(chat=False) is down
    with pytest.raises(ValueError):
        plan.add("explode")


async def test_control_endpoint():
    async with FakeOpenAIUpstream(seed=1) as up, aiohttp.ClientSession() as s:
        async with s.post(up.origin + "/_control", json={"action": "inject", "kind": "status", "status": 503,
                                                         "times": 1}) as r:
            assert (await r.json())["rule"]["status"] == 503
        async with s.post(up.url + "/chat/completions", json={"model": "m", "messages": [
                {"role": "user", "content": "a"}]}) as r:
            assert r.status == 503 and (await r.json())["error"]["code"] == "503"
        async with s.post(up.origin + "/_control", json={"action": "script", "responses": ["scripted!"]}) as r:
            assert r.status == 200
        async with s.post(up.url + "/chat/completions", json={"model": "m", "messages": [
                {"role": "user", "content": "a"}]}) as r:
            assert (await r.json())["choices"][0]["message"]["content"] == "scripted!"
        async with s.get(up.origin + "/_control") as r:
            state = await r.json()
        assert state["stats"]["requests"] == 2 and state["stats"]["status_503"] == 1
        assert state["requests"][-1]["model"] == "m"
        async with s.post(up.origin + "/_control", json={"action": "inject", "kind": "nope"}) as r:
            assert r.status == 400


async def test_speed_of_the_fake():
    """The benchmark needs a fast upstream: 200 sequential keep-alive requests well under 1 ms each here."""
    async with FakeOpenAIUpstream() as up, aiohttp.ClientSession() as s:
        body = {"model": "m", "messages": [{"role": "user", "content": "word " * 200}]}
        t0 = time.perf_counter()
        for _ in range(200):
            async with s.post(up.url + "/chat/completions", json=body) as r:
                await r.read()
        per_request_ms = (time.perf_counter() - t0) / 200 * 1000
    assert per_request_ms < 5  # client + server in one process on a shared 2-core box; typically ~0.5 ms


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("module,path", [("fedinf.testing.upstream", "/health"),
                                         ("fedinf.testing.anthropic_upstream", "/v1/models")])
async def test_standalone_process(module, path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), "--fault",
                             '{"kind": "status", "status": 500, "times": 1, "scope": "all"}'],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        statuses = []
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                        statuses.append(r.status)
                    if len(statuses) == 2:
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
        assert statuses == [500, 200]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


from fedinf.testing.fixtures import fake_anthropic, fake_openai, fake_upstreams  # noqa: E402,F401  (fixtures)


async def test_fixtures(fake_openai, fake_anthropic, fake_upstreams):
    replicas = await fake_upstreams(3, reply_tokens=2)
    assert len({r.port for r in replicas} | {fake_openai.port, fake_anthropic.port}) == 5
    replicas[1].fail(503)
    async with aiohttp.ClientSession() as s:
        statuses = []
        for r in replicas:
            async with s.post(r.url + "/chat/completions", json={"model": "m", "messages": [
                    {"role": "user", "content": "a b c d"}]}) as resp:
                statuses.append(resp.status)
                if resp.status == 200:
                    assert (await resp.json())["choices"][0]["message"]["content"] == "echo: a"
    assert statuses == [200, 503, 200]
    assert [len(r.bodies) for r in replicas] == [1, 1, 1]
