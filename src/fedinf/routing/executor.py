"""The executor: walks a Decision's ordered targets until one answers well.

Rules it guarantees:
- only targets in ``Decision.targets`` are ever called (the eligible set; fail closed) - retries, fallbacks, hedges
  and cascade escalations all pick from it;
- one overall deadline covers every attempt, backoff and hedge;
- within a target, replicas come in the pool's order (load balancing; ejected, unhealthy and open-breaker replicas
  left out); a retryable failure moves on to the next replica, then the next model, up to
  ``reliability.retries.max_attempts`` attempts; every retry needs a slot of the retry budget while it is in flight
  (:mod:`fedinf.routing.retry`), and a retry that calls an endpoint that already failed for this request first
  waits a full-jitter backoff (moving on to a fresh endpoint does not wait); a non-retryable failure stops at once;
- a stream is retried only before its first chunk reached the caller; later failures become ``StreamInterrupted``;
- requests marked ``fedinf.idempotent`` on a route with ``hedge_after_ms`` are hedged (:mod:`fedinf.routing.hedge`),
  within a hedge budget of their own;
- structured output is validated on every attempt; re-asks are bounded by the plan; the ``cascade`` strategy moves
  to the next eligible model exactly when the output fails its check (without re-asking the earlier, smaller models
  unless the request sets ``fedinf.max_reasks``);
- targets marked ``pseudonymize`` get placeholders instead of entity values and their answer is re-identified;
- every attempt (kind: first, retry, hedge, escalation; outcome; latency) is in ``Result.attempts``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedinf.backends.base import CallContext
from fedinf.errors import (AllTargetsFailed, BackendRejected, BackendTimeout, BackendUnavailable,
                           FedinfError, OutputValidationError, ServiceUnavailable, StreamInterrupted)
from fedinf.protocol import ChatRequest
from fedinf.ready import Waiting, finish, run_until_wait
from fedinf.routing.decide import Decision, Target
from fedinf.routing.hedge import Race
from fedinf.routing.pool import BackendPool, Replica
from fedinf.routing.retry import backoff_s, retryable
from fedinf.tracing import NOOP, Tracer

if TYPE_CHECKING:
    from fedinf.backends import Backend
    from fedinf.data_class import DataClass
    from fedinf.privacy import Pseudonymizer
    from fedinf.structured import Check, OutputSpec

log = logging.getLogger("fedinf.executor")


@dataclass(slots=True)
class Attempt:
    model: str
    zone: str
    replica: str
    outcome: str  # "ok", an error code, "cancelled" (lost a hedge race) or "skipped:<why>" (never sent)
    latency_ms: float
    reask: int = 0
    kind: str = "first"  # first | retry | hedge | escalation

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "zone": self.zone, "replica": self.replica, "outcome": self.outcome,
                "latency_ms": round(self.latency_ms, 2), "reask": self.reask, "kind": self.kind}

    @property
    def sent(self) -> bool:
        return not self.outcome.startswith("skipped")


@dataclass
class Result:
    target: Target
    replica: str
    attempts: list[Attempt]
    completion: dict[str, Any] | None = None
    stream: AsyncIterator[dict[str, Any]] | None = None
    structured: dict[str, Any] | None = None
    hedged: bool = False


class _Candidates:
    """(target, replica) pairs in try order: each target's replicas in pool order, targets in decision order.
    Every pair is offered once per pass; :meth:`restart` begins another pass (same targets, fresh order)."""

    def __init__(self, pool: BackendPool, targets: tuple[Target, ...],
                 on_refused: Callable[[Target, Replica], None] | None = None) -> None:
        self.pool = pool
        self.targets = targets
        self.on_refused = on_refused
        self.index = 0
        self.queue: deque[Replica] | None = None
        self.passes = 1

    def next(self) -> tuple[Target, Replica] | None:
        while self.index < len(self.targets):
            if self.queue is None:
                target = self.targets[self.index]
                self.queue = deque(self.pool.order(target.model_id))
                if not self.queue and self.on_refused is not None and self.passes == 1:
                    for rep in self.pool.refused(target.model_id):  # say why this target was passed over
                        self.on_refused(target, rep)
            if self.queue:
                return self.targets[self.index], self.queue.popleft()
            self.index, self.queue = self.index + 1, None
        return None

    def skip_model(self) -> None:
        """Leave the current target's remaining replicas (cascade escalation)."""
        if self.queue is not None:
            self.queue.clear()

    def restart(self) -> None:
        self.index, self.queue = 0, None
        self.passes += 1

    def at_last_target(self, target: Target) -> bool:
        return target == self.targets[-1]


