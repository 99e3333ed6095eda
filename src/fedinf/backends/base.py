"""The backend seam: one small Protocol every model backend implements.

A backend instance serves one endpoint (one replica) of one configured model. It speaks OpenAI's chat shape on both
sides: it takes a :class:`~fedinf.protocol.ChatRequest` and returns a ``chat.completion`` dict, or yields
``chat.completion.chunk`` dicts when streaming. Backends raise only :mod:`fedinf.errors` (``BackendUnavailable``,
``BackendTimeout``, ``BackendRejected``, ``StreamInterrupted``), never their client library's exceptions.

Deadlines are absolute ``time.monotonic()`` values; a backend must stop waiting when the deadline passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from fedinf.protocol import ChatRequest

StructuredMode = Literal["none", "json_object", "json_schema", "strict", "grammar"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can honour, declared up front and checked before any I/O.

    ``structured``: how the backend enforces a JSON schema natively - ``grammar`` (token-level, e.g. llguidance:
    schemas, regex and Lark), ``strict`` (OpenAI strict mode rules), ``json_schema`` (passes the schema, e.g. vLLM
    guided decoding), ``json_object`` (JSON mode only), ``none``.
    """

    streaming: bool = True
    tools: bool = False
    vision: bool = False
    embeddings: bool = False
    structured: StructuredMode = "none"
    max_n: int = 1

    def names(self) -> list[str]:
        out = ["chat"]
        out += [n for n in ("streaming", "tools", "vision", "embeddings") if getattr(self, n)]
        if self.structured != "none":
            out.append(f"structured:{self.structured}")
        return out


@dataclass(slots=True)
class CallContext:
    """Per-call information a backend may use (never content-bearing)."""

    request_id: str
    deadline: float
    upstream_model: str
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    capabilities: Capabilities

    async def chat(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        """Return a ``chat.completion`` dict with ``usage`` filled in."""
        ...

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Yield ``chat.completion.chunk`` dicts; the last one carries ``usage`` (choices empty).

        Closing the iterator (``aclose``) must cancel the generation upstream.
        """
        ...

    async def health(self) -> bool:
        """True when the endpoint can serve; must return within a few seconds."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models."""
        ...
