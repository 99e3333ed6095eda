"""The ``openai`` backend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp server, Ollama, TGI, OpenAI,
Together, Azure OpenAI).

Config (``models[].options``), every key optional, unknown keys are a :class:`ConfigError`:

- ``headers``: extra HTTP headers sent on every call (e.g. ``OpenAI-Organization``);
- ``api_version`` + ``deployment``: Azure OpenAI. With ``api_version`` set, calls go to
  ``{url}/openai/deployments/{deployment}/chat/completions?api-version=...`` with an ``api-key`` header
  (``deployment`` defaults to the upstream model name);
- ``stream_usage`` (default true): ask for usage on streams (``stream_options.include_usage``); turn off for old
  servers that reject the field;
- ``max_connections`` (default 256): size of the keep-alive pool to this endpoint;
- ``health_path`` (default ``/models``): path relative to the endpoint URL, or a full URL (TGI: its root
  ``/health``), probed by :meth:`health`.

Usage is always filled in. When an upstream reports none, fedinf estimates it (~4 characters per token of the
prompt's and the answer's text) and sets ``ctx.extra["usage_estimated"] = True``.

Capabilities come from ``models[].capabilities``: ``tools``, ``vision``, ``embeddings``, and the structured-output
mode ``strict`` (OpenAI strict JSON schema) > ``json_schema`` (vLLM / SGLang / llama.cpp guided decoding) >
``json_object`` (JSON mode only); ``grammar`` is not available on remote OpenAI-compatible servers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fedinf.backends.base import CallContext, Capabilities
from fedinf.backends.http import (
    HttpUpstream, bad_response, check_options, dumps, estimate_tokens, key_hint, loads, replica_name, status_error,
)
from fedinf.errors import BackendUnavailable, CapabilityError
from fedinf.protocol import ChatRequest, usage as make_usage

if TYPE_CHECKING:
    from fedinf.config import Endpoint, ModelSpec

DEFAULT_URL = "https://api.openai.com/v1"
_OPTIONS: dict[str, type] = {"headers": dict, "api_version": str, "deployment": str, "stream_usage": bool,
                             "max_connections": int, "health_path": str}
_CAPS = {"tools", "vision", "embeddings", "json_schema", "strict", "json_object", "no_streaming"}
HEALTH_TIMEOUT_S = 3.0


class OpenAIBackend:
    """One endpoint (replica) of a model served by an OpenAI-compatible server. See the module docstring."""

    @classmethod
    def capabilities_for(cls, spec: "ModelSpec") -> Capabilities:
        """Streaming, plus what the model declares; ``grammar`` (token-level) is not available remotely."""
        return Capabilities(streaming=True).declare(spec.capabilities, allowed=_CAPS, backend="openai",
                                                    model_id=spec.id)

    def __init__(self, *, spec: "ModelSpec", endpoint: "Endpoint | None") -> None:
        options = check_options(spec, _OPTIONS, "openai")
        self.spec = spec
        self.endpoint = endpoint
        self.capabilities = self.capabilities_for(spec)
        self.upstream_model = spec.upstream_model or spec.id
        base = (endpoint.url if endpoint is not None and endpoint.url else None) or DEFAULT_URL
        headers: dict[str, str] = {}
        key = endpoint.api_key() if endpoint is not None else None
        api_version = options.get("api_version")
        if api_version is not None:
            deployment = quote(str(options.get("deployment") or self.upstream_model), safe="")
            root = f"{base}/openai/deployments/{deployment}"
            query = f"?api-version={quote(str(api_version), safe='')}"
            self.chat_url, self.embed_url = f"{root}/chat/completions{query}", f"{root}/embeddings{query}"
            self.health_url = f"{base}/openai/models{query}"
            if key:
                headers["api-key"] = key
        else:
            self.chat_url, self.embed_url = f"{base}/chat/completions", f"{base}/embeddings"
            health = str(options.get("health_path", "/models"))
            self.health_url = health if health.startswith(("http://", "https://")) else base + health
            if key:
                headers["authorization"] = f"Bearer {key}"
        self.stream_usage: bool = options.get("stream_usage", True)
        headers.update(options.get("headers", {}))
        self.name = replica_name(spec, endpoint)
        self._hint = key_hint(endpoint)
        self.http = HttpUpstream(name=self.name, base_headers=headers, connect_s=spec.timeouts.connect_s,
                                 read_s=spec.timeouts.read_s,
                                 max_connections=options.get("max_connections", 256))

    # ------------------------------------------------------------------ chat

    async def chat(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        """One non-streamed completion; ``usage`` is filled in (estimated when the upstream gives none)."""
        body = request.upstream_body(model=ctx.upstream_model or self.upstream_model, stream=False)
        body.pop("stream_options", None)
        out = await self.http.post_json(self.chat_url, dumps(body), ctx.deadline, hint=self._hint, headers=ctx.headers)
        choices = out.get("choices") if isinstance(out, dict) else None
        if not isinstance(choices, list) or not choices:
            if isinstance(out, dict) and out.get("error"):  # some servers answer 200 with an error body
                raise status_error(self.name, 502, dumps(out))
            raise bad_response(self.name, "answered without choices")
        if not out.get("usage"):
            text = "".join(str((c.get("message") or {}).get("content") or "") for c in choices if isinstance(c, dict))
            out["usage"] = make_usage(estimate_tokens("".join(request.texts())), estimate_tokens(text))
            ctx.extra["usage_estimated"] = True
        return out

    # ------------------------------------------------------------------ stream

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Yield ``chat.completion.chunk`` dicts; the last one has empty ``choices`` and the ``usage``.

        Before the first chunk is yielded, failures raise ``BackendUnavailable``/``BackendTimeout``/
        ``BackendRejected`` (a retry may go elsewhere); after it, ``StreamInterrupted``. Closing the iterator
        closes the upstream connection, which makes the server stop generating.
        """
        body = request.upstream_body(model=ctx.upstream_model or self.upstream_model, stream=True)
        if self.stream_usage:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream_options", None)
        return self._stream(dumps(body), request, ctx)

    def _stream(self, body: bytes, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        state = _StreamState(self.name)
        return self.http.sse(self.chat_url, body, ctx.deadline, translate=state.feed,
                             finish=lambda: state.final_chunk(request, ctx), hint=self._hint, on_json=state.from_json,
                             headers=ctx.headers)

    # ------------------------------------------------------------------ embeddings, health, close

    async def embed(self, inputs: list[str], ctx: CallContext) -> dict[str, Any]:
        """OpenAI ``/embeddings``: returns the upstream's ``{"object": "list", "data": [...], "usage"}``."""
        if not self.capabilities.embeddings:
            raise CapabilityError(f"model {self.spec.id!r} does not declare the `embeddings` capability")
        body = {"model": ctx.upstream_model or self.upstream_model, "input": inputs}
        out = await self.http.post_json(self.embed_url, dumps(body), ctx.deadline, hint=self._hint,
                                        headers=ctx.headers)
        if not isinstance(out, dict) or not isinstance(out.get("data"), list):
            raise bad_response(self.name, "answered embeddings without data")
        if not out.get("usage"):
            n = sum(estimate_tokens(t) for t in inputs)
            out["usage"] = {"prompt_tokens": n, "total_tokens": n}
        return out

    async def health(self) -> bool:
        """True when ``GET {url}/models`` (or ``health_path``) answers 2xx within a few seconds."""
        return await self.http.get_ok(self.health_url, min(HEALTH_TIMEOUT_S, self.spec.timeouts.read_s))

    async def load(self) -> None:
        return None  # a remote server: nothing to load

    async def aclose(self) -> None:
        await self.http.aclose()


class _StreamState:
    """Per-stream bookkeeping: usage seen, text produced (for estimates), whether a finish_reason arrived."""

    __slots__ = ("name", "usage", "finished", "chars", "id", "model", "created")

    def __init__(self, name: str) -> None:
        self.name = name
        self.usage: dict[str, int] | None = None
        self.finished = False
        self.chars = 0
        self.id = ""
        self.model = ""
        self.created = 0

    def feed(self, data: bytes) -> tuple[dict[str, Any], ...]:
        """Parse one SSE payload; return the chunk to yield, or nothing (usage-only chunk, ``[DONE]``)."""
        if data == b"[DONE]":
            return ()
        name = self.name
        try:
            chunk = loads(data)
        except ValueError:
            raise bad_response(name, "sent a malformed SSE event") from None
        if not isinstance(chunk, dict):
            raise bad_response(name, "sent a non-object SSE event")
        if "error" in chunk and "choices" not in chunk:
            raise status_error(name, 502, data)
        usage = chunk.pop("usage", None)
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return ()
        if not self.id:
            self.id, self.model, self.created = chunk.get("id", ""), chunk.get("model", ""), chunk.get("created", 0)
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.chars += len(content)
            for call in delta.get("tool_calls") or ():
                self.chars += len(str((call.get("function") or {}).get("arguments") or ""))
            if choice.get("finish_reason"):
                self.finished = True
        return (chunk,)

    def from_json(self, out: Any) -> tuple[dict[str, Any], ...]:
        """Chunks equivalent to a whole ``chat.completion`` (an upstream that ignored ``stream: true``)."""
        if not isinstance(out, dict) or not isinstance(out.get("choices"), list) or not out["choices"]:
            if isinstance(out, dict) and out.get("error"):
                raise status_error(self.name, 502, dumps(out))
            raise bad_response(self.name, "answered a stream request without choices")
        chunks = []
        for choice in out["choices"]:
            message = choice.get("message") or {}
            delta = {k: v for k, v in message.items() if v is not None}
            if delta.get("tool_calls"):
                delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
            chunks.append({"index": choice.get("index", 0), "delta": delta,
                           "finish_reason": choice.get("finish_reason") or "stop", "logprobs": None})
        chunk = {"id": out.get("id", ""), "object": "chat.completion.chunk", "created": out.get("created", 0),
                 "model": out.get("model", ""), "choices": chunks}
        if out.get("usage"):
            chunk["usage"] = out["usage"]
        return self.feed(dumps(chunk))

    def final_chunk(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        if not self.finished:
            raise BackendUnavailable(f"stream from upstream {self.name} ended before a finish_reason",
                                     details={"upstream": self.name})
        usage = self.usage
        if not usage:
            usage = make_usage(estimate_tokens("".join(request.texts())), max(0, (self.chars + 3) // 4))
            ctx.extra["usage_estimated"] = True
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created or int(time.time()),
                "model": self.model or ctx.upstream_model, "choices": [], "usage": usage}
