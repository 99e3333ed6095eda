"""The ``anthropic`` backend: Anthropic's Messages API, translated to and from OpenAI's chat shape.

Request translation (OpenAI -> Anthropic):

- ``system``/``developer`` messages -> the top-level ``system`` text (joined by blank lines);
- ``user``/``assistant`` text and image parts -> content blocks (``data:`` URLs -> base64 image sources, other URLs
  -> URL sources); consecutive messages of one role are merged into one turn;
- assistant ``tool_calls`` -> ``tool_use`` blocks; ``tool`` messages -> ``tool_result`` blocks in a user turn;
- ``tools`` -> ``{name, description, input_schema}``; ``tool_choice`` auto/required/none/named -> auto/any/none/tool;
  ``parallel_tool_calls: false`` -> ``disable_parallel_tool_use``;
- ``max_tokens`` (required by Anthropic) from the request, else ``options.max_tokens`` (default 1024);
  ``stop`` -> ``stop_sequences``; ``temperature`` clamped to Anthropic's 0..1; ``top_p``; ``user`` ->
  ``metadata.user_id``. Parameters Anthropic has no equivalent for (penalties, ``seed``, ``logprobs``,
  ``response_format``) are not sent: structured output for this backend is enforced by fedinf's validation.

Response translation: text blocks -> ``content``, ``tool_use`` -> ``tool_calls`` (arguments as JSON text),
``stop_reason`` end_turn/stop_sequence/pause_turn -> ``stop``, max_tokens -> ``length``, tool_use ->
``tool_calls``, refusal -> ``content_filter``; usage input (+ cache) tokens -> ``prompt_tokens``, output tokens ->
``completion_tokens``. Streams: message_start / content_block_* / message_delta / message_stop events become
OpenAI chunks; the last chunk carries the usage. Errors: 429, 5xx and 529 ``overloaded_error`` ->
:class:`BackendUnavailable`; other 4xx -> :class:`BackendRejected`; an ``error`` event mid-stream ->
:class:`StreamInterrupted`.

Options (unknown keys are a :class:`ConfigError`): ``max_tokens``, ``anthropic_version`` (default 2023-06-01),
``headers``, ``max_connections``. Capabilities: ``tools``, ``vision``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fedinf.backends.base import CallContext, Capabilities
from fedinf.backends.http import (
    HttpUpstream, bad_response, check_options, dumps, estimate_tokens, key_hint, loads, replica_name, status_error,
)
from fedinf.errors import BackendUnavailable, CapabilityError
from fedinf.protocol import ChatRequest, Message, completion, usage as make_usage

if TYPE_CHECKING:
    from fedinf.config import Endpoint, ModelSpec

DEFAULT_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
HEALTH_TIMEOUT_S = 3.0
_OPTIONS: dict[str, type] = {"max_tokens": int, "anthropic_version": str, "headers": dict, "max_connections": int}
_CAPS = {"tools", "vision", "no_streaming"}
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "refusal": "content_filter", "model_context_window_exceeded": "length"}
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                "overloaded_error": 529, "timeout_error": 504}


class AnthropicBackend:
    """One endpoint (replica) of a model served by Anthropic's Messages API. See the module docstring."""

    @classmethod
    def capabilities_for(cls, spec: "ModelSpec") -> Capabilities:
        """Streaming and tools (the Messages API always has both), plus ``vision`` when declared."""
        return Capabilities(streaming=True, tools=True).declare(spec.capabilities, allowed=_CAPS, backend="anthropic",
                                                                model_id=spec.id)

    def __init__(self, *, spec: "ModelSpec", endpoint: "Endpoint | None") -> None:
        options = check_options(spec, _OPTIONS, "anthropic")
        self.spec = spec
        self.capabilities = self.capabilities_for(spec)
        self.upstream_model = spec.upstream_model or spec.id
        self.max_tokens: int = options.get("max_tokens", DEFAULT_MAX_TOKENS)
        base = (endpoint.url if endpoint is not None and endpoint.url else None) or DEFAULT_URL
        base = base.removesuffix("/v1")
        self.messages_url, self.models_url = f"{base}/v1/messages", f"{base}/v1/models"
        headers = {"anthropic-version": str(options.get("anthropic_version", DEFAULT_VERSION))}
        key = endpoint.api_key() if endpoint is not None else None
        if key:
            headers["x-api-key"] = key
        headers.update(options.get("headers", {}))
        self.name = replica_name(spec, endpoint)
        self._hint = key_hint(endpoint)
        self.http = HttpUpstream(name=self.name, base_headers=headers, connect_s=spec.timeouts.connect_s,
                                 read_s=spec.timeouts.read_s,
                                 max_connections=options.get("max_connections", 256))

    async def chat(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        """One completion, translated to OpenAI's ``chat.completion`` shape with ``usage``."""
        body = to_anthropic(request, model=ctx.upstream_model or self.upstream_model, max_tokens=self.max_tokens)
        out = await self.http.post_json(self.messages_url, dumps(body), ctx.deadline, hint=self._hint,
                                        headers=ctx.headers)
        if not isinstance(out, dict) or out.get("type") == "error" or not isinstance(out.get("content"), list):
            if isinstance(out, dict) and isinstance(out.get("error"), dict):
                raise status_error(self.name, ERROR_STATUS.get(out["error"].get("type"), 502), dumps(out))
            raise bad_response(self.name, "answered without content blocks")
        result = from_anthropic(out, model=self.upstream_model)
        if not out.get("usage"):
            text = result["choices"][0]["message"]["content"] or ""
            result["usage"] = make_usage(estimate_tokens("".join(request.texts())), estimate_tokens(text))
            ctx.extra["usage_estimated"] = True
        return result

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Yield OpenAI chunks translated from Anthropic's stream events; the last one carries ``usage``."""
        body = to_anthropic(request, model=ctx.upstream_model or self.upstream_model, max_tokens=self.max_tokens,
                            stream=True)
        state = StreamTranslator(self.name, self.upstream_model)

        def finish() -> dict[str, Any]:
            return state.final_chunk(request, ctx)

        return self.http.sse(self.messages_url, dumps(body), ctx.deadline, translate=state.feed, finish=finish,
                             hint=self._hint, headers=ctx.headers)

    async def health(self) -> bool:
        """True when ``GET /v1/models`` answers 2xx within a few seconds."""
        return await self.http.get_ok(self.models_url, min(HEALTH_TIMEOUT_S, self.spec.timeouts.read_s))

    async def load(self) -> None:
        return None  # a remote server: nothing to load

    async def aclose(self) -> None:
        await self.http.aclose()


# ---------------------------------------------------------------- OpenAI -> Anthropic

def to_anthropic(request: ChatRequest, *, model: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    """The Messages API body for ``request`` (see the module docstring for the mapping)."""
    system, messages = translate_messages(request.messages)
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": request.output_limit or max_tokens}
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice, (request.model_extra or {}).get("parallel_tool_calls"))
    if choice is not None:
        if choice.get("type") == "none" and "tools" not in body:
            return body
        body["tool_choice"] = choice
    return body


def translate_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, Anthropic messages) with consecutive same-role turns merged."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            text = m.text()
            if text:
                system.append(text)
            continue
        if m.role in ("tool", "function"):
            result = {"type": "tool_result", "tool_use_id": m.tool_call_id or m.name or "", "content": m.text()}
            _append(out, "user", [result])
            continue
        blocks = _blocks(m.content)
        if m.role == "assistant":
            for call in m.tool_calls or ():
                blocks.append(_tool_use(call))
        if blocks:
            _append(out, "assistant" if m.role == "assistant" else "user", blocks)
    return "\n\n".join(system), out


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_image(str(url or "")))
        else:
            raise CapabilityError(f"the anthropic backend cannot send content parts of type {kind!r}",
                                  param="messages")
    return blocks


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";")[0] or "image/png"
        if ";base64" not in head:
            raise CapabilityError("image data URLs must be base64-encoded", param="messages")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        args = {"_raw": raw}  # Anthropic needs an object; keep what the model produced
    if not isinstance(args, dict):
        args = {"_value": args}
    return {"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name") or "", "input": args}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") if tool.get("type", "function") == "function" else None
    if not isinstance(fn, dict) or not fn.get("name"):
        raise CapabilityError("the anthropic backend takes only function tools with a name", param="tools")
    out: dict[str, Any] = {"name": fn["name"],
                           "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: str | dict[str, Any] | None, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif isinstance(choice, str):
        out = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(choice)
        if out is None:
            raise CapabilityError(f"unknown tool_choice {choice!r}", param="tool_choice")
        out = dict(out)
    else:
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise CapabilityError("tool_choice must name a function", param="tool_choice")
        out = {"type": "tool", "name": name}
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# ---------------------------------------------------------------- Anthropic -> OpenAI

def anthropic_usage(u: dict[str, Any] | None) -> dict[str, int]:
    u = u or {}
    prompt = int(u.get("input_tokens") or 0) + int(u.get("cache_creation_input_tokens") or 0) + int(
        u.get("cache_read_input_tokens") or 0)
    return make_usage(prompt, int(u.get("output_tokens") or 0))


def from_anthropic(msg: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A ``chat.completion`` dict from a Messages API ``message``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function", "function": {
                "name": block.get("name", ""), "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
    content = "".join(texts) if texts or not calls else None
    finish = STOP_REASONS.get(msg.get("stop_reason") or "end_turn", "stop")
    return completion(model=str(msg.get("model") or model), content=content, finish_reason=finish,
                      usage=anthropic_usage(msg["usage"]) if msg.get("usage") else None, tool_calls=calls or None,
                      id="chatcmpl-" + str(msg.get("id") or ""))


class StreamTranslator:
    """Turns Anthropic stream events into OpenAI ``chat.completion.chunk`` dicts (one stream, stateful)."""

    def __init__(self, name: str, model: str) -> None:
        self.name = name
        self.model = model
        self.id = ""
        self.created = int(time.time())
        self.prompt_tokens = 0
        self.output_tokens: int | None = None
        self.tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self.chars = 0
        self.stopped = False

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    def feed(self, data: bytes) -> tuple[dict[str, Any], ...]:
        """Translate one event payload (its JSON carries its own ``type``); raise fedinf errors on bad ones."""
        try:
            ev = loads(data)
            kind = ev["type"]
        except (ValueError, KeyError, TypeError):
            raise bad_response(self.name, "sent a malformed stream event") from None
        handler = getattr(self, "_on_" + str(kind), None)
        return handler(ev) if handler is not None else ()  # ping and future event types are ignored

    def _on_message_start(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        msg = ev.get("message") or {}
        self.id = "chatcmpl-" + str(msg.get("id") or "")
        self.model = str(msg.get("model") or self.model)
        self.prompt_tokens = anthropic_usage(msg.get("usage"))["prompt_tokens"]
        return (self.chunk({"role": "assistant", "content": ""}),)

    def _on_content_block_start(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        block = ev.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            self.chars += len(block["text"])
            return (self.chunk({"content": block["text"]}),)
        if block.get("type") == "tool_use":
            i = self.tools[int(ev.get("index", 0))] = len(self.tools)
            return (self.chunk({"tool_calls": [{"index": i, "id": block.get("id", ""), "type": "function",
                                                "function": {"name": block.get("name", ""), "arguments": ""}}]}),)
        return ()

    def _on_content_block_delta(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        delta = ev.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text", ""))
            self.chars += len(text)
            return (self.chunk({"content": text}),) if text else ()
        if kind == "input_json_delta":
            i = self.tools.get(int(ev.get("index", 0)))
            part = str(delta.get("partial_json", ""))
            self.chars += len(part)
            if i is None or not part:
                return ()
            return (self.chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),)
        return ()  # thinking, signature and citation deltas have no OpenAI equivalent

    def _on_message_delta(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        usage = ev.get("usage") or {}
        if usage.get("output_tokens") is not None:
            self.output_tokens = int(usage["output_tokens"])
        if usage.get("input_tokens") is not None:
            self.prompt_tokens = anthropic_usage(usage)["prompt_tokens"]
        reason = (ev.get("delta") or {}).get("stop_reason")
        if reason:
            return (self.chunk({}, STOP_REASONS.get(reason, "stop")),)
        return ()

    def _on_message_stop(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        self.stopped = True
        return ()

    def _on_error(self, ev: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        err = ev.get("error") or {}
        raise status_error(self.name, ERROR_STATUS.get(str(err.get("type")), 502), dumps(ev))

    def final_chunk(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        if not self.stopped:
            raise BackendUnavailable(f"stream from upstream {self.name} ended before message_stop",
                                     details={"upstream": self.name})
        prompt, output = self.prompt_tokens, self.output_tokens
        if output is None or not prompt:
            ctx.extra["usage_estimated"] = True
            prompt = prompt or estimate_tokens("".join(request.texts()))
            output = output if output is not None else (self.chars + 3) // 4
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": make_usage(prompt, output)}
