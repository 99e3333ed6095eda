"""The backend pool: one backend instance per endpoint (replica) of every servable model.

The pool owns backend lifecycles (lazy creation, close at shutdown) and answers "which replicas of model M, in what
order should they be tried". The ordering here is plain weighted round robin; :mod:`fedinf.routing` strategies and
health tracking refine it without changing this interface.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from fedinf.backends import Backend, create_backend
from fedinf.config import Endpoint
from fedinf.network import Network

log = logging.getLogger("fedinf.pool")


@dataclass
class Replica:
    model_id: str
    name: str
    endpoint: Endpoint | None
    backend: Backend
    weight: float = 1.0
    healthy: bool = True


@dataclass
class BackendPool:
    network: Network
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    _rr: dict[str, itertools.count] = field(default_factory=dict)

    @classmethod
    def build(cls, network: Network) -> "BackendPool":
        pool = cls(network=network)
        for mid, entry in network.models.items():
            if not entry.license.allowed:
                continue  # never instantiate what may never be served
            endpoints: list[Endpoint | None] = list(entry.spec.endpoints) or [None]
            reps = []
            for i, ep in enumerate(endpoints):
                name = (ep.name if ep and ep.name else (ep.url if ep and ep.url else f"{mid}#{i}"))
                reps.append(Replica(mid, name, ep, create_backend(entry.spec, ep), ep.weight if ep else 1.0))
            pool.replicas[mid] = reps
            pool._rr[mid] = itertools.count()
        return pool

    def order(self, model_id: str) -> list[Replica]:
        """Replicas of ``model_id`` in the order to try them: healthy first, rotated round robin."""
        reps = self.replicas.get(model_id, [])
        if len(reps) <= 1:
            return list(reps)
        start = next(self._rr[model_id]) % len(reps)
        rotated = reps[start:] + reps[:start]
        return sorted(rotated, key=lambda r: not r.healthy)

    async def health(self) -> dict[str, dict[str, bool]]:
        """Probe every replica concurrently; update and return ``{model: {replica: healthy}}``."""
        async def probe(rep: Replica) -> None:
            try:
                rep.healthy = bool(await asyncio.wait_for(rep.backend.health(), timeout=5.0))
            except Exception as exc:  # a probe failure is a health result, never a crash
                log.debug("health probe of %s failed: %r", rep.name, exc)
                rep.healthy = False

        all_reps = [r for reps in self.replicas.values() for r in reps]
        await asyncio.gather(*(probe(r) for r in all_reps))
        return {mid: {r.name: r.healthy for r in reps} for mid, reps in self.replicas.items()}

    async def aclose(self) -> None:
        for reps in self.replicas.values():
            for rep in reps:
                try:
                    await rep.backend.aclose()
                except Exception as exc:  # closing must not stop closing the others
                    log.warning("closing %s failed: %r", rep.name, exc)
