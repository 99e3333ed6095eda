"""A fake Anthropic Messages API server (real aiohttp HTTP on loopback) with the same fault injection as
:mod:`fedinf.testing.upstream`.

``POST /v1/messages`` answers JSON or the real SSE event sequence (``message_start``, ``ping``, per block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or ``input_json_delta``) / ``content_block_stop``,
``message_delta`` with ``stop_reason`` and ``usage``, ``message_stop``). Requests are checked like the real API does
for the things a translator can get wrong: ``anthropic-version`` header, ``max_tokens`` present, roles only
``user``/``assistant``, non-empty content, ``tool_result`` blocks answering a ``tool_use`` of the previous turn.
Errors use Anthropic's shape ``{"type": "error", "error": {"type", "message"}}`` (529 ``overloaded_error``...).
``GET /v1/models`` lists models.

Default answer: ``"echo: "`` + the last user turn's text, cut to ``max_tokens`` (``stop_reason: "max_tokens"``).
A scripted answer is a string or a dict with ``content`` (text), ``tool_use`` (list of ``{id?, name, input}``) and
``stop_reason``. A ``status`` fault with ``after_tokens`` on a streamed request sends an ``error`` event mid-stream.

Standalone: ``python -m fedinf.testing.anthropic_upstream --port 9001``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fedinf.testing.faults import FaultRule
from fedinf.testing.server import (
    FakeServer, count_tokens, exact_tokens, message_text, standalone_main, word_tokens,
)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}


@dataclass(slots=True)
class Reply:
    tokens: list[str]
    tool_use: list[dict[str, Any]]
    stop_reason: str
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) + sum(count_tokens(json.dumps(t["input"])) for t in self.tool_use)

    def blocks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"type": "text", "text": "".join(self.tokens)}] if self.tokens else []
        return out + [{"type": "tool_use", **t} for t in self.tool_use]


class FakeAnthropicUpstream(FakeServer):
    """Fake Messages API. ``api_key``: when set, the ``x-api-key`` header must carry it."""

    def __init__(self, *, reply_tokens: int = 16, models: tuple[str, ...] = ("claude-fake",), **kw: Any) -> None:
        super().__init__(**kw)
        self.reply_tokens = reply_tokens
        self.models = models
        self._n = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._models)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def _bad(self, message: str) -> web.Response:
        return web.json_response(self.error_body(400, message), status=400)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.receive(request)
        denied = self.check_key(request, "x-api-key")
        if denied is not None:
            return denied
        problem = validate(body, request.headers.get("anthropic-version"))
        if problem:
            return self._bad(problem)
        rule = self.faults.pick(chat=True)
        if not (rule is not None and rule.kind == "status" and body.get("stream") and "after_tokens" in rule.params):
            early = await self.common_fault(request, rule)
            if early is not None:
                return early
        await self.pre_answer(rule)
        reply = self._reply(body, rule)
        self._n += 1
        msg = {"id": f"msg_fake_{self._n}", "type": "message", "role": "assistant", "model": body["model"],
               "stop_sequence": None}
        usage = rule is None or rule.kind != "no_usage"
        if body.get("stream"):
            return await self._stream(request, msg, reply, rule, usage)
        kind = rule.kind if rule is not None else ""
        if kind == "stall":
            return await self.hang_forever()
        if kind in ("malformed_json", "malformed_sse"):
            return web.Response(body=b'{"id": "msg_broken", "type": "message", "content": [{"type": "te',
                                content_type="application/json")
        out = {**msg, "content": reply.blocks(), "stop_reason": reply.stop_reason}
        if usage:
            out["usage"] = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
        raw = json.dumps(out).encode()
        if kind == "cutoff":
            resp = web.StreamResponse(headers={"content-type": "application/json"})
            resp.content_length = len(raw)
            await resp.prepare(request)
            await resp.write(raw[: len(raw) // 2])
            return await self.cut(request, resp)
        return web.Response(body=raw, content_type="application/json")

    def _reply(self, body: dict[str, Any], rule: FaultRule | None) -> Reply:
        messages = body["messages"]
        prompt = count_tokens(system_text(body.get("system"))) + sum(
            count_tokens(message_text(m.get("content"))) for m in messages)
        limit = int(body["max_tokens"])
        item = self.next_script()
        if item is not None:
            item = {"content": item} if isinstance(item, str) else item
            tools = [{"id": t.get("id") or f"toolu_fake_{i}", "name": t["name"], "input": t.get("input") or {}}
                     for i, t in enumerate(item.get("tool_use") or ())]
            tokens = exact_tokens(item.get("content") or "")
            stop = item.get("stop_reason") or ("tool_use" if tools else "end_turn")
        else:
            last = next((m for m in reversed(messages) if m["role"] == "user"), messages[-1])
            tokens, tools, stop = word_tokens("echo: " + message_text(last.get("content"))), [], "end_turn"
            tokens = tokens[: self.reply_tokens]
        if rule is not None and rule.kind == "length":
            tokens, stop = tokens[: int(rule.get("tokens", min(limit, 3)))], "max_tokens"
        elif len(tokens) > limit:
            tokens, stop = tokens[:limit], "max_tokens"
        return Reply(tokens, tools, stop, prompt)

    async def _stream(self, request: web.Request, msg: dict[str, Any], reply: Reply, rule: FaultRule | None,
                      usage: bool) -> web.StreamResponse:
        events = stream_events(msg, reply, usage)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        kind = rule.kind if rule is not None else ""
        delay = self.token_delay_s(rule)
        try:
            if kind in ("stall", "cutoff", "malformed_sse", "malformed_json", "status"):
                # message_start, ping, content_block_start, then the tokens
                n = 0 if kind == "malformed_json" else 3 + int(rule.get("after_tokens", 2))  # type: ignore[union-attr]
                await self.write_events(resp, events[:n], delay)
                if kind == "stall":
                    return await self.hang_forever()
                if kind == "cutoff":
                    return await self.cut(request, resp)
                if kind == "status":
                    status = int(rule.get("status", 529))  # type: ignore[union-attr]
                    err = self.error_body(status, str(rule.get("message") or "Overloaded"))  # type: ignore[union-attr]
                    await resp.write(_event("error", err))
                    await resp.write_eof()
                    return resp
                events = [b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind\n\n",
                          *events[n:]]
            await self.write_events(resp, events, delay)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # a write after the client left (no cancellation)
            self.stats["disconnects"] += 1
        return resp

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.stats["models"] += 1
        early = await self.common_fault(request, self.faults.pick(chat=False))
        if early is not None:
            return early
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in self.models]
        return web.json_response({"data": data, "has_more": False, "first_id": self.models[0],
                                  "last_id": self.models[-1]})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"


def stream_events(msg: dict[str, Any], reply: Reply, usage: bool) -> list[bytes]:
    """The real event sequence of a streamed message."""
    start_usage = {"input_tokens": reply.input_tokens, "output_tokens": 1} if usage else {}
    out = [_event("message_start", {"type": "message_start", "message": {
        **msg, "content": [], "stop_reason": None, "usage": start_usage}}), _event("ping", {"type": "ping"})]
    index = 0
    if reply.tokens or not reply.tool_use:
        out.append(_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}}))
        out += [_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": tok}}) for tok in reply.tokens]
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for i, tool in enumerate(reply.tool_use, start=index):
        out.append(_event("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
            "type": "tool_use", "id": tool["id"], "name": tool["name"], "input": {}}}))
        args = json.dumps(tool["input"])
        for part in (args[: len(args) // 2], args[len(args) // 2:]):
            out.append(_event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                      "delta": {"type": "input_json_delta", "partial_json": part}}))
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": reply.stop_reason,
                                                               "stop_sequence": None}}
    if usage:
        delta["usage"] = {"output_tokens": reply.output_tokens}
    out += [_event("message_delta", delta), _event("message_stop", {"type": "message_stop"})]
    return out


def system_text(system: Any) -> str:
    if isinstance(system, list):
        return " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    return str(system or "")


def validate(body: Any, version: str | None) -> str | None:
    """What the real API would reject (a translator's mistakes), as its error message; ``None`` when fine."""
    if not version:
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if "temperature" in body and not 0 <= body["temperature"] <= 1:
        return "temperature: must be between 0 and 1"
    tool_ids: set[str] = set()
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        if isinstance(content, str):
            if not content:
                return f"messages.{i}: text content blocks must be non-empty"
            continue
        if not isinstance(content, list) or not content:
            return f"messages.{i}: all messages must have non-empty content"
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and not block.get("text"):
                return f"messages.{i}: text content blocks must be non-empty"
            if kind == "tool_use":
                if not isinstance(block.get("input"), dict):
                    return f"messages.{i}: tool_use.input must be an object"
                tool_ids.add(str(block.get("id")))
            elif kind == "tool_result" and str(block.get("tool_use_id")) not in tool_ids:
                return f"messages.{i}: tool_result block(s) without a matching tool_use"
            elif kind not in ("text", "tool_use", "tool_result", "image"):
                return f"messages.{i}: unknown content block type {kind!r}"
    return None


def main(argv: list[str] | None = None) -> None:
    standalone_main(FakeAnthropicUpstream, argv, prog="python -m fedinf.testing.anthropic_upstream",
                    description="A fake Anthropic Messages API server with fault injection.", default_port=8001)


if __name__ == "__main__":
    main()
