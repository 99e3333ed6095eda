"""The base of fedinf's fake upstream servers: a real aiohttp web server on loopback that records what it received
and can be told to fail (see :mod:`fedinf.testing.faults`).

Use from tests::

    async with FakeOpenAIUpstream() as up:          # random port on 127.0.0.1
        up.fail(503, times=2)                        # the next two chat requests get 503
        ... call up.url ...
        assert up.bodies[-1]["model"] == "m"

or as a process (``python -m fedinf.testing.upstream --port 9000``) and steer it over HTTP with ``POST /_control``:
``{"action": "inject", "kind": "status", "status": 503, "times": 2}``, ``{"action": "clear"}``,
``{"action": "script", "responses": [...]}``, ``{"action": "forget"}`` (drop recorded requests);
``GET /_control`` returns the statistics, the active rules and the last recorded request bodies (``?headers=1``: and
their headers).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from fedinf.testing.faults import FaultPlan, FaultRule


@dataclass(slots=True)
class RecordedRequest:
    """What the fake server received: method, path (with query), headers (lower-cased names) and the JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    peer: Any = None


class FakeServer:
    """Common machinery; subclasses add their API routes in :meth:`add_routes` and define :meth:`error_body`."""

    base_path = ""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, seed: int | None = None, max_recorded: int = 10_000,
        api_key: str | None = None, delay_ms: float = 0.0, token_delay_ms: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.delay_ms = delay_ms
        self.token_delay_ms = token_delay_ms
        self.faults = FaultPlan(seed=seed)
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self.scripted: deque[Any] = deque()
        self.stats: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._count_disconnects])
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_control", self._control_get)
        self.add_routes(app)
        return app

    @web.middleware
    async def _count_disconnects(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """``stats["disconnects"]``: handlers cancelled because the client went away (or the server stopped)."""
        try:
            return await handler(request)
        except asyncio.CancelledError:
            self.stats["disconnects"] += 1
            raise

    def add_routes(self, app: web.Application) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def start(self) -> str:
        """Start listening; returns :attr:`url`."""
        runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a client is configured with (e.g. ``http://127.0.0.1:PORT/v1`` for OpenAI)."""
        return self.origin + self.base_path

    # ------------------------------------------------------------------ commands (Python API)

    def inject(self, kind: str, *, times: int | None = None, probability: float = 1.0, scope: str = "chat",
               **params: Any) -> FaultRule:
        """Add a fault rule (see :mod:`fedinf.testing.faults`); returns it (``rule.applied`` counts its uses)."""
        return self.faults.add(kind, times=times, probability=probability, scope=scope, **params)  # type: ignore[arg-type]

    def fail(self, status: int = 503, *, times: int | None = None, probability: float = 1.0, scope: str = "chat",
             message: str | None = None, retry_after: float | None = None) -> FaultRule:
        params: dict[str, Any] = {"status": status}
        if message is not None:
            params["message"] = message
        if retry_after is not None:
            params["retry_after"] = retry_after
        return self.inject("status", times=times, probability=probability, scope=scope, **params)

    def reset_connection(self, *, times: int | None = None, probability: float = 1.0) -> FaultRule:
        return self.inject("reset", times=times, probability=probability)

    def hang(self, *, times: int | None = None, probability: float = 1.0, scope: str = "chat") -> FaultRule:
        return self.inject("hang", times=times, probability=probability, scope=scope)

    def slow(self, delay_ms: float | None = None, *, min_ms: float | None = None, max_ms: float | None = None,
             token_delay_ms: float | None = None, times: int | None = None, probability: float = 1.0) -> FaultRule:
        params: dict[str, Any] = {k: v for k, v in (("delay_ms", delay_ms), ("min_ms", min_ms), ("max_ms", max_ms),
                                    ("token_delay_ms", token_delay_ms)) if v is not None}
        return self.inject("slow", times=times, probability=probability, **params)

    def stall(self, after_tokens: int = 2, *, times: int | None = None) -> FaultRule:
        return self.inject("stall", times=times, after_tokens=after_tokens)

    def cut_off(self, after_tokens: int = 2, *, times: int | None = None) -> FaultRule:
        return self.inject("cutoff", times=times, after_tokens=after_tokens)

    def malformed_json(self, *, times: int | None = None) -> FaultRule:
        return self.inject("malformed_json", times=times)

    def malformed_sse(self, after_tokens: int = 1, *, times: int | None = None) -> FaultRule:
        return self.inject("malformed_sse", times=times, after_tokens=after_tokens)

    def length(self, tokens: int | None = None, *, times: int | None = None) -> FaultRule:
        params: dict[str, Any] = {"tokens": tokens} if tokens is not None else {}
        return self.inject("length", times=times, **params)

    def no_usage(self, *, times: int | None = None) -> FaultRule:
        return self.inject("no_usage", times=times)

    def script(self, *responses: Any) -> None:
        """Answer the next requests with these, in order (then the default echo). An item is a string (the
        content) or a dict in the server's own terms (see the subclass)."""
        self.scripted.extend(responses)

    def clear(self) -> None:
        """Remove every fault rule and scripted answer (recorded requests stay)."""
        self.faults.clear()
        self.scripted.clear()

    def forget(self) -> None:
        self.requests.clear()
        self.stats.clear()

    @property
    def bodies(self) -> list[Any]:
        """Bodies of the generation requests received, oldest first."""
        return [r.body for r in self.requests if r.method == "POST"]

    # ------------------------------------------------------------------ helpers for handlers

    async def receive(self, request: web.Request) -> Any:
        """Read, decode and record the JSON body (``None`` when absent or not JSON)."""
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(request.method, request.path_qs,
                                             {k.lower(): v for k, v in request.headers.items()}, body,
                                             time.monotonic(), request.transport and
                                             request.transport.get_extra_info("peername")))
        self.stats["requests"] += 1
        return body

    def next_script(self) -> Any:
        return self.scripted.popleft() if self.scripted else None

    async def hang_forever(self) -> web.StreamResponse:
        """Never answer; the handler is cancelled when the client disconnects or the server stops."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """Reset the connection (RST: SO_LINGER 0 then abort) and never answer."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()
        self.stats["resets"] += 1
        return await self.hang_forever()

    async def pre_answer(self, rule: FaultRule | None) -> None:
        """Apply the base delay and a ``slow`` rule's delay."""
        delay = self.delay_ms / 1000.0
        if rule is not None and rule.kind == "slow":
            delay += self.faults.delay_s(rule)
        if delay > 0:
            await asyncio.sleep(delay)

    def token_delay_s(self, rule: FaultRule | None) -> float:
        if rule is not None and rule.kind == "slow" and "token_delay_ms" in rule.params:
            return float(rule.params["token_delay_ms"]) / 1000.0
        return self.token_delay_ms / 1000.0

    def error_body(self, status: int, message: str) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_response(self, rule: FaultRule) -> web.Response:
        status = int(rule.get("status", 503))
        message = str(rule.get("message") or f"injected fault: HTTP {status}")
        headers = {"retry-after": str(rule.params["retry_after"])} if "retry_after" in rule.params else None
        self.stats[f"status_{status}"] += 1
        return web.json_response(self.error_body(status, message), status=status, headers=headers)

    async def common_fault(self, request: web.Request, rule: FaultRule | None) -> web.StreamResponse | None:
        """Answer the faults that look the same on every endpoint; ``None`` = go on and answer."""
        if rule is None:
            return None
        if rule.kind == "status":
            return self.error_response(rule)
        if rule.kind == "reset":
            return await self.reset(request)
        if rule.kind == "hang":
            return await self.hang_forever()
        return None

    def check_key(self, request: web.Request, header: str, prefix: str = "") -> web.Response | None:
        """401 in the server's error shape unless ``header`` carries :attr:`api_key` (when one is set)."""
        if self.api_key is None or request.headers.get(header) == prefix + self.api_key:
            return None
        return web.json_response(self.error_body(401, "invalid api key"), status=401)

    async def write_events(self, resp: web.StreamResponse, events: list[bytes], delay_s: float) -> None:
        """Write SSE events, all at once when there is no per-token delay."""
        if delay_s <= 0:
            await resp.write(b"".join(events))
            return
        for ev in events:
            await resp.write(ev)
            await asyncio.sleep(delay_s)

    async def cut(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """Close the connection after what was written (a stream or body cut off mid-way)."""
        self.stats["cutoffs"] += 1
        if request.transport is not None:
            request.transport.close()
        return await self.hang_forever()

    # ------------------------------------------------------------------ control endpoint

    async def _control(self, request: web.Request) -> web.Response:
        try:
            cmd = await request.json()
            action = cmd.pop("action")
            if action == "inject":
                rule = self.faults.add_dict(cmd)
                return web.json_response({"ok": True, "rule": rule.to_dict()})
            if action == "clear":
                self.clear()
            elif action == "script":
                self.script(*cmd.get("responses", []))
            elif action == "forget":
                self.forget()
            elif action == "set":
                for key in ("delay_ms", "token_delay_ms"):
                    if key in cmd:
                        setattr(self, key, float(cmd[key]))
            else:
                raise ValueError(f"unknown action {action!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _control_get(self, request: web.Request) -> web.Response:
        last = int(request.query.get("last", "20"))
        recent = list(self.requests)[-last:] if last > 0 else []
        out = {"stats": dict(self.stats), "rules": [r.to_dict() for r in self.faults.rules],
               "scripted": len(self.scripted), "requests": [r.body for r in recent]}
        if request.query.get("headers") in ("1", "true"):  # ?headers=1: the requests' headers too
            out["headers"] = [r.headers for r in recent]
        return web.json_response(out)


def word_tokens(text: str, limit: int | None = None) -> list[str]:
    """The fake servers' tokenizer: words (at most ``limit``), each but the first with its leading space."""
    words = text.split(None, limit)[:limit] if limit is not None else text.split()
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def exact_tokens(text: str) -> list[str]:
    """Scripted content split into word tokens that join back to exactly ``text`` (whitespace kept)."""
    tokens = re.findall(r"\s*\S+", text)
    tail = text[len("".join(tokens)):]
    if tail:
        tokens = tokens[:-1] + [tokens[-1] + tail] if tokens else [tail]
    return tokens


def count_tokens(text: str) -> int:
    return len(text.split())


def message_text(content: Any) -> str:
    """Text of an OpenAI/Anthropic message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def run_standalone(server: FakeServer, faults: list[str]) -> None:
    """Serve forever (uvloop when installed); ``faults`` are JSON fault specs added at start."""
    for spec in faults:
        server.faults.add_dict(json.loads(spec))
    try:
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(server.app(), host=server.host, port=server.port, access_log=None, handler_cancellation=True,
                print=lambda *a: print(f"fake upstream listening on http://{server.host}:{server.port}", flush=True),
                backlog=1024, shutdown_timeout=0.5, loop=loop)


def standalone_main(cls: type[FakeServer], argv: list[str] | None, *, prog: str, description: str,
                    default_port: int) -> None:
    """The command line shared by the fake upstreams (``python -m fedinf.testing.upstream`` and friends)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=default_port)
    p.add_argument("--delay-ms", type=float, default=0.0, help="wait before every answer")
    p.add_argument("--token-delay-ms", type=float, default=0.0, help="wait between streamed tokens")
    p.add_argument("--reply-tokens", type=int, default=16, help="longest default answer, in tokens")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault dice")
    p.add_argument("--api-key", default=None, help="require this API key")
    p.add_argument("--max-recorded", type=int, default=1000, help="request bodies kept for GET /_control")
    p.add_argument("--fault", action="append", default=[], metavar="JSON",
                   help='a fault rule, e.g. \'{"kind": "status", "status": 503, "probability": 0.5}\'')
    a = p.parse_args(argv)
    server = cls(host=a.host, port=a.port, delay_ms=a.delay_ms, token_delay_ms=a.token_delay_ms,  # type: ignore[call-arg]
                 reply_tokens=a.reply_tokens, seed=a.seed, api_key=a.api_key, max_recorded=a.max_recorded)
    run_standalone(server, a.fault)
