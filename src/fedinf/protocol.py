"""OpenAI wire models shared by the HTTP layer, the pipeline and the backends.

Requests are parsed strictly where the contract matters (roles, types, ``n``) and tolerantly elsewhere: unknown
fields are accepted (``extra="allow"``), never rejected, but only the allow-listed ones are forwarded upstream
(:mod:`fedinf.forwarding`); the rest is dropped and logged once by name. :meth:`ChatRequest.texts` is every string
that is forwarded, so the classifier reads exactly what would leave the gateway. Responses stay plain dicts in OpenAI's
shape: they are produced by backends and passed through, so re-validating them would only cost time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from fedinf import forwarding
from fedinf.data_class import DataClass

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text content (text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text"))

    def texts(self) -> list[str]:
        """Every piece of text a classifier must see: content and tool-call arguments."""
        out = [self.text()]
        for call in self.tool_calls or ():
            fn = call.get("function") or {}
            out.append(str(fn.get("name", "")))
            out.append(str(fn.get("arguments", "")))
        return [t for t in out if t]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class FedinfOptions(BaseModel):
    """The namespaced gateway extension: ``{"fedinf": {...}}`` in the request body."""

    model_config = ConfigDict(extra="forbid")

    data_class: DataClass | None = Field(
        default=None, description="Declare the request's data class; raising is free, lowering needs permission."
    )
    lower_reason: str | None = Field(default=None, description="Why a lower class than detected is declared.")
    route: str | None = Field(default=None, description="A route alias to use instead of `model`.")
    idempotent: bool = Field(default=False, description="Allows hedged requests on routes that hedge.")
    timeout_s: float | None = Field(default=None, gt=0, le=3600, description="Overall deadline for this request.")
    regex: str | None = Field(default=None, description="Constrain the output to this regular expression.")
    grammar: str | None = Field(default=None, description="Constrain the output to this Lark grammar (llguidance).")
    max_reasks: int | None = Field(default=None, ge=0, le=10, description="Bounded re-asks for structured output.")
    collections: list[str] | None = Field(default=None, max_length=16, description=(
        "Retrieval collections to search with the last user message; the answer carries citations "
        "(see docs/retrieval.md)."))
    top_k: int | None = Field(default=None, ge=1, le=50, description="Chunks to retrieve (default retrieval.top_k).")
    search_mode: Literal["hybrid", "bm25", "vector"] | None = Field(default=None, description=(
        "hybrid (default), bm25 or vector."))

    @field_validator("data_class", mode="before")
    @classmethod
    def _parse_class(cls, v: Any) -> Any:
        return None if v is None else DataClass.parse(v)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = None
    fedinf: FedinfOptions = Field(default_factory=FedinfOptions)

    @model_validator(mode="after")
    def _check(self) -> "ChatRequest":
        if self.n is not None and self.n > 1:
            raise ValueError("n > 1 is not supported: send one request per completion")
        if not any((isinstance(m.content, str) and m.content) or m.texts() for m in self.messages):
            raise ValueError("messages have no content: at least one message needs non-empty content")
        return self

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    # The request as plain data, and the strings the classifier reads, computed once per request (the pipeline,
    # the limiter and the backend all ask): a model_copy starts with empty caches. Requests are not mutated in place.
    # Read and written through ``__pydantic_private__`` (a slot): ``self._data`` would go through pydantic's
    # Python-level ``__getattr__``/``__setattr__`` on every access.
    _data: dict[str, Any] | None = PrivateAttr(default=None)
    _strings: tuple[str, ...] | None = PrivateAttr(default=None)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy._data = copy._strings = None
        return copy

    def _dump(self) -> dict[str, Any]:
        """``model_dump(exclude_none=True)`` without ``fedinf``, cached (callers copy before changing it)."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        data: dict[str, Any] | None = private["_data"]
        if data is None:
            data = private["_data"] = self.model_dump(exclude_none=True, exclude={"fedinf"})
        return data

    def unknown_fields(self) -> list[str]:
        """Names of the fields that are not forwarded (top level and ``messages[].x``), never their values."""
        return forwarding.dropped(self._dump())

    def _forwarded(self) -> dict[str, Any]:
        body = forwarding.forwarded(self._dump())
        body.pop("model", None)  # replaced by the upstream model name
        return body

    def texts(self) -> list[str]:
        """Every string that is forwarded upstream (content, names, tool calls and definitions, ``user``, ``stop``,
        ``metadata``, ``prediction``, ``response_format`` ...), messages first, in a fixed order."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        found: tuple[str, ...] | None = private["_strings"]
        if found is None:
            found = private["_strings"] = tuple(forwarding.strings(self._forwarded()))
        return list(found)

    def with_texts(self, texts: list[str]) -> "ChatRequest":
        """The same request with the strings of :meth:`texts` replaced, in the same order (pseudonymization).
        Fields that are not forwarded are dropped."""
        it = iter(texts)
        body = forwarding.rewrite(self._forwarded(), lambda _s: next(it))
        return ChatRequest.model_validate({**body, "model": self.model, "fedinf": self.fedinf})

    def upstream_body(self, *, model: str, stream: bool | None = None,
                      fields: frozenset[str] = forwarding.OPENAI_FIELDS) -> dict[str, Any]:
        """The request body to send upstream: only allow-listed ``fields`` (and message fields), fedinf's
        namespace removed, the model name replaced."""
        body = forwarding.forwarded(self._dump(), fields)
        body["model"] = model
        if stream is not None:
            body["stream"] = stream
        return body


_UUID4_CLEAR = (0xC000 << 48) | (0xF000 << 64)  # the variant and version bits of a UUID ...
_UUID4_SET = (0x8000 << 48) | (4 << 76)  # ... as uuid.UUID(version=4) sets them (RFC 4122 variant, version 4)


def uuid4_hex() -> str:
    """``uuid.uuid4().hex`` (32 hex digits of a random version-4 UUID) without building a ``uuid.UUID`` object."""
    return "%032x" % ((int.from_bytes(os.urandom(16), "big") & ~_UUID4_CLEAR) | _UUID4_SET)


def new_completion_id() -> str:
    return "chatcmpl-" + uuid4_hex()


def completion(
    *, model: str, content: str | None, finish_reason: str = "stop", usage: dict[str, int] | None = None,
    tool_calls: list[dict[str, Any]] | None = None, id: str | None = None,
) -> dict[str, Any]:
    """Build a ``chat.completion`` dict."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id or new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def chunk(
    *, id: str, model: str, created: int, delta: dict[str, Any] | None = None, finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Build a ``chat.completion.chunk`` dict. ``delta=None`` with ``usage`` gives the final usage chunk."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    out: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
