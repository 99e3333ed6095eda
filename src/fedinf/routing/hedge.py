"""Hedged requests ("The Tail at Scale"): when the first attempt has not answered after a delay, send a second one to
another eligible endpoint, take the first good answer and cancel the other.

Only requests the caller marks ``fedinf.idempotent`` are hedged, only on routes with ``hedge_after_ms`` (a number,
or ``p95``: the first target's observed 95th percentile, once :class:`LatencyWindow` has enough samples). A hedge
is an extra request, so it takes a slot of the retry budget; when the budget is spent the request is not hedged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatencyWindow:
    """The last ``size`` successful latencies (ms) of one model; :meth:`quantile` on demand."""

    def __init__(self, size: int = 256) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._sorted: list[float] | None = None

    def add(self, ms: float) -> None:
        self._samples.append(ms)
        self._sorted = None

    def __len__(self) -> int:
        return len(self._samples)

    def quantile(self, q: float) -> float | None:
        if not self._samples:
            return None
        if self._sorted is None:
            self._sorted = sorted(self._samples)
        idx = min(len(self._sorted) - 1, max(0, int(q * len(self._sorted) + 0.5) - 1))
        return self._sorted[idx]


class Race(Generic[T]):
    """Run ``primary``; after ``delay_s`` without an answer, ``backup()`` may start a second attempt (it returns
    ``None`` when no hedge is possible). The first attempt to *succeed* wins; the other is cancelled, or, if it
    succeeded too, handed to ``discard`` (e.g. to close its stream). If both fail, the primary's error is raised
    (the backup's is in ``errors``)."""

    def __init__(self, primary: Awaitable[T], backup: Callable[[], Awaitable[T] | None], delay_s: float,
                 discard: Callable[[T], Awaitable[None]]) -> None:
        self._primary = primary
        self._backup = backup
        self.delay_s = delay_s
        self._discard = discard
        self.hedged = False
        self.winner: str | None = None
        self.errors: list[BaseException] = []

    async def run(self) -> T:
        first = asyncio.ensure_future(self._primary)
        try:
            done, _ = await asyncio.wait({first}, timeout=max(0.0, self.delay_s))
            if done:
                self.winner = "primary"
                return first.result()
            coro = self._backup()
            if coro is None:
                self.winner = "primary"
                return await first
            self.hedged = True
            second = asyncio.ensure_future(coro)
            return await self._settle({first: "primary", second: "hedge"})
        finally:
            if not first.done():
                first.cancel()
                with contextlib.suppress(BaseException):
                    await first

    async def _settle(self, running: dict[asyncio.Future[T], str]) -> T:
        pending = set(running)
        failures: dict[str, BaseException] = {}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                winners = [f for f in done if not f.cancelled() and f.exception() is None]
                for f in done:
                    if f not in winners:
                        failures[running[f]] = (f.exception() if not f.cancelled() else None) or asyncio.CancelledError()
                if winners:
                    win = winners[0]
                    for extra in winners[1:]:
                        await self._discard(extra.result())
                    self.winner = running[win]
                    return win.result()
            self.errors = list(failures.values())
            raise failures.get("primary") or next(iter(failures.values()))
        finally:
            for f in pending:
                f.cancel()
            for f in pending:
                with contextlib.suppress(BaseException):
                    res = await f
                    await self._discard(res)
