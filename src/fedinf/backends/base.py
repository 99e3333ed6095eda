"""The backend seam: one small Protocol every model backend implements.

A backend instance serves one endpoint (one replica) of one configured model. It speaks OpenAI's chat shape on both
sides: it takes a :class:`~fedinf.protocol.ChatRequest` and returns a ``chat.completion`` dict, or yields
``chat.completion.chunk`` dicts when streaming. Backends raise only :mod:`fedinf.errors` (``BackendUnavailable``,
``BackendTimeout``, ``BackendRejected``, ``StreamInterrupted``), never their client library's exceptions.

Deadlines are absolute ``time.monotonic()`` values; a backend must stop waiting when the deadline passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from fedinf.errors import ConfigError
from fedinf.protocol import ChatRequest

if TYPE_CHECKING:
    from fedinf.config import ModelSpec

StructuredMode = Literal["none", "json_object", "json_schema", "strict", "grammar"]
STRUCTURED_ORDER: tuple[StructuredMode, ...] = ("none", "json_object", "json_schema", "strict", "grammar")


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

    def declare(self, declared: Iterable[str], *, allowed: Collection[str], backend: str,
                model_id: str) -> "Capabilities":
        """These (the backend's defaults) plus what a model's ``capabilities:`` list declares. Names the backend
        does not accept are a :class:`ConfigError`; the strongest structured mode declared wins; ``no_streaming``
        turns streaming off."""
        declared = list(declared)
        unknown = sorted(set(declared) - set(allowed))
        if unknown:
            raise ConfigError(f"model {model_id!r}: the {backend} backend cannot declare {unknown}; "
                              f"known capabilities: {sorted(allowed)}")
        caps = self
        for cap in declared:
            if cap == "tools":
                caps = replace(caps, tools=True)
            elif cap == "vision":
                caps = replace(caps, vision=True)
            elif cap == "embeddings":
                caps = replace(caps, embeddings=True)
            elif cap == "streaming":
                caps = replace(caps, streaming=True)
            elif cap == "no_streaming":
                caps = replace(caps, streaming=False)
            elif cap in STRUCTURED_ORDER and STRUCTURED_ORDER.index(cap) > STRUCTURED_ORDER.index(caps.structured):
                caps = replace(caps, structured=cap)
        return caps

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
    headers: dict[str, str] = field(default_factory=dict)  # per-call HTTP headers: the W3C trace context


@runtime_checkable
class Backend(Protocol):
    """One endpoint (replica) of a model. Constructed as ``cls(spec=..., endpoint=...)``."""

    capabilities: Capabilities

    @classmethod
    def capabilities_for(cls, spec: "ModelSpec") -> Capabilities:
        """What a model served by this backend can honour, from its config alone (no I/O, no instance): the
        network's routing decisions read it before any backend is built. Raises ConfigError for names the backend
        cannot honour."""
        ...

    async def load(self) -> None:
        """Get ready to serve before the first request (in-process backends load their model); may be a no-op."""
        ...

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
