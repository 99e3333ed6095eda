"""OpenTelemetry traces: one span per pipeline step, with facts about the request and never its content.

A request's trace is a ``fedinf.request`` span with children ``fedinf.authenticate``, ``fedinf.classify``,
``fedinf.decide``, ``fedinf.execute`` (one ``fedinf.attempt`` child per call to a model replica, with
``fedinf.validate`` under it when structured output is checked) and ``fedinf.audit``. Attributes (all ``fedinf.*``
plus the GenAI conventions' ``gen_ai.request.model`` / ``gen_ai.response.model`` / ``gen_ai.usage.*``):
request id, tenant and key id, data class, entity *types* and counts, route, strategy, eligible and excluded models,
model, zone, replica, attempt kind, outcome (``ok`` or a stable error code). Messages, completions and entity values
are never set: spans leave the process, often to another team's collector.

:func:`build_tracer` makes a :class:`Tracer` from the ``tracing`` config section. Disabled (the default), it is the
:data:`NOOP` tracer: ``span()`` returns one shared object whose methods do nothing, so the pipeline pays a method
call per step and allocates nothing. Enabled, it needs the ``otel`` extra (``opentelemetry-sdk`` and
``opentelemetry-exporter-otlp``), imported only then. Every gateway has its own ``TracerProvider`` (never the
process-global one), flushed and shut down with the gateway.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fedinf.errors import ConfigError

if TYPE_CHECKING:
    from fedinf.config import TracingSettings

AttrValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


class Span(Protocol):
    """What the pipeline does with a span. ``recording`` is False for the no-op span (skip building attributes)."""

    recording: bool

    def set(self, key: str, value: AttrValue | None) -> None: ...

    def fail(self, exc: BaseException) -> None: ...

    def set_outcome(self, outcome: str) -> None: ...

    def end(self, outcome: str | None = None) -> None: ...


class SpanScope(Protocol):
    def __enter__(self) -> Span: ...

    def __exit__(self, et: Any, exc: Any, tb: Any) -> Literal[False]: ...


class Tracer(Protocol):
    enabled: bool

    def start(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
              parent: Span | None = None, carrier: Mapping[str, str] | None = None, server: bool = False) -> Span:
        """A span that the caller ends (``end``); its parent is ``parent``, else the W3C ``traceparent`` in
        ``carrier`` (a caller's trace, from HTTP headers), else the current span. ``server``: span kind SERVER."""
        ...

    def span(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
             parent: Span | None = None) -> SpanScope:
        """``with tracer.span(...) as s``: the span is current inside the block; an exception marks it failed."""
        ...

    def use(self, span: Span) -> SpanScope:
        """Make ``span`` current inside the block without ending it."""
        ...

    def context_headers(self) -> dict[str, str]:
        """The W3C ``traceparent``/``tracestate`` of the current span for an upstream call (empty when off or
        when ``tracing.propagate`` is false)."""
        ...

    def shutdown(self) -> None: ...


# ---------------------------------------------------------------- disabled: no-op, nothing allocated per call

class _NoopSpan:
    __slots__ = ()
    recording = False

    def set(self, key: str, value: AttrValue | None) -> None:
        return None

    def fail(self, exc: BaseException) -> None:
        return None

    def set_outcome(self, outcome: str) -> None:
        return None

    def end(self, outcome: str | None = None) -> None:
        return None

    def __enter__(self) -> "_NoopSpan":
        return self

    def __exit__(self, et: Any, exc: Any, tb: Any) -> Literal[False]:
        return False


_NOOP_SPAN = _NoopSpan()
NOOP_SPAN: Span = _NOOP_SPAN  # the span of a request that is not traced


class NoopTracer:
    """Tracing off: every call returns the same inert object."""

    enabled = False

    def start(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
              parent: Span | None = None, carrier: Mapping[str, str] | None = None, server: bool = False) -> Span:
        return _NOOP_SPAN

    def span(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
             parent: Span | None = None) -> SpanScope:
        return _NOOP_SPAN

    def use(self, span: Span) -> SpanScope:
        return _NOOP_SPAN

    def context_headers(self) -> dict[str, str]:
        return {}

    def shutdown(self) -> None:
        return None


NOOP: Tracer = NoopTracer()


# ---------------------------------------------------------------- enabled: OpenTelemetry SDK

def outcome_of(exc: BaseException) -> str:
    """The stable code of a FedinfError, ``cancelled``, else the exception's class name (never its message)."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else type(exc).__name__


class _OtelSpan:
    __slots__ = ("otel", "_outcome")
    recording = True

    def __init__(self, otel: Any) -> None:
        self.otel = otel
        self._outcome: str | None = None

    def set_all(self, attrs: Mapping[str, AttrValue | None]) -> None:
        self.otel.set_attributes({k: v for k, v in attrs.items() if v is not None})

    def set(self, key: str, value: AttrValue | None) -> None:
        if value is not None:
            self.otel.set_attribute(key, value)

    def fail(self, exc: BaseException) -> None:
        self.set_outcome(outcome_of(exc))

    def set_outcome(self, outcome: str) -> None:
        """``ok``, or an error code (the span's status becomes ERROR with that code as its description)."""
        self._outcome = outcome
        if outcome != "ok":
            from opentelemetry.trace import Status, StatusCode

            self.otel.set_status(Status(StatusCode.ERROR, outcome))

    def end(self, outcome: str | None = None) -> None:
        """End the span with ``outcome`` (default: the one set before, else ``ok``)."""
        if outcome is not None:
            self.set_outcome(outcome)
        self.otel.set_attribute("fedinf.outcome", self._outcome or "ok")
        self.otel.end()


class _Scope:
    """Current-span scope; with ``end_on_exit`` it also ends the span (failed if an exception escapes)."""

    __slots__ = ("span", "end_on_exit", "_token")

    def __init__(self, span: _OtelSpan, *, end_on_exit: bool) -> None:
        self.span = span
        self.end_on_exit = end_on_exit
        self._token: Any = None

    def __enter__(self) -> Span:
        from opentelemetry import context, trace

        self._token = context.attach(trace.set_span_in_context(self.span.otel))
        return self.span

    def __exit__(self, et: Any, exc: Any, tb: Any) -> Literal[False]:
        from opentelemetry import context

        context.detach(self._token)
        if self.end_on_exit:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.span.fail(exc)
            self.span.end()
        return False


class OtelTracer:
    """Spans through an OpenTelemetry ``TracerProvider`` owned by this tracer."""

    enabled = True

    def __init__(self, provider: Any, *, propagate: bool = True) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.propagate = propagate
        self._tracer = provider.get_tracer("fedinf")
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def with_exporter(cls, exporter: Any, *, service_name: str = "fedinf", batch: bool = False,
                      sample_ratio: float = 1.0, propagate: bool = True) -> "OtelTracer":
        """A tracer exporting to ``exporter`` (e.g. the SDK's ``InMemorySpanExporter`` in tests)."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                  sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        return cls(provider, propagate=propagate)

    def _context(self, parent: Span | None, carrier: Mapping[str, str] | None) -> Any:
        if isinstance(parent, _OtelSpan):
            from opentelemetry import trace

            return trace.set_span_in_context(parent.otel)
        if carrier and carrier.get("traceparent"):
            return self._propagator.extract(carrier)
        return None

    def start(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
              parent: Span | None = None, carrier: Mapping[str, str] | None = None, server: bool = False) -> Span:
        from opentelemetry.trace import SpanKind

        clean = {k: v for k, v in (attrs or {}).items() if v is not None}
        kind = SpanKind.SERVER if server else SpanKind.INTERNAL
        return _OtelSpan(self._tracer.start_span(name, context=self._context(parent, carrier), kind=kind,
                                                 attributes=clean))

    def span(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None, *,
             parent: Span | None = None) -> SpanScope:
        span = self.start(name, attrs, parent=parent)
        assert isinstance(span, _OtelSpan)
        return _Scope(span, end_on_exit=True)

    def use(self, span: Span) -> SpanScope:
        if not isinstance(span, _OtelSpan):
            return _NOOP_SPAN
        return _Scope(span, end_on_exit=False)

    def context_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.propagate:
            self._propagator.inject(headers)  # the current span's context (the attempt's, in the executor)
        return headers

    def shutdown(self) -> None:
        self.provider.shutdown()  # flushes what is still queued


# ---------------------------------------------------------------- pipeline steps as spans

Describe = Callable[[Any], Mapping[str, AttrValue | None]]


def step(name: str, describe: Describe | None = None) -> Callable[[Any], Any]:
    """Decorate a pipeline step method: with tracing on, it runs inside a span ``name`` whose parent is the span of
    the request's trace (the argument with a recording ``span``), and ``describe(return value)`` adds attributes.
    With tracing off the method runs directly (one attribute check). A coroutine method stays awaitable either
    way: its wrapper is a plain function returning the method's own coroutine (no second coroutine per call)."""

    def parent_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span | None:
        for a in (*args, *kwargs.values()):
            span = getattr(a, "span", None)
            if getattr(span, "recording", False):
                return span
        return None

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):
            async def traced(tracer: Tracer, self: Any, *args: Any, **kwargs: Any) -> Any:
                with tracer.span(name, parent=parent_of(args, kwargs)) as span:
                    out = await fn(self, *args, **kwargs)
                    _describe(span, describe, out)
                    return out

            @functools.wraps(fn)
            def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                tracer: Tracer = self.tracer
                if not tracer.enabled:
                    return fn(self, *args, **kwargs)
                return traced(tracer, self, *args, **kwargs)
            return run_async

        @functools.wraps(fn)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            tracer: Tracer = self.tracer
            if not tracer.enabled:
                return fn(self, *args, **kwargs)
            with tracer.span(name, parent=parent_of(args, kwargs)) as span:
                out = fn(self, *args, **kwargs)
                _describe(span, describe, out)
                return out
        return run

    return deco


def _describe(span: Span, describe: Describe | None, out: Any) -> None:
    if describe is not None and out is not None and isinstance(span, _OtelSpan):
        span.set_all(describe(out))


# ---------------------------------------------------------------- what each step's span says (never content)

def principal_facts(p: Any) -> dict[str, AttrValue | None]:
    return {"fedinf.tenant": p.tenant, "fedinf.key_id": p.key_id}


def classification_facts(c: Any) -> dict[str, AttrValue | None]:
    counts: dict[str, int] = c.counts()
    return {"fedinf.data_class": c.data_class.label, "fedinf.detected_class": c.detected_class.label,
            "fedinf.entities": sorted(counts), "fedinf.entity_count": sum(counts.values()),
            "fedinf.class_adjustment": c.adjustment}


def decision_facts(d: Any) -> dict[str, AttrValue | None]:
    return {"fedinf.route": d.route, "fedinf.strategy": d.strategy, "fedinf.data_class": d.data_class.label,
            "fedinf.eligible": [t.model_id for t in d.targets], "fedinf.excluded": [e.model_id for e in d.excluded]}


def result_facts(r: Any) -> dict[str, AttrValue | None]:
    return {"fedinf.model": r.target.model_id, "fedinf.zone": r.target.zone, "fedinf.replica": r.replica,
            "fedinf.attempts": sum(1 for a in r.attempts if a.sent), "fedinf.hedged": bool(r.hedged)}


def request_facts(trace: Any) -> dict[str, AttrValue | None]:
    """The request span's closing attributes, from the pipeline's Trace."""
    facts: dict[str, AttrValue | None] = {
        "fedinf.status": trace.status, "fedinf.stream": trace.stream, "gen_ai.request.model": trace.requested,
        "fedinf.attempts": sum(1 for a in trace.attempts if a.sent)}
    if trace.principal is not None:
        facts.update(principal_facts(trace.principal))
    cls = trace.decision or trace.classification
    if cls is not None:
        facts["fedinf.data_class"] = cls.data_class.label
    if trace.result is not None:
        facts.update({"fedinf.model": trace.result.target.model_id, "fedinf.zone": trace.result.target.zone,
                      "gen_ai.response.model": trace.result.target.model_id})
    usage = trace.usage or {}
    if usage:
        facts["gen_ai.usage.input_tokens"] = int(usage.get("prompt_tokens") or 0)
        facts["gen_ai.usage.output_tokens"] = int(usage.get("completion_tokens") or 0)
    return facts


def build_tracer(settings: "TracingSettings") -> Tracer:
    """The tracer the ``tracing`` config section asks for (:data:`NOOP` when disabled)."""
    if not settings.enabled:
        return NOOP
    try:
        exporter = _exporter(settings)
    except ImportError as exc:
        raise ConfigError(f"tracing.enabled needs the OpenTelemetry packages ({exc.name} is missing): "
                          "pip install 'fedinf[otel]'") from None
    return OtelTracer.with_exporter(exporter, service_name=settings.service_name, batch=True,
                                    sample_ratio=settings.sample_ratio, propagate=settings.propagate)


def _exporter(s: "TracingSettings") -> Any:
    if s.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=s.service_name)
    headers = _headers(s.headers_env)
    if s.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = s.endpoint.startswith("http://") if s.endpoint else None
        return GrpcExporter(endpoint=s.endpoint, insecure=insecure, headers=headers, timeout=s.timeout_s)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=s.endpoint, headers=headers, timeout=s.timeout_s)


def _headers(env: str | None) -> dict[str, str] | None:
    if not env:
        return None
    raw = os.environ.get(env)
    if raw is None:
        raise ConfigError(f"tracing.headers_env names {env!r}, which is not set")
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"${env} must be `key=value` pairs separated by commas")
        out[key.strip().lower()] = value.strip()
    return out
