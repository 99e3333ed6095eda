"""Circuit breakers per endpoint: closed -> open -> half-open -> closed, optionally shared through Redis.

- **closed**: calls pass; outcomes go into a sliding window of ``window_s``. When at least ``min_calls`` are in the
  window and ``failure_rate`` of them failed, the breaker **opens**.
- **open**: calls are refused (the executor skips the endpoint, no request is sent) until ``open_s`` has passed.
- **half-open**: up to ``half_open_probes`` trial calls pass. A good one closes the breaker (window cleared); a failed
  one opens it again for another ``open_s``.

The hot path never waits on Redis. With ``reliability.redis_url`` set, :class:`fedinf.routing.sync.RedisStateSync`
runs in the background every :data:`SYNC_INTERVAL_S`: it adds this process's call/failure counts to shared
per-window counters, publishes an ``open_until`` when a breaker opened here, and adopts (:meth:`CircuitBreaker.adopt`)
the ones opened by other gateway processes and the shared failure rate. Redis being down only means breakers are
local for a while (logged, never a request error). Times shared through Redis are wall-clock (``time.time()``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from fedinf.config import Breaker as BreakerPolicy

log = logging.getLogger("fedinf.breaker")

State = Literal["closed", "open", "half_open"]
STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}
SYNC_INTERVAL_S = 0.25


class CircuitBreaker:
    """One endpoint's breaker. ``clock`` is wall-clock seconds (shared meaning across processes)."""

    def __init__(self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.state: State = "closed"
        self.open_until = 0.0
        self.opened = 0
        self.probes = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures in _window, kept in step with it: record stays O(1) at any request rate
        self.pending_calls = 0
        self.pending_failures = 0
        self.publish_open_until: float | None = None
        self.closed_at = 0.0

    # ------------------------------------------------------------------ hot path

    def available(self) -> bool:
        """Whether a call could be let through now (no state change)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return self.clock() >= self.open_until
        return self.probes < self.policy.half_open_probes

    def acquire(self) -> str | None:
        """Ask to make one call: ``"call"`` (closed), ``"probe"`` (half-open trial) or ``None`` (refused)."""
        if self.state == "open" and self.clock() >= self.open_until:
            self.state, self.probes = "half_open", 0
        if self.state == "closed":
            return "call"
        if self.state == "half_open" and self.probes < self.policy.half_open_probes:
            self.probes += 1
            return "probe"
        return None

    def record(self, permit: str | None, ok: bool) -> None:
        """Record the outcome of a call made under ``permit`` (from :meth:`acquire`)."""
        now = self.clock()
        self.pending_calls += 1
        self.pending_failures += 0 if ok else 1
        if permit == "probe":
            self.probes = max(0, self.probes - 1)
            if self.state != "half_open":
                return
            if ok:
                self._close()
            else:
                self._open(now)
            return
        if self.state != "closed":
            return
        self._window.append((now, ok))
        self._failures += 0 if ok else 1
        self._trim(now)
        calls, failures = len(self._window), self._failures
        if calls >= self.policy.min_calls and failures >= self.policy.failure_rate * calls:
            self._open(now)

    def release(self, permit: str | None) -> None:
        """Give back a permit whose call never reached the endpoint (e.g. cancelled before sending)."""
        if permit == "probe":
            self.probes = max(0, self.probes - 1)

    # ------------------------------------------------------------------ transitions

    def _trim(self, now: float) -> None:
        horizon = now - self.policy.window_s
        while self._window and self._window[0][0] < horizon:
            _, good = self._window.popleft()
            self._failures -= 0 if good else 1

    def _clear_window(self) -> None:
        self._window.clear()
        self._failures = 0

    def _open(self, now: float, until: float | None = None) -> None:
        self.state = "open"
        self.open_until = until if until is not None else now + self.policy.open_s
        self.opened += 1
        self.probes = 0
        self._clear_window()
        self.publish_open_until = self.open_until
        log.warning("circuit breaker for %s opened until %.3f", self.name, self.open_until)

    def _close(self) -> None:
        self.state = "closed"
        self.closed_at = self.clock()
        self.probes = 0
        self._clear_window()
        log.info("circuit breaker for %s closed", self.name)

    def view(self) -> State:
        """The state as a caller sees it now (an open breaker past its time reads as half-open)."""
        if self.state == "open" and self.clock() >= self.open_until:
            return "half_open"
        return self.state

    # ------------------------------------------------------------------ shared state

    def adopt(self, remote_open_until: float | None, calls: int, failures: int) -> None:
        """Merge what other processes reported (called by the sync loop)."""
        now = self.clock()
        if remote_open_until is not None and remote_open_until > now and remote_open_until > self.open_until + 1e-3:
            self.state, self.open_until, self.probes = "open", remote_open_until, 0
            self._clear_window()
            return
        if self.state != "closed" or now - self.closed_at < 2 * self.policy.window_s:
            return  # counts from before the last close are still in the shared window
        if calls >= self.policy.min_calls and failures >= self.policy.failure_rate * calls:
            self._open(now)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.view(), "opened": self.opened,
                "open_for_s": round(max(0.0, self.open_until - self.clock()), 3) if self.state == "open" else 0.0}
