"""Embeddings from models of the network (backends with the ``embeddings`` capability), inside the eligible set.

:func:`embed_remote` is the one way text reaches a remote embedding model: the texts are classified first (on-prem,
with the gateway's classifier), the class is the highest of that and the caller's floor, and :func:`decide` computes
the eligible set exactly as for chat (zone clearance, license, the principal's scopes, the ``embeddings``
capability). Only eligible targets are tried, in the decision's order, each target's replicas in pool order; when none
is eligible the call is refused (fail closed) before any byte leaves the process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fedinf.data_class import DataClass
from fedinf.errors import AllTargetsFailed, BackendError, ConfigError
from fedinf.retrieval.embeddings import normalize
from fedinf.routing.decide import Decision, Needs, decide

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fedinf.routing.executor import Attempt

BATCH = 64


@dataclass
class RemoteEmbedding:
    """The outcome of one remote embedding call: OpenAI-shaped ``data`` rows, usage, and what was decided/tried."""

    data: list[list[float]]
    usage: dict[str, int]
    classification: Any
    decision: Decision
    model: str = ""
    zone: str = ""
    replica: str = ""
    attempts: list["Attempt"] = field(default_factory=list)


async def embed_remote(gateway: Any, requested: str, texts: Sequence[str], *, principal: Any = None,
                       data_class: DataClass = DataClass.PUBLIC, classification: Any = None,
                       request_id: str | None = None, deadline_s: float = 60.0) -> RemoteEmbedding:
    """Embed ``texts`` with the model or route ``requested`` (see the module docstring)."""
    from fedinf.backends.base import CallContext
    from fedinf.routing.executor import Attempt

    if classification is None:
        classification = gateway.classifier.classify(list(texts))
    level = max(data_class, classification.data_class)
    decision = decide(requested, network=gateway.network, data_class=level, principal=principal,
                      needs=Needs(embeddings=True))
    attempts: list[Attempt] = []
    failures: list[tuple[str, Any]] = []
    deadline = time.monotonic() + deadline_s
    for target in decision.targets:
        entry = gateway.network.models[target.model_id]
        for rep in gateway.pool.order(target.model_id):
            started = time.monotonic()
            ctx = CallContext(request_id=request_id or uuid.uuid4().hex, deadline=deadline,
                              upstream_model=entry.spec.upstream_model or entry.spec.id)
            try:
                rows, usage = await _batches(rep.backend, texts, ctx)
            except BackendError as exc:
                attempts.append(Attempt(target.model_id, target.zone, rep.name, exc.code,
                                        (time.monotonic() - started) * 1000))
                failures.append((f"{target.model_id}@{rep.name}", exc))
                continue
            attempts.append(Attempt(target.model_id, target.zone, rep.name, "ok", (time.monotonic() - started) * 1000))
            return RemoteEmbedding(rows, usage, classification, decision, target.model_id, target.zone, rep.name,
                                   attempts)
    raise AllTargetsFailed(f"every eligible embedding model failed for {requested!r}", failures=failures)


async def _batches(backend: Any, texts: Sequence[str], ctx: Any) -> tuple[list[list[float]], dict[str, int]]:
    rows: list[list[float]] = []
    tokens = 0
    for i in range(0, len(texts), BATCH):
        out = await backend.embed(list(texts[i:i + BATCH]), ctx)
        data = sorted(out["data"], key=lambda d: d.get("index", 0))
        if len(data) != len(texts[i:i + BATCH]):
            from fedinf.backends.http import bad_response
            raise bad_response(str(ctx.upstream_model), "answered a different number of embeddings than inputs")
        rows += [list(map(float, d["embedding"])) for d in data]
        tokens += int((out.get("usage") or {}).get("prompt_tokens") or 0)
    return rows, {"prompt_tokens": tokens, "total_tokens": tokens}


class RemoteEmbedder:
    """An :class:`~fedinf.retrieval.embeddings.Embedder` backed by :func:`embed_remote`. ``dim`` is learnt from the
    first answer (0 before it)."""

    def __init__(self, requested: str, *, gateway: Any) -> None:
        if gateway is None:
            raise ConfigError(f"retrieval.embedder {requested!r} names a model: it needs a gateway (use `local` or "
                              "`hashing` for offline tools)")
        self.requested = requested
        self.gateway = gateway
        self.name = f"model:{requested}"
        self.dim = 0

    async def embed(self, texts: Sequence[str], *, data_class: DataClass = DataClass.PUBLIC) -> "NDArray[np.float32]":
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = await embed_remote(self.gateway, self.requested, texts, data_class=data_class)
        matrix = normalize(np.asarray(out.data, dtype=np.float32))
        if self.dim and matrix.shape[1] != self.dim:
            raise ConfigError(f"embedding model {out.model!r} answered {matrix.shape[1]} dimensions, expected "
                              f"{self.dim}: all models behind {self.requested!r} must embed alike")
        self.dim = int(matrix.shape[1])
        return matrix
