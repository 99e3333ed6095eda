"""The request pipeline: one object that owns the steps of a chat request, readable top to bottom in
:meth:`Pipeline.chat`::

    authenticate -> parse -> admit -> classify -> retrieve -> decide -> execute (+ validate) -> respond -> audit

Each step is a method named after it that calls into the module owning the concept (``fedinf.access``,
``fedinf.privacy``, ``fedinf.routing.decide``, the executor, ``fedinf.structured``, ``fedinf.audit``); the
:class:`Trace` carries the facts of one request (never content) from step to step and into the audit record.
A response is not finished until its audit record is durable: a JSON body is returned only after the record is
committed; a stream ends normally only after it (its last chunk is followed by nothing but the HTTP layer's
``[DONE]``), and ends by raising the :class:`~fedinf.errors.FedinfError` otherwise.

The pipeline speaks dicts and exceptions, not HTTP: :mod:`fedinf.server.errors` maps errors to responses (JSON
bodies, SSE error frames, ``Retry-After``) in one place. To add a step, add a method and call it from
:meth:`Pipeline.chat` in its place (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fedinf.audit.from_trace import completion, record_from_trace
from fedinf.errors import FedinfError, RequestError
from fedinf.forwarding import FieldWarnings
from fedinf.protocol import ChatRequest, chunk, uuid4_hex
from fedinf.routing.decide import Decision, Needs, decide
from fedinf.tracing import (
    NOOP, NOOP_SPAN, Span, Tracer, classification_facts, decision_facts, principal_facts, request_facts,
    result_facts, step,
)

if TYPE_CHECKING:
    from fedinf.access import AccessControl, Principal
    from fedinf.audit import AuditSink
    from fedinf.audit.record import RecordBody, Recordable
    from fedinf.audit.writer import Intent
    from fedinf.config import Config
    from fedinf.metrics import Metrics
    from fedinf.network import Network
    from fedinf.privacy import Classification, Classifier
    from fedinf.privacy.classifier import Classified
    from fedinf.retrieval import Retrieval
    from fedinf.retrieval.context import Retrieved
    from fedinf.routing.executor import Attempt, Executor, Result
    from fedinf.structured import OutputSpec, SpecCache


@dataclass
class Trace:
    """Everything the audit record needs about one request. Never holds content or entity values."""

    request_id: str
    started: float
    endpoint: str = "chat.completions"
    principal: Principal | None = None
    requested: str | None = None
    classification: Classified | None = None
    decision: Decision | None = None
    result: Result | None = None
    status: int = 200
    error_code: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    content: dict[str, Any] | None = None  # pseudonymized, only for tenants with content logging on
    retrieved: Retrieved | None = None  # what the retrieve step added (the request named collections)
    rules: list[str] = field(default_factory=list)  # claim rule ids applied (claims workload)
    span: Span = field(default=NOOP_SPAN, repr=False)  # the request's OpenTelemetry span (fedinf.tracing)
    intent: Intent | None = None  # the audit intent journaled before the upstream call, if any

    def failed(self, exc: FedinfError, *, status: int | None = None) -> None:
        self.status, self.error_code = status or exc.status_code, exc.code

    def end_span(self) -> None:
        """Close the request's span with what happened (class, model, zone, status, outcome; never content)."""
        if self.span.recording:
            for key, value in request_facts(self).items():
                self.span.set(key, value)
            self.span.end(self.error_code or "ok")

    def headers(self) -> dict[str, str]:
        """The ``x-fedinf-*`` response headers: request id, data class, decision, attempts, where it ran."""
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
            h["x-fedinf-attempts"] = str(sum(1 for a in self.attempts if a.sent))
            h["x-fedinf-attempt-log"] = _attempt_log(self.attempts)
        if self.result is not None:
            h.update(_result_headers(self.result))
        return h


