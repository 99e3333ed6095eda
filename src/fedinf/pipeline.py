"""The request pipeline, top to bottom in one place:

    authenticate -> classify -> decide -> execute (+ validate) -> respond -> audit

``run_chat`` is the only orchestration of a chat request. Each step is a call into the module that owns the concept;
this file only sequences them and carries the facts of one request (:class:`Trace`) to the audit step. A response is
not finished until its audit record is durable: for JSON the record is written before the body is returned; for
streams it is written before the final ``data: [DONE]`` line is sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fedinf.errors import FedinfError, RequestError
from fedinf.jsoncodec import dumps
from fedinf.protocol import ChatRequest
from fedinf.routing.decide import Decision, Needs, decide

if TYPE_CHECKING:
    from fedinf.gateway import Gateway
    from fedinf.routing.executor import Result


@dataclass
class Trace:
    """Everything the audit record needs about one request. Never holds content or entity values."""

    request_id: str
    started: float
    endpoint: str = "chat.completions"
    principal: Any = None
    requested: str | None = None
    classification: Any = None
    decision: Decision | None = None
    result: "Result | None" = None
    status: int = 200
    error_code: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    stream: bool = False
    attempts: list[Any] = field(default_factory=list)
    content: dict[str, Any] | None = None  # pseudonymized, only for tenants with content logging on
    retrieved: Any = None  # fedinf.retrieval.context.Retrieved when the request named collections
    rules: list[str] = field(default_factory=list)  # claim rule ids applied (claims workload)

    def headers(self) -> dict[str, str]:
        h = {"x-fedinf-request-id": self.request_id}
        if self.decision is not None:
            h["x-fedinf-data-class"] = self.decision.data_class.label
            if self.decision.route:
                h["x-fedinf-route"] = self.decision.route
            h["x-fedinf-strategy"] = self.decision.strategy
            h["x-fedinf-eligible"] = ",".join(t.model_id for t in self.decision.targets)
            if self.decision.excluded:
                h["x-fedinf-excluded"] = ",".join(f"{e.model_id}:{e.reason}" for e in self.decision.excluded)
        elif self.classification is not None:
            h["x-fedinf-data-class"] = self.classification.data_class.label
        if self.retrieved is not None:
            h["x-fedinf-collections"] = _ascii(",".join(self.retrieved.collections))
            h["x-fedinf-sources"] = str(len(self.retrieved.hits))
        if self.result is None and self.attempts:  # failed: the attempts made are still shown
            h["x-fedinf-attempts"] = str(sum(1 for a in self.attempts if getattr(a, "sent", True)))
            h["x-fedinf-attempt-log"] = _attempt_log(self.attempts)
        if self.result is not None:
            h["x-fedinf-model"] = self.result.target.model_id
            h["x-fedinf-zone"] = self.result.target.zone
            sent = [a for a in self.result.attempts if getattr(a, "sent", True)]
            h["x-fedinf-attempts"] = str(len(sent))
            h["x-fedinf-replica"] = _ascii(self.result.replica)
            h["x-fedinf-attempt-log"] = _attempt_log(self.result.attempts)
            if getattr(self.result, "hedged", False):
                h["x-fedinf-hedged"] = "true"
            if self.result.target.pseudonymize:
                h["x-fedinf-pseudonymized"] = "true"
            if self.result.structured:
                h["x-fedinf-structured"] = ",".join(f"{k}={v}" for k, v in _flat(self.result.structured))
        return h


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None
    error: FedinfError | None = None


def parse_chat(body: Any) -> ChatRequest:
    """Validate an OpenAI chat body into a ChatRequest; errors say which field and what to fix."""
    if isinstance(body, ChatRequest):
        return body
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object", code="invalid_body")
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        code = "missing_field" if err["type"] == "missing" else "invalid_value"
        if "n > 1" in msg:
            code = "unsupported_n"
        elif "no content" in msg:
            code = "empty_content"
        where = f"`{loc}`: " if loc else ""
        raise RequestError(f"{where}{msg}", param=loc or None, code=code) from None


def _needs(request: ChatRequest) -> Needs:
    vision = any(isinstance(m.content, list) and any(p.get("type") == "image_url" for p in m.content)
                 for m in request.messages)
    return Needs(streaming=request.stream, tools=bool(request.tools), vision=vision,
                 structured=request.response_format is not None and request.response_format.get("type") != "text",
                 grammar=bool(request.fedinf.regex or request.fedinf.grammar))


async def run_chat(gw: "Gateway", body: Any, *, authorization: str | None = None,
                   request_id: str | None = None) -> Reply:
    """Run one chat completion through the whole pipeline. ``authorization`` is the HTTP header's value."""
    trace = Trace(request_id=request_id or uuid.uuid4().hex, started=time.monotonic())
    try:
        trace.principal = await gw.authenticate(authorization)                    # authenticate
        request = parse_chat(body)
        trace.requested, trace.stream = request.fedinf.route or request.model, request.stream
        await gw.admit(trace.principal, request)                                  # role, scope, limits
        trace.classification = gw.classify(request, trace.principal)              # classify
        request, trace.classification, trace.retrieved = await gw.retrieve(       # retrieve (raises the class)
            request, trace.classification, trace.principal)
        trace.content = gw.loggable_content(trace.principal, request)
        trace.decision = decide(trace.requested, network=gw.network,              # decide (pure)
                                data_class=trace.classification.data_class, principal=trace.principal,
                                needs=_needs(request), latency_ms=gw.latency_snapshot())
        output = gw.output_spec(request)
        deadline = trace.started + gw.timeout_for(request, trace.decision)
        trace.result = await gw.executor.run(request, trace.decision, request_id=trace.request_id,  # execute
                                             deadline=deadline, output=output,                      # + validate
                                             attempts=trace.attempts)
    except FedinfError as exc:
        return await _refuse(gw, trace, exc)
    if request.stream and trace.result.stream is None:  # validated before sending (structured output)
        trace.result.stream = _replay(trace.result.completion or {}, trace.result.structured)
    if trace.result.stream is not None:                                           # respond
        if trace.retrieved is not None:
            trace.result.stream = _cite_stream(trace.result.stream, trace.retrieved)
        return Reply(200, trace.headers(), stream=_sse(gw, trace, trace.result.stream,
                                                       include_usage=_include_usage(request)))
    completion = trace.result.completion or {}
    completion["model"] = trace.result.target.model_id
    if trace.result.structured:
        completion["fedinf"] = {"structured": trace.result.structured}
    if trace.retrieved is not None:
        from fedinf.retrieval.context import citations

        answer = ((completion.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        completion.setdefault("fedinf", {}).update(citations(answer, trace.retrieved))
    trace.usage = completion.get("usage") or {}
    await gw.settle(trace.principal, trace.usage)
    try:
        await gw.audit(trace)                                                     # audit (durable first)
    except FedinfError as exc:  # no durable record, no response
        return Reply(exc.status_code, trace.headers(), body=exc.to_dict(), error=exc)
    return Reply(200, trace.headers(), body=completion)


async def _refuse(gw: "Gateway", trace: Trace, exc: FedinfError) -> Reply:
    trace.status, trace.error_code = exc.status_code, exc.code
    try:
        await gw.audit(trace)
    except FedinfError as audit_exc:
        exc = audit_exc
    headers = trace.headers()
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
    return Reply(exc.status_code, headers, body=exc.to_dict(), error=exc)


async def _replay(completion: dict[str, Any], structured: dict[str, Any] | None) -> AsyncIterator[dict[str, Any]]:
    """A completed (and validated) answer as a stream: role, content, finish, usage. Structured output is only
    streamed once it has passed validation, so a client never reads JSON that is later found invalid."""
    from fedinf.protocol import chunk

    cid, created, model = completion.get("id", ""), completion.get("created", int(time.time())), ""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    yield chunk(id=cid, model=model, created=created, delta={"role": "assistant", "content": ""})
    if message.get("content"):
        yield chunk(id=cid, model=model, created=created, delta={"content": message["content"]})
    if message.get("tool_calls"):
        calls = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
        yield chunk(id=cid, model=model, created=created, delta={"tool_calls": calls})
    last = chunk(id=cid, model=model, created=created, delta={}, finish_reason=choice.get("finish_reason", "stop"))
    if structured:
        last["fedinf"] = {"structured": structured}
    yield last
    yield chunk(id=cid, model=model, created=created, usage=completion.get("usage") or {})


async def _cite_stream(chunks: AsyncIterator[dict[str, Any]], retrieved: Any) -> AsyncIterator[dict[str, Any]]:
    """Pass chunks through; the chunk carrying ``finish_reason`` gets the answer's citations in ``fedinf``."""
    from fedinf.retrieval.context import citations

    parts: list[str] = []
    async for ch in chunks:
        for choice in ch.get("choices") or ():
            parts.append((choice.get("delta") or {}).get("content") or "")
            if choice.get("finish_reason"):
                ch.setdefault("fedinf", {}).update(citations("".join(parts), retrieved))
        yield ch


def _include_usage(request: ChatRequest) -> bool:
    return bool(request.stream_options and request.stream_options.include_usage)


async def _sse(gw: "Gateway", trace: Trace, chunks: AsyncIterator[dict[str, Any]], *,
               include_usage: bool) -> AsyncIterator[bytes]:
    """Encode chunks as SSE. The audit record is made durable before the final ``[DONE]``."""
    model = trace.result.target.model_id if trace.result else ""
    try:
        async for chunk in chunks:
            if chunk.get("usage"):
                trace.usage = chunk["usage"]
                if not include_usage:
                    if not chunk.get("choices"):
                        continue
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
            elif include_usage and "usage" in chunk:
                chunk.pop("usage")
            chunk["model"] = model
            yield b"data: " + dumps(chunk) + b"\n\n"
    except FedinfError as exc:
        trace.status, trace.error_code = exc.status_code, exc.code
        await gw.audit(trace)
        yield b"data: " + dumps(exc.to_dict()) + b"\n\n"
        return
    except BaseException:  # client went away (cancelled): record it, then let cancellation proceed
        trace.status, trace.error_code = 499, "client_disconnected"
        await asyncio.shield(gw.audit(trace))
        raise
    await gw.settle(trace.principal, trace.usage)
    try:
        await gw.audit(trace)
    except FedinfError as exc:  # the record is not durable: the client must not see a complete stream
        yield b"data: " + dumps(exc.to_dict()) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"


def _attempt_log(attempts: list[Any]) -> str:
    """``kind model@replica outcome latency`` for every attempt, e.g. ``first a@r0 backend_unavailable 3ms``."""
    return _ascii(", ".join(f"{getattr(a, 'kind', 'first')} {a.model}@{a.replica} {a.outcome} {a.latency_ms:.0f}ms"
                            for a in attempts))


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _flat(d: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            v = "+".join(map(str, v)) or "-"
        out.append((k, str(v)))
    return out

