"""Exact (brute-force) vector search over one collection's chunk vectors, held in memory as one float32 matrix.

Vectors are unit length, so cosine similarity is one matrix-vector product; ``argpartition`` picks the top ``k``
without sorting everything. At 100k chunks x 384 dimensions that is ~150 MB and a few milliseconds per query
(bench/results/retrieval_eval.md). Exact search needs no index build and never misses a neighbour; an approximate
index (HNSW) only pays off well past the sizes measured here.

A :class:`VectorCache` keeps one matrix per collection keyed by the collection's ``generation`` (a counter every
write bumps in the store), so a process reloads a collection only after someone - any process - changed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def to_blob(vector: "NDArray[np.float32]") -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: list[bytes], dim: int) -> "NDArray[np.float32]":
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32, copy=False)


@dataclass(frozen=True, slots=True)
class VectorIndex:
    ids: "NDArray[np.int64]"
    matrix: "NDArray[np.float32]"

    def top(self, query: "NDArray[np.float32]", k: int) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` of the ``k`` nearest chunks, best first."""
        n = len(self.ids)
        if n == 0 or k <= 0:
            return []
        sims = self.matrix @ np.asarray(query, dtype=np.float32).reshape(-1)
        k = min(k, n)
        part = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
        best = part[np.argsort(-sims[part], kind="stable")]
        return [(int(self.ids[i]), float(sims[i])) for i in best]


class VectorCache:
    """Per-collection matrices, reloaded when the collection's generation changed. Thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, VectorIndex]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, generation: int,
            load: Callable[[], tuple[list[int], list[bytes], int]]) -> VectorIndex:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == generation:
                return hit[1]
            ids, blobs, dim = load()
            index = VectorIndex(np.asarray(ids, dtype=np.int64), from_blobs(blobs, dim))
            self._entries[key] = (generation, index)
            return index

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
