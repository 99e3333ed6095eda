"""A scripted in-process backend for tests and demos (like simonw/llm's MockModel).

``options``: ``reply`` (text, default echoes the last user message), ``replies`` (a list used in turn),
``fail`` (an error code raised on every call: ``unavailable``, ``timeout``, ``rejected``), ``delay_s``.
The last :data:`KEEP` requests it received are kept in ``received`` (oldest first) so tests can assert on what a
model saw; a fake serving a long benchmark or demo does not grow without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fedinf.backends.base import CallContext, Capabilities
from fedinf.config import Endpoint, ModelSpec
from fedinf.errors import BackendRejected, BackendTimeout, BackendUnavailable, ConfigError
from fedinf.protocol import ChatRequest, chunk, completion, new_completion_id, usage

_OPTIONS = {"reply", "replies", "fail", "delay_s"}
KEEP = 1000  # requests kept in ``received``
_FAILS = {"unavailable": BackendUnavailable, "timeout": BackendTimeout, "rejected": BackendRejected}


_CAPS = {"tools", "vision", "embeddings", "streaming", "no_streaming", "json_object", "json_schema", "strict",
         "grammar"}


class FakeBackend:
    @classmethod
    def capabilities_for(cls, spec: ModelSpec) -> Capabilities:
        """Streaming, plus anything declared: a fake can pretend to be any kind of model."""
        return Capabilities(streaming=True).declare(spec.capabilities, allowed=_CAPS, backend="fake", model_id=spec.id)

    def __init__(self, *, spec: ModelSpec, endpoint: Endpoint | None) -> None:
        unknown = set(spec.options) - _OPTIONS
        if unknown:
            raise ConfigError(f"models[{spec.id}].options: unknown option(s) {sorted(unknown)} for backend fake")
        self.spec = spec
        self.capabilities: Capabilities = self.capabilities_for(spec)
        self.received: deque[ChatRequest] = deque(maxlen=KEEP)
        self._turn = 0

    def _answer(self, request: ChatRequest) -> str:
        self.received.append(request)
        fail = self.spec.options.get("fail")
        if fail:
            raise _FAILS[fail](f"fake backend {self.spec.id} configured to fail ({fail})")
        replies = self.spec.options.get("replies")
        if replies:
            text = str(replies[min(self._turn, len(replies) - 1)])
            self._turn += 1
            return text
        if "reply" in self.spec.options:
            return str(self.spec.options["reply"])
        last_user = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        return f"echo: {last_user}"

    async def chat(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        await asyncio.sleep(float(self.spec.options.get("delay_s", 0)))
        text = self._answer(request)
        prompt = sum(len(t.split()) for t in request.texts())
        return completion(model=ctx.upstream_model, content=text, usage=usage(prompt, len(text.split())))

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        await asyncio.sleep(float(self.spec.options.get("delay_s", 0)))
        text = self._answer(request)
        cid, created = new_completion_id(), int(time.time())
        yield chunk(id=cid, model=ctx.upstream_model, created=created, delta={"role": "assistant", "content": ""})
        words = text.split(" ")
        for i, w in enumerate(words):
            yield chunk(id=cid, model=ctx.upstream_model, created=created,
                        delta={"content": w if i == 0 else " " + w})
        yield chunk(id=cid, model=ctx.upstream_model, created=created, delta={}, finish_reason="stop")
        prompt = sum(len(t.split()) for t in request.texts())
        yield chunk(id=cid, model=ctx.upstream_model, created=created, usage=usage(prompt, len(words)))

    async def health(self) -> bool:
        return not self.spec.options.get("fail")

    async def load(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