@dataclass
class Reply:
    """What the pipeline answers: a JSON ``body``, a ``stream`` of chunk dicts, or an ``error`` (status and
    headers set). The HTTP layer turns it into a response; the Python API returns the body or raises."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncGenerator[dict[str, Any], None] | None = None
    error: FedinfError | None = None


def _no_retrieval() -> Retrieval:
    from fedinf.errors import ServiceUnavailable

    raise ServiceUnavailable("retrieval is not available in this pipeline", code="retrieval_unavailable")


@dataclass
class Pipeline:
    """The steps of a chat request and the long-lived parts they use (built by :class:`~fedinf.gateway.Gateway`).

    ``access`` is None for in-process use without API keys (the CLI): every call then runs as ``operator``.
    """

    config: Config
    network: Network
    executor: Executor
    classifier: Classifier
    auditor: AuditSink
    metrics: Metrics
    specs: SpecCache
    access: AccessControl | None = None
    operator: Principal | None = None
    retrieval: Callable[[], Retrieval] = _no_retrieval  # the gateway's retrieval service, made on first use
    field_warnings: FieldWarnings = field(default_factory=FieldWarnings, repr=False)
    tracer: Tracer = NOOP  # OpenTelemetry spans per step (fedinf.tracing); no-op unless `tracing.enabled`

    async def chat(self, body: object, *, authorization: str | None = None, request_id: str | None = None,
                   carrier: Mapping[str, str] | None = None) -> Reply:
        """Run one chat completion through every step. ``authorization`` is the HTTP header's value; ``carrier``
        the caller's W3C trace context headers (``traceparent``, ``tracestate``), if any."""
        trace = Trace(request_id=request_id or new_request_id(), started=time.monotonic())
        trace.span = self.tracer.start("fedinf.request", {"fedinf.request_id": trace.request_id}, carrier=carrier,
                                       server=True)
        with self.tracer.use(trace.span):  # each step's span is a child of the request's
            try:
                trace.principal = await self.authenticate(authorization)
                request = self.parse(body, trace)
                await self.admit(trace.principal, request)
                trace.classification = self.classify(request, trace)
                request = await self.retrieve(request, trace)       # sources added, class raised to theirs
                trace.decision = self.decide(request, trace)
                trace.result = await self.execute(request, trace)    # + validate (structured output)
            except FedinfError as exc:
                return await self.refuse(trace, exc)
            if request.stream:
                return self.respond_stream(request, trace, trace.result)
            return await self.respond(trace, trace.result)          # audit (durable) before the body is returned

    # ------------------------------------------------------------------ the steps, in order

    @step("fedinf.authenticate", principal_facts)
    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller's Principal from the ``Authorization`` header value (AuthError if missing or invalid)."""
        if self.access is None:
            return self.operator
        return await self.access.authenticate(authorization)

    def parse(self, body: object, trace: Trace) -> ChatRequest:
        request = parse_chat(body)
        requested = request.fedinf.route or request.model
        if requested not in self.config.routes and requested not in self.network.models:
            self._unknown_name(requested, trace)
        trace.requested, trace.stream = requested, request.stream
        return request

    def _unknown_name(self, name: str, trace: Trace) -> None:
        """A model/route name that names nothing configured is echoed in the error and the audit record - unless it
        holds what looks like data (a card number, an e-mail): then neither sees it."""
        from fedinf.errors import NotFound

        entities = self.classifier.detect([name, re.sub(r"[-_./:@=]+", " ", name)])  # "r-4111..." too
        if entities:
            trace.requested = "(not shown: holds data)"
            types = ", ".join(sorted({e.type for e in entities}))
            raise NotFound(f"`model` names no configured model or route and looks like data ({types}); it is not "
                           "repeated here. Name a model or route of this gateway.", param="model",
                           code="model_not_found")

    async def admit(self, principal: Principal | None, request: ChatRequest) -> None:
        """Role, route scope, rate limits and budgets, before any work is done for the request."""
        if self.access is None or principal is None:
            return
        principal.check_infer()
        if request.fedinf.route or request.model in self.config.routes:
            principal.check_route(request.fedinf.route or request.model)
        if principal.limits.unlimited:  # no rate limit or budget: nothing to estimate, take or check
            return
        estimate = sum(map(len, request.texts())) // 4 + (request.output_limit or 256)
        await self.access.admit(principal, est_tokens=estimate)

    @step("fedinf.classify", classification_facts)
    def classify(self, request: ChatRequest, trace: Trace) -> Classification:
        """Detected entities and data class, with the caller's declaration applied; on-prem, before any I/O."""
        from fedinf.privacy import Pseudonymizer, apply_declared

        dropped = request.unknown_fields()
        if dropped:  # not forwarded, so not classified: said once per field name
            self.field_warnings.warn(dropped)
        detected = self.classifier.classify(request.texts())
        principal = trace.principal
        may_lower = self.config.governance.allow_lowering or (principal is not None and principal.may_lower_class)
        classification = apply_declared(detected, request.fedinf.data_class, may_lower=may_lower)
        if principal is not None and principal.log_content:  # pseudonymized text, for tenants that turned it on
            trace.content = {"messages": Pseudonymizer(self.classifier).pseudonymize(request.texts()),
                             "pseudonymized": True}
        return classification

    async def retrieve(self, request: ChatRequest, trace: Trace) -> ChatRequest:
        """Sources from ``fedinf.collections`` added to the request; the class raised to what was retrieved
        (:mod:`fedinf.retrieval.chat`). A request naming no collection passes as is."""
        if not request.fedinf.collections:
            return request
        from fedinf.retrieval.chat import retrieve_for_chat

        assert trace.classification is not None
        request, trace.classification, trace.retrieved = await retrieve_for_chat(
            self.retrieval(), self.classifier, request, trace.classification, trace.principal,
            max_chars=self.config.retrieval.max_context_chars)
        return request

    @step("fedinf.decide", decision_facts)
    def decide(self, request: ChatRequest, trace: Trace) -> Decision:
        """The eligible, ordered targets (pure; refuses when none is eligible)."""
        assert trace.requested is not None and trace.classification is not None
        return decide(trace.requested, network=self.network, data_class=trace.classification.data_class,
                      principal=trace.principal, needs=needs(request), latency_ms=self.metrics.latencies())

    @step("fedinf.execute", result_facts)
    async def execute(self, request: ChatRequest, trace: Trace) -> Result:
        """Call the decision's targets (retries, fallbacks, hedges, re-asks inside the eligible set)."""
        assert trace.decision is not None
        output = self.output_spec(request)
        deadline = trace.started + self.timeout_for(request, trace.decision)
        # journaled and synced at the loop's next turn, while the upstream call runs (fedinf.audit.Auditor.begin)
        trace.intent = self.auditor.begin(lambda: self._record(trace))
        return await self.executor.run(request, trace.decision, request_id=trace.request_id, deadline=deadline,
                                       output=output, attempts=trace.attempts)

    async def respond(self, trace: Trace, result: Result) -> Reply:
        """The completion in OpenAI's shape, returned once its audit record is durable."""
        completion = result.completion or {}
        completion["model"] = result.target.model_id
        if result.structured:
            completion["fedinf"] = {"structured": result.structured}
        if trace.retrieved is not None:
            from fedinf.retrieval.context import citations

            answer = ((completion.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
            completion.setdefault("fedinf", {}).update(citations(answer, trace.retrieved))
        trace.usage = completion.get("usage") or {}
        await self.settle(trace)
        try:
            await self.audit(trace)
        except FedinfError as exc:  # no durable record, no response
            trace.failed(exc)
            return Reply(exc.status_code, trace.headers(), error=exc)
        finally:
            trace.end_span()
        return Reply(200, trace.headers(), body=completion)

    def respond_stream(self, request: ChatRequest, trace: Trace, result: Result) -> Reply:
        """Chunks as they come (structured output: replayed once validated); audited before the stream ends."""
        chunks = result.stream if result.stream is not None else _replay(result.completion or {}, result.structured)
        if trace.retrieved is not None:
            chunks = _cite_stream(chunks, trace.retrieved)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return Reply(200, trace.headers(), stream=self._audited(trace, chunks, include_usage=include_usage))

    async def refuse(self, trace: Trace, exc: FedinfError) -> Reply:
        """A request that failed before responding: audited like any other, then answered with the error."""
        trace.failed(exc)
        try:
            await self.audit(trace)
        except FedinfError as audit_exc:
            exc = audit_exc
        trace.end_span()
        return Reply(exc.status_code, trace.headers(), error=exc)

    async def settle(self, trace: Trace) -> None:
        """Charge the tokens used to the caller's budget."""
        if self.access is not None and trace.principal is not None and trace.usage \
                and trace.principal.limits.counts_tokens:
            await self.access.settle(trace.principal, tokens=int(trace.usage.get("total_tokens") or 0))

    @step("fedinf.audit")
    async def audit(self, trace: Trace) -> None:
        """Write the request's audit record; returns once it is durable (raises ServiceUnavailable if it cannot be).
        A request whose intent was journaled before its upstream call (:meth:`execute`) returns once the intent is
        durable and the record written (:meth:`fedinf.audit.Auditor.begin`). The request's metrics are counted at
        the loop's next turn: after the reply is written, not on its path (a scrape sees them a turn later)."""
        asyncio.get_running_loop().call_soon(self.metrics.observe, trace)
        await self.auditor.write(self._final(trace), trace.intent)

    def _record(self, trace: Trace) -> RecordBody:
        """The request's audit record as the trace stands (content only for tenants with content logging on)."""
        return record_from_trace(trace, content=self._content(trace))

    def _final(self, trace: Trace) -> Recordable:
        """The request's final audit record; once its intent is journaled, that intent's body completed with the
        outcome (the request's summaries are not built a second time on the reply's path)."""
        intent = trace.intent
        if intent is not None and intent.body is not None:
            return completion(intent.body, trace, content=self._content(trace))
        return self._record(trace)

    @staticmethod
    def _content(trace: Trace) -> dict[str, Any] | None:
        return trace.content if trace.principal is not None and trace.principal.log_content else None

    # ------------------------------------------------------------------ helpers of the steps

    def output_spec(self, request: ChatRequest) -> OutputSpec | None:
        """The structured-output spec (schema checked, normalised and compiled once per distinct constraint)."""
        rf = request.response_format
        wants = (rf is not None and rf.get("type") in ("json_schema", "json_object")) or request.fedinf.regex \
            or request.fedinf.grammar
        if not wants:
            return None
        return self.specs.get(rf, request.fedinf.regex, request.fedinf.grammar)

    def timeout_for(self, request: ChatRequest, decision: Decision) -> float:
        if request.fedinf.timeout_s:
            return request.fedinf.timeout_s
        models = self.network.models
        return max([models[t.model_id].spec.timeouts.total_s for t in decision.targets]
                   or [self.config.server.request_timeout_s])

    async def _audited(self, trace: Trace, chunks: AsyncIterator[dict[str, Any]], *,
                       include_usage: bool) -> AsyncGenerator[dict[str, Any], None]:
        """Pass chunks through (usage kept or dropped as the caller asked); the record is durable before the
        stream ends. A failure is audited and then raised for the HTTP layer to send as an error frame."""
        model = trace.result.target.model_id if trace.result else ""
        try:
            async for c in chunks:
                if c.get("usage"):
                    trace.usage = c["usage"]
                    if not include_usage:
                        if not c.get("choices"):
                            continue
                        c = {k: v for k, v in c.items() if k != "usage"}
                elif include_usage and "usage" in c:
                    c.pop("usage")
                c["model"] = model
                yield c
        except FedinfError as exc:
            trace.failed(exc)
            await self.audit(trace)
            trace.end_span()
            raise
        except BaseException:  # client went away (cancelled): record it, then let cancellation proceed
            trace.status, trace.error_code = 499, "client_disconnected"
            await asyncio.shield(self.audit(trace))
            trace.end_span()
            raise
        await self.settle(trace)
        try:  # raises when the record is not durable: the client must not see a complete stream
            await self.audit(trace)
        finally:
            trace.end_span()


def parse_chat(body: object) -> ChatRequest:
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


def needs(request: ChatRequest) -> Needs:
    """The capabilities a request requires of a model."""
    vision = any(isinstance(m.content, list) and any(p.get("type") == "image_url" for p in m.content)
                 for m in request.messages)
    structured = request.response_format is not None and request.response_format.get("type") != "text"
    grammar = bool(request.fedinf.regex or request.fedinf.grammar)
    if not (request.tools or vision or structured or grammar):
        return _STREAMING if request.stream else _NO_NEEDS
    return Needs(streaming=request.stream, tools=bool(request.tools), vision=vision, structured=structured,
                 grammar=grammar)


_NO_NEEDS = Needs()  # the common cases: the same (frozen) values every time
_STREAMING = Needs(streaming=True)


def new_request_id() -> str:
    """A random request id: what ``uuid.uuid4().hex`` gives (32 hex digits, a version-4 UUID)."""
    return uuid4_hex()


async def _replay(completion: dict[str, Any], structured: dict[str, Any] | None) -> AsyncIterator[dict[str, Any]]:
    """A completed (and validated) answer as a stream: role, content, finish, usage. Structured output is only
    streamed once it has passed validation, so a client never reads JSON that is later found invalid."""
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


async def _cite_stream(chunks: AsyncIterator[dict[str, Any]], retrieved: Retrieved) -> AsyncIterator[dict[str, Any]]:
    """Pass chunks through; the chunk carrying ``finish_reason`` gets the answer's citations in ``fedinf``."""
    from fedinf.retrieval.context import citations

    parts: list[str] = []
    async for ch in chunks:
        for choice in ch.get("choices") or ():
            parts.append((choice.get("delta") or {}).get("content") or "")
            if choice.get("finish_reason"):
                ch.setdefault("fedinf", {}).update(citations("".join(parts), retrieved))
        yield ch


def _result_headers(result: Result) -> dict[str, str]:
    h = {"x-fedinf-model": result.target.model_id, "x-fedinf-zone": result.target.zone,
         "x-fedinf-attempts": str(sum(1 for a in result.attempts if a.sent)),
         "x-fedinf-replica": _ascii(result.replica),
         "x-fedinf-attempt-log": _attempt_log(result.attempts)}
    if result.hedged:
        h["x-fedinf-hedged"] = "true"
    if result.target.pseudonymize:
        h["x-fedinf-pseudonymized"] = "true"
    if result.structured:
        h["x-fedinf-structured"] = ",".join(f"{k}={v}" for k, v in _flat(result.structured))
    return h


def _attempt_log(attempts: list[Attempt]) -> str:
    """``kind model@replica outcome latency`` for every attempt, e.g. ``first a@r0 backend_unavailable 3ms``."""
    return _ascii(", ".join([f"{a.kind} {a.model}@{a.replica} {a.outcome} {a.latency_ms:.0f}ms" for a in attempts]))


def _ascii(text: str) -> str:
    return text if text.isascii() else text.encode("ascii", "replace").decode("ascii")


def _flat(d: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            v = "+".join(map(str, v)) or "-"
        out.append((k, str(v)))
    return out