@dataclass
class _Run:
    """The state of one request's execution."""

    request: ChatRequest
    decision: Decision
    request_id: str
    deadline: float
    output: OutputSpec | None
    attempts: list[Attempt] = field(default_factory=list)
    failures: list[tuple[str, FedinfError]] = field(default_factory=list)
    sent: int = 0          # attempts that count toward max_attempts
    escalate: bool = False  # the next attempt is a cascade escalation (not a retry)


@dataclass
class Executor:
    pool: BackendPool
    pseudonymizer_factory: Callable[[], Pseudonymizer] | None = None
    clock: Callable[[], float] = time.monotonic
    tracer: Tracer = NOOP  # a `fedinf.attempt` span per attempt, `fedinf.validate` per structured-output check

    async def run(self, request: ChatRequest, decision: Decision, *, request_id: str, deadline: float,
                  output: OutputSpec | None = None, attempts: list[Attempt] | None = None) -> Result:
        """Execute ``request`` against the decision's targets. ``output`` is a structured OutputSpec or None.

        Every attempt is appended to ``attempts`` (the caller's list, so it survives a failure for the audit).
        """
        if self.pool.closing:
            raise ServiceUnavailable("the gateway is shutting down; retry on another instance", code="shutting_down")
        self.pool.enter()
        handed_off = False
        try:
            run = _Run(request, decision, request_id, deadline, output)
            if attempts is not None:
                run.attempts = attempts
            result = await self._run(run)
            if result.stream is not None:
                result.stream = self._until_stream_ends(result.stream)
                handed_off = True
            return result
        finally:
            if not handed_off:
                self.pool.leave()

    def _until_stream_ends(self, stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        pool = self.pool
        return _TrackedStream(stream, lambda ok: pool.leave())

    # ------------------------------------------------------------------ the attempt loop

    async def _run(self, run: _Run) -> Result:
        policy = self.pool.policy.retries
        cands = _Candidates(self.pool, run.decision.targets, lambda t, r: self._skip(
            run, t, r, "circuit_open", BackendUnavailable(f"circuit breaker for {r.name} is open", code="circuit_open")))
        pass_sent = 0
        while True:
            cand = cands.next()
            if cand is None:
                last = run.failures[-1][1] if run.failures else None
                if (pass_sent and run.sent < policy.max_attempts and last is not None and retryable(last)
                        and self.clock() < run.deadline):
                    cands.restart()  # another pass over the same eligible targets
                    pass_sent = 0
                    continue
                break
            target, rep = cand
            if run.sent >= policy.max_attempts and not run.escalate:
                break
            permit = rep.breaker.acquire() if rep.breaker is not None else "call"
            if permit is None:
                self._skip(run, target, rep, "circuit_open",
                           BackendUnavailable(f"circuit breaker for {rep.name} is open", code="circuit_open"))
                continue
            kind = "escalation" if run.escalate else ("retry" if run.sent else "first")
            gate = await self._gate(run, target, rep, permit, kind)
            if gate is None:
                break
            try:
                run.sent += 0 if kind == "escalation" else 1
                pass_sent += 1
                run.escalate = False
                result = await self._maybe_hedged(run, cands, target, rep, permit, kind)
            except OutputValidationError as exc:
                if run.decision.strategy != "cascade" or cands.at_last_target(target):
                    _attach_attempts(exc, run.attempts)
                    raise
                cands.skip_model()
                run.escalate = True  # cascade: the next eligible model, never outside the decision
                continue
            except FedinfError as exc:
                if not retryable(exc):
                    _attach_attempts(exc, run.attempts)
                    raise
                continue
            finally:
                if gate == "slot":
                    self.pool.budget.release()
            result.attempts = run.attempts
            return result
        raise self._failure(run)

    async def _gate(self, run: _Run, target: Target, rep: Replica, permit: str, kind: str) -> str | None:
        """Backoff, retry budget and deadline before an attempt: ``"slot"`` (a retry holding a budget slot),
        ``"go"``, or ``None`` (not sent: recorded as skipped, the request stops here)."""
        if kind == "retry" and any(name == rep.name for name, _ in run.failures) \
                and not await self._backoff(run):  # back off before calling a failed endpoint again
            _release(rep, permit)
            self._skip(run, target, rep, "deadline", BackendTimeout("the request deadline passed before this attempt"))
            return None
        if self.clock() >= run.deadline:
            _release(rep, permit)
            self._skip(run, target, rep, "deadline", BackendTimeout("the request deadline passed before this attempt"))
            return None
        if kind != "retry":
            return "go"
        if not self.pool.budget.try_acquire():
            _release(rep, permit)
            self._skip(run, target, rep, "retry_budget_exhausted", BackendUnavailable(
                "retry budget exhausted: too many retries across the gateway", code="retry_budget_exhausted"))
            return None
        return "slot"

    def _failure(self, run: _Run) -> FedinfError:
        failures = run.failures
        if not failures:
            return BackendUnavailable("no replica of any eligible model could be called", code="no_replica")
        codes = {e.code for _, e in failures}
        if len(codes) == 1 and not isinstance(failures[-1][1], OutputValidationError):
            exc = failures[-1][1]  # one kind of failure (e.g. one replica retried): the caller sees it as is
            _attach_attempts(exc, run.attempts)
            return exc
        exc = AllTargetsFailed(_summary(failures), failures=failures)
        _attach_attempts(exc, run.attempts)
        return exc

    def _skip(self, run: _Run, target: Target, rep: Replica, why: str, exc: FedinfError) -> None:
        run.attempts.append(Attempt(target.model_id, target.zone, rep.name, f"skipped:{why}", 0.0))
        run.failures.append((rep.name, exc))

    async def _backoff(self, run: _Run) -> bool:
        """Sleep the full-jitter backoff before a retry; False when it would cross the deadline."""
        delay = backoff_s(run.sent, self.pool.policy.retries, self.pool.rng)
        if self.clock() + delay >= run.deadline:
            return False
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    # ------------------------------------------------------------------ hedging

    async def _maybe_hedged(self, run: _Run, cands: _Candidates, target: Target, rep: Replica, permit: str,
                            kind: str) -> Result:
        delay = self._hedge_delay(run, target, kind)
        primary = self._tracked(run, target, rep, permit, kind)
        if delay is None:
            return await primary

        def backup() -> Any:
            if self.clock() >= run.deadline:
                return None
            while (cand := cands.next()) is not None:
                t2, r2 = cand
                p2 = r2.breaker.acquire() if r2.breaker is not None else "call"
                if p2 is None:
                    continue
                if not self.pool.budget.try_acquire_hedge():
                    _release(r2, p2)
                    return None
                run.sent += 1
                return self._with_hedge_slot(self._tracked(run, t2, r2, p2, "hedge"))
            return None

        race: Race[Result] = Race(primary, backup, delay, _discard)
        result = await race.run()
        result.hedged = race.hedged
        return result

    def _hedge_delay(self, run: _Run, target: Target, kind: str) -> float | None:
        if kind != "first" or not run.request.fedinf.idempotent or not run.decision.route:
            return None
        route = self.pool.network.config.routes.get(run.decision.route)
        if route is None:
            return None
        return self.pool.hedge_delay_s(target.model_id, route.hedge_after_ms)

    async def _with_hedge_slot(self, coro: Any) -> Result:
        try:
            return await coro
        finally:
            self.pool.budget.release_hedge()

    # ------------------------------------------------------------------ one attempt, with bookkeeping

    async def _tracked(self, run: _Run, target: Target, rep: Replica, permit: str, kind: str) -> Result:
        """One attempt on one replica, in its own span when tracing is on."""
        if not self.tracer.enabled:
            return await self._tracked_attempt(run, target, rep, permit, kind)
        with self.tracer.span("fedinf.attempt", {"fedinf.model": target.model_id, "fedinf.zone": target.zone,
                                                 "fedinf.replica": rep.name, "fedinf.attempt.kind": kind}):
            return await self._tracked_attempt(run, target, rep, permit, kind)

    async def _tracked_attempt(self, run: _Run, target: Target, rep: Replica, permit: str, kind: str) -> Result:
        """One attempt on one replica: records the outcome for balancing, ejection and the breaker."""
        mine: list[Attempt] = []
        self.pool.started(rep)
        t0 = self.clock()
        ok, counts, streaming = False, True, False
        try:
            result = await self._attempt(run, target, rep, mine)
            ok, streaming = True, result.stream is not None
            if result.stream is not None:
                result.stream = self._stream_outcome(result.stream, rep)
            return result
        except (OutputValidationError, BackendRejected) as exc:
            ok = True  # the endpoint answered; the request or the output was at fault
            run.failures.append((rep.name, exc))
            raise
        except FedinfError as exc:
            run.failures.append((rep.name, exc))
            raise
        except asyncio.CancelledError:
            counts = False
            mine.append(Attempt(target.model_id, target.zone, rep.name, "cancelled", (self.clock() - t0) * 1000))
            raise
        finally:
            for a in mine:
                a.kind = kind
            run.attempts.extend(mine)
            self.pool.finished(rep, ok, (self.clock() - t0) * 1000, permit=permit, counts=counts,
                               keep_outstanding=streaming)

    def _stream_outcome(self, stream: AsyncIterator[dict[str, Any]], rep: Replica) -> AsyncIterator[dict[str, Any]]:
        """Pass a started stream through; report a failure after the first byte to the pool (never retried)."""
        pool = self.pool
        return _TrackedStream(stream, lambda ok: pool.stream_ended(rep, ok))

    async def _attempt(self, run: _Run, target: Target, replica: Replica, attempts: list[Attempt]) -> Result:
        request = run.request
        pseudo = self.pseudonymizer_factory() if (target.pseudonymize and self.pseudonymizer_factory) else None
        entry = self.pool.network.models[target.model_id]
        sent = _pseudonymize(request, pseudo, entry.zone.clearance) if pseudo is not None else request
        spec = entry.spec
        ctx = CallContext(request_id=run.request_id, deadline=run.deadline, headers=self.tracer.context_headers(),
                          upstream_model=spec.upstream_model or spec.id)
        backend = replica.backend
        if run.output is not None:
            reasks = _max_reasks(request)
            if (run.decision.strategy == "cascade" and request.fedinf.max_reasks is None
                    and target != run.decision.targets[-1]):
                reasks = 0  # cascade: escalate instead of re-asking the smaller model
            return await self._structured(sent, target, replica, attempts, ctx, run.output, pseudo, reasks)
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
            async with asyncio.timeout(max(0.001, ctx.deadline - t0)):  # no extra Task, unlike wait_for on 3.11
                result = await coro
        except TimeoutError:
            attempts.append(Attempt(target.model_id, target.zone, replica.name, "backend_timeout",
                                    (self.clock() - t0) * 1000, reask))
            raise BackendTimeout(
                f"{target.model_id} did not answer within the request deadline ({max(0.0, ctx.deadline - t0):.0f} s "
                "left when the attempt started; the deadline is the request's fedinf.timeout_s, else the model's "
                "timeouts.total_s, else server.request_timeout_s)") from None
        except FedinfError as exc:
            attempts.append(Attempt(target.model_id, target.zone, replica.name, exc.code,
                                    (self.clock() - t0) * 1000, reask))
            raise
        attempts.append(Attempt(target.model_id, target.zone, replica.name, "ok", (self.clock() - t0) * 1000, reask))
        return result

    async def _open_stream(self, backend: Backend, request: ChatRequest, ctx: CallContext, target: Target,
                           replica: Replica, attempts: list[Attempt]) -> AsyncIterator[dict[str, Any]]:
        """Start a stream and pull its first chunk, so failures up to here can still fall back."""
        iterator = backend.stream(request, ctx).__aiter__()
        try:
            first = await self._call(iterator.__anext__(), ctx, target, replica, attempts)
        except StopAsyncIteration:
            attempts[-1:] = []
            attempts.append(Attempt(target.model_id, target.zone, replica.name, "empty_stream", 0.0))
            raise BackendUnavailable(f"{target.model_id} closed the stream without sending anything") from None
        except BaseException:
            await _aclose(iterator)
            raise
        return _continue(first, iterator, ctx.deadline, target.model_id, self.clock)

    async def _structured(self, request: ChatRequest, target: Target, replica: Replica, attempts: list[Attempt],
                          ctx: CallContext, output: OutputSpec, pseudo: Pseudonymizer | None, max_reasks: int) -> Result:
        from fedinf.structured import plan_for

        caps = self.pool.network.models[target.model_id].capabilities
        plan = plan_for(output, caps, max_reasks=max_reasks)
        check: Check | None = None
        for n in range(plan.max_attempts):
            sent, extra = plan.prepare(request.model_copy(update={"stream": False}), n, check)
            if pseudo is not None:  # the plan adds the schema and re-ask turns (with the restored answer): again
                sent = _pseudonymize(sent, pseudo, self.pool.network.models[target.model_id].zone.clearance)
            ctx.extra = dict(extra)
            completion = await self._call(replica.backend.chat(sent, ctx), ctx, target, replica, attempts, reask=n)
            _restore_completion(completion, pseudo)
            with self.tracer.span("fedinf.validate", {"fedinf.reask": n}) as span:
                check = plan.check(completion)
                span.set_outcome("ok" if check.ok else "output_truncated" if check.truncated else "output_invalid")
            if check.ok:
                meta = plan.metadata()
                meta["attempts"] = n + 1
                return Result(target, replica.name, attempts, completion=completion, structured=meta)
            attempts[-1].outcome = "output_truncated" if check.truncated else "output_invalid"
            if not plan.can_retry(check, n):
                break
        if check is None:  # a plan of zero attempts: nothing was produced
            raise OutputValidationError(f"{target.model_id} was not asked: the output plan allows no attempt")
        raise plan.error_for(check)


class _TrackedStream:
    """Wraps a started stream and calls ``on_end(ok)`` exactly once: at its end, on a failure (``ok`` False for
    ``StreamInterrupted``), on ``aclose``, or when dropped unconsumed (a client that went away)."""

    def __init__(self, inner: AsyncIterator[dict[str, Any]], on_end: Callable[[bool], None]) -> None:
        self._inner = inner
        self._on_end: Callable[[bool], None] | None = on_end

    def __aiter__(self) -> "_TrackedStream":
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._end(True)
            raise
        except StreamInterrupted:
            self._end(False)
            raise
        except BaseException:
            self._end(True)  # cancelled by the caller: says nothing about the endpoint
            raise

    async def aclose(self) -> None:
        self._end(True)
        await _aclose(self._inner)

    def _end(self, ok: bool) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(ok)

    def __del__(self) -> None:
        self._end(True)


def _release(rep: Replica, permit: str | None) -> None:
    if rep.breaker is not None:
        rep.breaker.release(permit)


async def _discard(result: Result) -> None:
    """Close the losing side of a hedge race that also succeeded (its stream would hold a connection)."""
    if result.stream is not None:
        await _aclose(result.stream)


def _attach_attempts(exc: FedinfError, attempts: list[Attempt]) -> None:
    if attempts:
        exc.details.setdefault("attempts_made", [a.to_dict() for a in attempts])


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
            step = iterator.__anext__()
            try:
                got = run_until_wait(step)  # a chunk already there needs no timer
                if isinstance(got, Waiting):
                    async with asyncio.timeout(remaining):
                        got = await finish(step, got)
                chunk = got
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise StreamInterrupted(f"{model_id} stream passed the request deadline") from None
            except StreamInterrupted:
                raise
            except FedinfError as exc:
                raise StreamInterrupted(f"{model_id} stream failed after it started: {exc.message}") from None
            yield chunk
    finally:
        await _aclose(iterator)


# ---------------------------------------------------------------- pseudonymization plumbing

def _pseudonymize(request: ChatRequest, pseudo: Pseudonymizer, clearance: DataClass) -> ChatRequest:
    """Every forwarded string rewritten (content, names, tool calls and definitions, user, stop, metadata ...),
    checked again against the zone's plain clearance before anything is sent."""
    return request.with_texts(pseudo.pseudonymize_checked(request.texts(), clearance=clearance))


def _restore_completion(completion: dict[str, Any], pseudo: Pseudonymizer | None) -> None:
    if pseudo is None:
        return
    for choice in completion.get("choices", []):
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            msg["content"] = pseudo.restore(msg["content"])
        calls = [c.get("function") or {} for c in msg.get("tool_calls") or []]
        for fn in calls + ([msg["function_call"]] if isinstance(msg.get("function_call"), dict) else []):
            for key in ("name", "arguments"):  # tool names are pseudonymized too when they hold a value
                if isinstance(fn.get(key), str):
                    fn[key] = pseudo.restore(fn[key])


async def _restore_stream(stream: AsyncIterator[dict[str, Any]],
                          pseudo: Pseudonymizer | None) -> AsyncIterator[dict[str, Any]]:
    if pseudo is None:
        async for c in stream:
            yield c
        return
    from fedinf.privacy import StreamRestorer

    restorer = StreamRestorer(pseudo)
    args: dict[int, Any] = {}  # tool-call index -> restorer of its streamed arguments
    last: dict[str, Any] | None = None
    try:
        async for c in stream:
            for choice in c.get("choices", []):
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] = restorer.feed(delta["content"])
                for call in delta.get("tool_calls") or []:
                    fn = call.get("function") or {}
                    if isinstance(fn.get("name"), str):
                        fn["name"] = pseudo.restore(fn["name"])
                    if isinstance(fn.get("arguments"), str):
                        r = args.setdefault(int(call.get("index", 0)), StreamRestorer(pseudo))
                        fn["arguments"] = r.feed(fn["arguments"])
                if choice.get("finish_reason") is not None:
                    tail = restorer.flush()
                    if tail:
                        delta["content"] = (delta.get("content") or "") + tail
                    rest = [{"index": i, "function": {"arguments": t}} for i, r in args.items() if (t := r.flush())]
                    if rest:
                        delta["tool_calls"] = [*(delta.get("tool_calls") or []), *rest]
            last = c
            yield c
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    del last
