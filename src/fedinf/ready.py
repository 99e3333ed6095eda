"""Awaiting without waiting: take a result that is already there without a trip through the event loop.

A stream's next chunk is often ready at once (an upstream delivers several events per network read). Code that would
do per-chunk work only when it has to wait (arm a timer, flush a write) runs the step with :func:`run_until_wait`:
it returns the result when the step finished without waiting, or :class:`Waiting` when it handed something to the
event loop; :func:`finish` then drives that step to its end through the loop, exactly as if it had been awaited
(cancellation and timeouts included: whatever the loop throws in is passed on to the step).
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class Waiting:
    """The step would wait: ``yielded`` is what it handed to the event loop (``started`` False: it cannot be run
    step by step, and has not been started)."""

    __slots__ = ("started", "yielded")

    def __init__(self, yielded: object, *, started: bool = True) -> None:
        self.yielded, self.started = yielded, started


def run_until_wait(step: Awaitable[T]) -> T | Waiting:
    """Run ``step`` (a coroutine or an ``__anext__`` awaitable) until it finishes (its result) or would wait
    (:class:`Waiting`). Raises what the step raises (``StopAsyncIteration`` at a stream's end ...)."""
    send = getattr(step, "send", None)
    if send is None:  # an awaitable that is not a coroutine: await it the ordinary way
        return Waiting(None, started=False)
    try:
        yielded = send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    return Waiting(yielded)


@types.coroutine
def finish(step: Awaitable[T], waiting: Waiting, error: BaseException | None = None) -> Generator[Any, Any, T]:
    """Drive ``step``, which :func:`run_until_wait` left waiting, to its end through the event loop (with
    ``error``: throw that into it first); return its result."""
    if not waiting.started:  # nothing of it ran yet
        if error is not None:
            raise error
        return (yield from step.__await__())
    coro: Any = step
    yielded = waiting.yielded
    try:
        if error is not None:
            yielded = coro.throw(error)
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # cancellation (or close) from the loop: the step must see it
                yielded = coro.throw(exc)
            else:
                yielded = coro.send(sent)
    except StopIteration as done:
        result: T = done.value
        return result
