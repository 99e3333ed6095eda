"""The executor: walks a Decision's ordered targets until one answers well.

Rules it guarantees:
- only targets in ``Decision.targets`` are ever called (the eligible set; fail closed);
- one overall deadline covers every attempt;
- a retryable failure moves on to the next replica, then the next model; a non-retryable one stops;
- a stream is retried only before its first chunk reached the caller; later failures become ``StreamInterrupted``;
- structured output is validated on every attempt; re-asks are bounded by the plan; the ``cascade`` strategy moves
  to the next eligible model when the output fails its check;
- targets marked ``pseudonymize`` get placeholders instead of entity values and their answer is re-identified.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fedinf.backends.base import CallContext
from fedinf.errors import (AllTargetsFailed, BackendError, BackendTimeout, FedinfError, OutputValidationError,
                           StreamInterrupted)
from fedinf.protocol import ChatRequest
from fedinf.routing.decide import Decision, Target
from fedinf.routing.pool import BackendPool, Replica

log = logging.getLogger("fedinf.executor")


@dataclass(slots=True)
class Attempt:
    model: str
    zone: str
    replica: str
    outcome: str  # "ok" or an error code
    latency_ms: float
    reask: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "zone": self.zone, "replica": self.replica, "outcome": self.outcome,
                "latency_ms": round(self.latency_ms, 2), "reask": self.reask}


@dataclass
class Result:
    target: Target
    replica: str
    attempts: list[Attempt]
    completion: dict[str, Any] | None = None
    stream: AsyncIterator[dict[str, Any]] | None = None
    structured: dict[str, Any] | None = None


@dataclass
class Executor:
    pool: BackendPool
    pseudonymizer_factory: Callable[[], Any] | None = None
    clock: Callable[[], float] = time.monotonic
    attempts_log: list[Attempt] = field(default_factory=list, repr=False)

    async def run(self, request: ChatRequest, decision: Decision, *, request_id: str, deadline: float,
                  output: Any = None, attempts: list[Attempt] | None = None) -> Result:
        """Execute ``request`` against the decision's targets. ``output`` is a structured OutputSpec or None.

        Every attempt is appended to ``attempts`` (the caller's list, so it survives a failure for the audit).
        """
        attempts = [] if attempts is None else attempts
        failures: list[tuple[str, FedinfError]] = []
        for target in decision.targets:
            for replica in self.pool.order(target.model_id):
                if self.clock() >= deadline:
                    failures.append((replica.name, BackendTimeout("request deadline passed before this attempt")))
                    raise AllTargetsFailed(_summary(failures), failures=failures)
                try:
                    return await self._attempt(request, target, replica, attempts, request_id=request_id,
                                               deadline=deadline, output=output, decision=decision)
                except OutputValidationError as exc:
                    failures.append((replica.name, exc))
                    if decision.strategy != "cascade":
                        exc.details.setdefault("attempts", [a.to_dict() for a in attempts])
                        raise
                    break  # cascade: escalate to the next eligible model
                except BackendError as exc:
                    failures.append((replica.name, exc))
                    if not exc.retryable:
                        raise
        if len(failures) == 1 and not isinstance(failures[0][1], OutputValidationError):
            raise failures[0][1]
        raise AllTargetsFailed(_summary(failures), failures=failures)

    async def _attempt(self, request: ChatRequest, target: Target, replica: Replica, attempts: list[Attempt], *,
                       request_id: str, deadline: float, output: Any, decision: Decision) -> Result:
        pseudo = self.pseudonymizer_factory() if (target.pseudonymize and self.pseudonymizer_factory) else None
        sent = _pseudonymize(request, pseudo) if pseudo else request
        spec = self.pool.network.models[target.model_id].spec
        ctx = CallContext(request_id=request_id, deadline=deadline, upstream_model=spec.upstream_model or spec.id)
        backend = replica.backend
        if output is not None:
            return await self._structured(sent, target, replica, attempts, ctx, output, pseudo)
        if request.stream:
            stream = await self._open_stream(backend, sent, ctx, target, replica, attempts)
            return Result(target, replica.name, attempts, stream=_restore_stream(stream, pseudo))
        completion = await self._call(backend.chat(sent, ctx), ctx, target, replica, attempts)
        _restore_completion(completion, pseudo)
        return Result(target, replica.name, attempts, completion=completion)

    async def _call(self, coro: Any, ctx: CallContext, target: Target, replica: Replica,
                    attempts: list[Attempt], reask: int = 0) -> dict[str, Any]:
        t0 = self.clock()
        try:
            result = await asyncio.wait_for(coro, timeout=max(0.001, ctx.deadline - t0))
        except asyncio.TimeoutError:
            attempts.append(Attempt(target.model_id, target.zone, replica.name, "backend_timeout",
                                    (self.clock() - t0) * 1000, reask))
            raise BackendTimeout(f"{target.model_id} did not answer within the request deadline") from None
        except FedinfError as exc:
            attempts.append(Attempt(target.model_id, target.zone, replica.name, exc.code,
                                    (self.clock() - t0) * 1000, reask))
            raise
        attempts.append(Attempt(target.model_id, target.zone, replica.name, "ok", (self.clock() - t0) * 1000, reask))
        return result

    async def _open_stream(self, backend: Any, request: ChatRequest, ctx: CallContext, target: Target,
                           replica: Replica, attempts: list[Attempt]) -> AsyncIterator[dict[str, Any]]:
        """Start a stream and pull its first chunk, so failures up to here can still fall back."""
        iterator = backend.stream(request, ctx).__aiter__()
        try:
            first = await self._call(iterator.__anext__(), ctx, target, replica, attempts)
        except StopAsyncIteration:
            from fedinf.errors import BackendUnavailable
            attempts[-1:] = []
            attempts.append(Attempt(target.model_id, target.zone, replica.name, "empty_stream", 0.0))
            raise BackendUnavailable(f"{target.model_id} closed the stream without sending anything") from None
        except BaseException:
            await _aclose(iterator)
            raise
        return _continue(first, iterator, ctx.deadline, target.model_id, self.clock)

    async def _structured(self, request: ChatRequest, target: Target, replica: Replica, attempts: list[Attempt],
                          ctx: CallContext, output: Any, pseudo: Any) -> Result:
        from fedinf.structured import plan_for

        caps = self.pool.network.models[target.model_id].capabilities
        plan = plan_for(output, caps, max_reasks=_max_reasks(request))
        check = None
        completion: dict[str, Any] = {}
        for n in range(plan.max_attempts):
            sent, extra = plan.prepare(request.model_copy(update={"stream": False}), n, check)
            ctx.extra = dict(extra)
            completion = await self._call(replica.backend.chat(sent, ctx), ctx, target, replica, attempts, reask=n)
            _restore_completion(completion, pseudo)
            check = plan.check(completion)
            if check.ok:
                meta = plan.metadata()
                meta["attempts"] = n + 1
                return Result(target, replica.name, attempts, completion=completion, structured=meta)
            attempts[-1].outcome = "output_truncated" if check.truncated else "output_invalid"
        raise plan.failure(check, completion) if hasattr(plan, "failure") else OutputValidationError(
            f"{target.model_id} did not produce valid output after {plan.max_attempts} attempt(s)",
            details={"errors": list(getattr(check, "errors", []))[:20]})


def _max_reasks(request: ChatRequest) -> int:
    return request.fedinf.max_reasks if request.fedinf.max_reasks is not None else 2


def _summary(failures: list[tuple[str, FedinfError]]) -> str:
    parts = [f"{name}: {exc.code}" for name, exc in failures]
    return f"all {len(failures)} attempt(s) failed ({'; '.join(parts)})"


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # closing a broken upstream stream is best effort
            pass


async def _continue(first: dict[str, Any], iterator: AsyncIterator[dict[str, Any]], deadline: float,
                    model_id: str, clock: Callable[[], float]) -> AsyncIterator[dict[str, Any]]:
    """Yield the first chunk, then the rest; failures after the first byte become StreamInterrupted."""
    try:
        yield first
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise StreamInterrupted(f"{model_id} stream passed the request deadline")
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), timeout=remaining)
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise StreamInterrupted(f"{model_id} stream passed the request deadline") from None
            except StreamInterrupted:
                raise
            except FedinfError as exc:
                raise StreamInterrupted(f"{model_id} stream failed after it started: {exc.message}") from None
            yield chunk
    finally:
        await _aclose(iterator)


# ---------------------------------------------------------------- pseudonymization plumbing

def _pseudonymize(request: ChatRequest, pseudo: Any) -> ChatRequest:
    messages = []
    for m in request.messages:
        upd: dict[str, Any] = {}
        if isinstance(m.content, str):
            upd["content"] = pseudo.pseudonymize([m.content])[0]
        elif isinstance(m.content, list):
            upd["content"] = [({**p, "text": pseudo.pseudonymize([p["text"]])[0]} if isinstance(p.get("text"), str)
                               else p) for p in m.content]
        if m.tool_calls:
            upd["tool_calls"] = [
                {**c, "function": {**c.get("function", {}),
                                   "arguments": pseudo.pseudonymize([str(c.get("function", {}).get("arguments", ""))])[0]}}
                for c in m.tool_calls]
        messages.append(m.model_copy(update=upd))
    return request.model_copy(update={"messages": messages})


def _restore_completion(completion: dict[str, Any], pseudo: Any) -> None:
    if pseudo is None:
        return
    for choice in completion.get("choices", []):
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            msg["content"] = pseudo.restore(msg["content"])
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = pseudo.restore(fn["arguments"])


async def _restore_stream(stream: AsyncIterator[dict[str, Any]], pseudo: Any) -> AsyncIterator[dict[str, Any]]:
    if pseudo is None:
        async for c in stream:
            yield c
        return
    from fedinf.privacy import StreamRestorer

    restorer = StreamRestorer(pseudo)
    last: dict[str, Any] | None = None
    try:
        async for c in stream:
            for choice in c.get("choices", []):
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] = restorer.feed(delta["content"])
                if choice.get("finish_reason") is not None:
                    tail = restorer.flush()
                    if tail:
                        delta["content"] = (delta.get("content") or "") + tail
            last = c
            yield c
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    del last
