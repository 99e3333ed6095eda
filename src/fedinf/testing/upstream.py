"""A controllable fake OpenAI-compatible upstream: a real aiohttp server for tests, benchmarks and fault injection.

Endpoints: ``POST /v1/chat/completions`` (JSON and SSE streaming, ``usage`` filled in, ``stream_options.
include_usage`` honoured), ``POST /v1/embeddings``, ``GET /v1/models``, ``GET /health``, the same under Azure's
``/openai/deployments/{deployment}/...?api-version=...`` (with an ``api-key`` header), and ``/_control``
(see :mod:`fedinf.testing.server`). Faults: :mod:`fedinf.testing.faults`.

Default answer (deterministic): ``"echo: "`` followed by the last user message, one token per word, at most
``reply_tokens`` tokens (finish reason ``"stop"``); cut shorter by the request's ``max_tokens`` it ends with
``"length"``. A scripted
answer is a string (the content) or a dict with ``content``, ``tool_calls`` (OpenAI shape; ``id``/``type`` may be
left out) and ``finish_reason``.

Standalone: ``python -m fedinf.testing.upstream --port 9000 [--delay-ms 0] [--token-delay-ms 0]
[--reply-tokens 16] [--fault '{"kind": "status", "status": 503, "probability": 0.5}'] ...``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fedinf.testing.faults import FaultRule
from fedinf.testing.server import (
    FakeServer, count_tokens, exact_tokens, message_text, standalone_main, word_tokens,
)

_MALFORMED = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess'


@dataclass(slots=True)
class Answer:
    tokens: list[str]
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    prompt_tokens: int

    @property
    def content(self) -> str | None:
        return "".join(self.tokens) if self.tokens or not self.tool_calls else None

    def usage(self) -> dict[str, int]:
        completion = len(self.tokens) + sum(count_tokens(c["function"]["arguments"]) for c in self.tool_calls or ())
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


class FakeOpenAIUpstream(FakeServer):
    """Fake OpenAI-compatible server. ``api_key``: when set, ``Authorization: Bearer <key>`` (or Azure's
    ``api-key``) is required. ``models``: names listed by ``/v1/models``."""

    base_path = "/v1"

    def __init__(self, *, reply_tokens: int = 16, models: tuple[str, ...] = ("fake-model",), **kw: Any) -> None:
        super().__init__(**kw)
        self.reply_tokens = reply_tokens
        self.models = models
        self._n = 0

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/chat/completions", self._chat)
        r.add_post("/v1/embeddings", self._embeddings)
        r.add_get("/v1/models", self._models)
        r.add_get("/health", self._health)
        r.add_post("/openai/deployments/{deployment}/chat/completions", self._azure(self._chat))
        r.add_post("/openai/deployments/{deployment}/embeddings", self._azure(self._embeddings))
        r.add_get("/openai/models", self._azure(self._models))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        etype = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                 429: "rate_limit_exceeded"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": etype, "param": None, "code": str(status)}}

    def _azure(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            if "api-version" not in request.query:
                await self.receive(request)
                return web.json_response(self.error_body(404, "Resource not found"), status=404)
            return await handler(request, azure=True)
        return wrapped

    def _auth(self, request: web.Request, azure: bool) -> web.Response | None:
        return self.check_key(request, "api-key") if azure else self.check_key(request, "authorization", "Bearer ")

    # ------------------------------------------------------------------ chat

    async def _chat(self, request: web.Request, azure: bool = False) -> web.StreamResponse:
        body = await self.receive(request)
        denied = self._auth(request, azure)
        if denied is not None:
            return denied
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return web.json_response(self.error_body(400, "`messages` must be a non-empty list"), status=400)
        rule = self.faults.pick(chat=True)
        early = await self.common_fault(request, rule)
        if early is not None:
            return early
        await self.pre_answer(rule)
        answer = self._answer(body, rule)
        self._n += 1
        head = {"id": f"chatcmpl-fake-{self._n}", "created": int(time.time()), "model": str(body.get("model", ""))}
        with_usage = rule is None or rule.kind != "no_usage"
        if body.get("stream") and (rule is None or rule.kind != "no_stream"):
            return await self._stream(request, body, head, answer, rule, with_usage)
        return await self._json(request, head, answer, rule, with_usage)

    def _answer(self, body: dict[str, Any], rule: FaultRule | None) -> Answer:
        messages = body["messages"]
        prompt = sum(count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        item = self.next_script()
        if item is not None:
            if isinstance(item, str):
                item = {"content": item}
            calls = [_tool_call(c, i) for i, c in enumerate(item.get("tool_calls") or ())] or None
            finish = item.get("finish_reason") or ("tool_calls" if calls else "stop")
            tokens = exact_tokens(item.get("content") or "")
            if rule is not None and rule.kind == "length":
                tokens, finish = tokens[: int(rule.get("tokens", limit or 3))], "length"
            return Answer(tokens, calls, finish, prompt)
        last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), messages[-1])
        text = "echo: " + message_text(last.get("content") if isinstance(last, dict) else "")
        tokens = word_tokens(text, self.reply_tokens)  # the natural answer
        finish = "stop"
        if rule is not None and rule.kind == "length":
            tokens, finish = tokens[: int(rule.get("tokens", limit or 3))], "length"
        elif limit and len(tokens) > int(limit):
            tokens, finish = tokens[: int(limit)], "length"
        return Answer(tokens, None, finish, prompt)

    async def _json(self, request: web.Request, head: dict[str, Any], answer: Answer, rule: FaultRule | None,
                    with_usage: bool) -> web.StreamResponse:
        kind = rule.kind if rule is not None else ""
        if kind == "stall":
            return await self.hang_forever()
        if kind in ("malformed_json", "malformed_sse"):
            return web.Response(body=_MALFORMED, content_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        out: dict[str, Any] = {**head, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "finish_reason": answer.finish_reason, "logprobs": None}]}
        if with_usage:
            out["usage"] = answer.usage()
        raw = json.dumps(out).encode()
        if kind == "cutoff":
            resp = web.StreamResponse(headers={"content-type": "application/json"})
            resp.content_length = len(raw)
            await resp.prepare(request)
            await resp.write(raw[: len(raw) // 2])
            return await self.cut(request, resp)
        return web.Response(body=raw, content_type="application/json")

    async def _stream(self, request: web.Request, body: dict[str, Any], head: dict[str, Any], answer: Answer,
                      rule: FaultRule | None, with_usage: bool) -> web.StreamResponse:
        events = self._events(head, answer, with_usage and bool((body.get("stream_options") or {}).get(
            "include_usage")))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        kind = rule.kind if rule is not None else ""
        delay = self.token_delay_s(rule)
        try:
            if kind in ("stall", "cutoff", "malformed_sse", "malformed_json"):
                n = 0 if kind == "malformed_json" else 1 + int(rule.get("after_tokens", 2))  # type: ignore[union-attr]
                await self.write_events(resp, events[:n], delay)
                if kind == "stall":
                    return await self.hang_forever()
                if kind == "cutoff":
                    return await self.cut(request, resp)
                events = [b"data: {\"id\": \"chatcmpl-broken\", \"choices\": [{\"delta\n\n"] + events[n:]
            await self.write_events(resp, events, delay)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # a write after the client left (no cancellation)
            self.stats["disconnects"] += 1
        return resp

    @staticmethod
    def _events(head: dict[str, Any], answer: Answer, include_usage: bool) -> list[bytes]:
        """The SSE events of a streamed answer: role, one per token, tool calls, finish, usage, ``[DONE]``."""
        def ev(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return b"data: " + json.dumps({**head, "object": "chat.completion.chunk", "choices": choices,
                                           **extra}).encode() + b"\n\n"

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]

        out = [ev(choice({"role": "assistant", "content": ""}))]
        out += [ev(choice({"content": tok})) for tok in answer.tokens]
        for i, call in enumerate(answer.tool_calls or ()):
            args = call["function"]["arguments"]
            cut = len(args) // 2
            out.append(ev(choice({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {
                "name": call["function"]["name"], "arguments": args[:cut]}}]})))
            out.append(ev(choice({"tool_calls": [{"index": i, "function": {"arguments": args[cut:]}}]})))
        out.append(ev(choice({}, answer.finish_reason)))
        if include_usage:
            out.append(ev([], usage=answer.usage()))
        out.append(b"data: [DONE]\n\n")
        return out

    # ------------------------------------------------------------------ other endpoints

    async def _embeddings(self, request: web.Request, azure: bool = False) -> web.StreamResponse:
        body = await self.receive(request)
        denied = self._auth(request, azure)
        if denied is not None:
            return denied
        early = await self.common_fault(request, self.faults.pick(chat=True))
        if early is not None:
            return early
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return web.json_response(self.error_body(400, "`input` must be a string or a list of strings"),
                                     status=400)
        data = [{"object": "embedding", "index": i, "embedding": _vector(t)} for i, t in enumerate(inputs)]
        n = sum(count_tokens(t) for t in inputs)
        return web.json_response({"object": "list", "data": data, "model": body.get("model", ""),
                                  "usage": {"prompt_tokens": n, "total_tokens": n}})

    async def _models(self, request: web.Request, azure: bool = False) -> web.StreamResponse:
        self.stats["models"] += 1
        early = await self.common_fault(request, self.faults.pick(chat=False))
        if early is not None:
            return early
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "fedinf-fake"} for m in self.models]})

    async def _health(self, request: web.Request) -> web.StreamResponse:
        self.stats["health"] += 1
        early = await self.common_fault(request, self.faults.pick(chat=False))
        if early is not None:
            return early
        return web.json_response({"status": "ok"})


def _tool_call(call: dict[str, Any], i: int) -> dict[str, Any]:
    fn = call.get("function") or {"name": call.get("name"), "arguments": call.get("arguments", "{}")}
    args = fn.get("arguments", "{}")
    return {"id": call.get("id") or f"call_fake_{i}", "type": "function",
            "function": {"name": fn["name"], "arguments": args if isinstance(args, str) else json.dumps(args)}}


def _vector(text: str, dim: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0 - 0.5, 6) for b in digest[:dim]]


def main(argv: list[str] | None = None) -> None:
    standalone_main(FakeOpenAIUpstream, argv, prog="python -m fedinf.testing.upstream", description=__doc__.split("\n\n")[0], default_port=8000)


if __name__ == "__main__":
    main()
