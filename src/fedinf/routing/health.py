"""Endpoint health: passive outlier detection (ejection) and active health checks (a background task).

Outlier detection (Envoy's): after ``consecutive_failures`` failed calls in a row a replica is *ejected* for
``base_ejection_s * 2**(n-1)`` (n = how many times it was ejected, capped at ``max_ejection_s``); it comes back by
itself when that time passes. A model never has more than ``max_ejected_share`` of its replicas ejected (one may
always be ejected when it has two or more), so outlier detection alone cannot take a model down. The ejection count
is forgotten once the replica has served well for a base ejection time after coming back.

Active checks: :class:`HealthMonitor` probes every endpoint's ``backend.health()`` every ``health_interval_s``;
``unhealthy_after`` failed probes in a row mark it unhealthy, one good probe marks it healthy again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fedinf.config import OutlierDetection

log = logging.getLogger("fedinf.health")


@dataclass(slots=True)
class OutlierState:
    """Passive health of one replica."""

    consecutive_failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    returned_at: float = 0.0
    publish: bool = False  # ejected here since the last shared-state sync (fedinf.routing.sync)

    def ejected(self, now: float) -> bool:
        return now < self.ejected_until

    def record(self, ok: bool, now: float, policy: OutlierDetection, may_eject: Callable[[], bool]) -> bool:
        """Record one call's outcome; return True when this call ejected the replica."""
        if ok:
            self.consecutive_failures = 0
            if self.ejections and self.returned_at and now - self.returned_at >= policy.base_ejection_s:
                self.ejections = 0
            return False
        self.consecutive_failures += 1
        if self.consecutive_failures < policy.consecutive_failures or self.ejected(now) or not may_eject():
            return False
        self.ejections += 1
        duration = min(policy.max_ejection_s, policy.base_ejection_s * 2 ** (self.ejections - 1))
        self.ejected_until = now + duration
        self.returned_at = self.ejected_until
        self.consecutive_failures = 0
        self.publish = True
        return True

    def adopt(self, until: float, ejections: int) -> None:
        """Take an ejection decided by another gateway process (``until`` in this process's clock)."""
        self.ejected_until = self.returned_at = until
        self.ejections = max(self.ejections, ejections)
        self.consecutive_failures = 0


def may_eject(states: Sequence[OutlierState], now: float, max_share: float) -> bool:
    """Whether one more replica of a model with these ``states`` may be ejected."""
    n = len(states)
    if n < 2:
        return False
    ejected = sum(1 for s in states if s.ejected(now))
    allowed = max(1, int(max_share * n))
    return ejected + 1 <= allowed and ejected + 1 < n


@dataclass(slots=True)
class ProbeState:
    """Active health of one replica."""

    healthy: bool = True
    last_ok: bool = True
    failed_probes: int = 0
    last_probe: float = 0.0
    last_error: str | None = None

    def record(self, ok: bool, now: float, unhealthy_after: int, error: str | None = None) -> None:
        self.last_probe = now
        self.last_ok = ok
        if ok:
            self.failed_probes, self.healthy, self.last_error = 0, True, None
            return
        self.failed_probes += 1
        self.last_error = error
        if self.failed_probes >= unhealthy_after:
            self.healthy = False


class HealthMonitor:
    """Runs ``probe_all`` every ``interval_s`` seconds in the background until :meth:`stop`."""

    def __init__(self, probe_all: Callable[[], Awaitable[object]], interval_s: float) -> None:
        self._probe_all = probe_all
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.interval_s > 0 and not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="fedinf-health")

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._probe_all()
                self.rounds += 1
            except Exception as exc:  # a failing round must never stop the monitor
                log.warning("health check round failed: %r", exc)
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
