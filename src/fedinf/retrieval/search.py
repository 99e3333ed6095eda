"""Fusing keyword and vector candidates into one ranking.

``hybrid`` uses Reciprocal Rank Fusion (Cormack et al., SIGIR 2009): ``score = sum(1 / (k + rank))`` over the two
lists, with the usual ``k = 60``. RRF needs no score normalisation, which matters because BM25 scores are unbounded
and cosine similarities are not comparable to them. ``bm25`` and ``vector`` return one list alone (the scores are
the engine's BM25 score and the cosine similarity).
"""

from __future__ import annotations

from dataclasses import dataclass

RRF_K = 60


@dataclass(frozen=True, slots=True)
class Ranked:
    id: int
    score: float
    bm25_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None


def fuse(keyword: list[tuple[int, float]], vector: list[tuple[int, float]], *, mode: str, limit: int,
         rrf_k: int = RRF_K) -> list[Ranked]:
    """The top ``limit`` chunk ids for ``mode`` (``hybrid``, ``bm25`` or ``vector``), best first; ties keep the
    order of the lists (keyword first)."""
    k_rank = {cid: i + 1 for i, (cid, _) in enumerate(keyword)}
    v_rank = {cid: i + 1 for i, (cid, _) in enumerate(vector)}
    sims = dict(vector)
    if mode == "bm25":
        return [Ranked(cid, s, k_rank[cid], v_rank.get(cid), sims.get(cid)) for cid, s in keyword[:limit]]
    if mode == "vector":
        return [Ranked(cid, s, k_rank.get(cid), v_rank[cid], s) for cid, s in vector[:limit]]
    scores: dict[int, float] = {}
    for ranks in (k_rank, v_rank):
        for cid, r in ranks.items():
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (rrf_k + r)
    best = sorted(scores, key=lambda c: -scores[c])[:limit]
    return [Ranked(c, scores[c], k_rank.get(c), v_rank.get(c), sims.get(c)) for c in best]
