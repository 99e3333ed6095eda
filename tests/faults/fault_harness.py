"""Fault-injection harness: fake OpenAI-compatible upstreams (real aiohttp servers) behind a real fedinf HTTP server
(uvicorn in the test's event loop), driven by a real HTTP client. Nothing on the network path is mocked.

Everything runs in one event loop, so the upstreams keep answering while the client waits.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import uvicorn

from fedinf.config import parse_config
from fedinf.gateway import Gateway
from fedinf.testing.upstream import FakeOpenAIUpstream


def build_gateway(config_text: str) -> Gateway:
    """The real Gateway (real classifier) in open mode (no API keys) and without an audit store: these tests are
    about routing; access control and audit have their own."""
    return Gateway.from_config(parse_config(config_text, source="test.yaml"), access=None, auditor=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    gateway: Gateway
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    session: aiohttp.ClientSession

    async def chat(self, body: dict[str, Any], timeout: float = 30.0) -> "Reply":
        """POST a chat completion; for ``stream: true`` read the whole SSE stream."""
        t0 = time.monotonic()
        async with self.session.post(self.url + "/v1/chat/completions", json=body,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if body.get("stream") and resp.status == 200:
                events: list[Any] = []
                async for line in resp.content:
                    line = line.strip()
                    if line.startswith(b"data: "):
                        data = line[6:]
                        events.append("[DONE]" if data == b"[DONE]" else json.loads(data))
                return Reply(resp.status, headers, None, events, time.monotonic() - t0)
            payload = await resp.json(content_type=None)
            return Reply(resp.status, headers, payload, [], time.monotonic() - t0)

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    events: list[Any]
    elapsed: float

    @property
    def text(self) -> str:
        if self.body is not None:
            return self.body["choices"][0]["message"]["content"]
        return "".join((c.get("delta") or {}).get("content") or "" for e in self.events
                       if isinstance(e, dict) for c in e.get("choices", []))

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and "error" in self.body:
            return self.body["error"]["code"]
        for e in self.events:
            if isinstance(e, dict) and "error" in e:
                return e["error"]["code"]
        return None


@asynccontextmanager
async def serve(config_text: str, *, grace_s: int = 5) -> AsyncIterator[Served]:
    """Run fedinf's ASGI app under uvicorn on a loopback port, in this event loop."""
    from fedinf.server import create_app

    gw = build_gateway(config_text)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(gw), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=grace_s, access_log=False))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    session = aiohttp.ClientSession()
    served = Served(gw, f"http://127.0.0.1:{port}", server, task, session)
    try:
        yield served
    finally:
        await session.close()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=grace_s + 10)


@asynccontextmanager
async def upstreams(n: int, **kw: Any) -> AsyncIterator[list[FakeOpenAIUpstream]]:
    ups = [FakeOpenAIUpstream(seed=i, **kw) for i in range(n)]
    for up in ups:
        await up.start()
    try:
        yield ups
    finally:
        for up in ups:
            await up.stop()


def chat_count(up: FakeOpenAIUpstream) -> int:
    return sum(1 for r in up.requests if r.method == "POST" and r.path.endswith("/chat/completions"))


ZONES = """
zones:
  onprem: {kind: onprem, clearance: restricted}
  vpc: {kind: vpc, clearance: confidential}
  cloud: {kind: cloud, clearance: internal}
"""


def model_yaml(mid: str, ups: list[FakeOpenAIUpstream], *, zone: str = "onprem", read_s: float = 2.0,
               extra: str = "", weights: list[float] | None = None) -> str:
    eps = "".join(f"\n      - {{url: {u.url}, name: r{i}, weight: {weights[i] if weights else 1}}}"
                  for i, u in enumerate(ups))
    return (f"\n  - id: {mid}\n    backend: openai\n    zone: {zone}\n    license: Apache-2.0\n"
            f"    timeouts: {{connect_s: 1, read_s: {read_s}, total_s: 10}}\n    endpoints:{eps}\n{extra}")


def user(text: str = "hello there", **fedinf: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
    if fedinf:
        body["fedinf"] = fedinf
    return body
