"""Retrieval evaluation: quality on PubMedQA-L, and speed of the stores at 10k and 100k chunks.

    python bench/retrieval_eval/run.py            # full: 1000 PubMedQA questions; scale at 10k and 100k chunks
    CI=true python bench/retrieval_eval/run.py    # CI subsample: the first 150 items (sorted by PMID); 10k only

Quality: the corpus is PubMedQA-L's abstracts (one document per item: its CONTEXTS paragraphs joined), ingested
through the real service (classified, chunked, embedded with all-MiniLM-L6-v2 in process, SQLite store). Each
QUESTION's relevant document is its own item (the set's README: one relevant document per query). Hits are chunks;
they are reduced to documents in rank order, then recall@5, recall@10 and MRR@10 are computed over documents.
The three modes - hybrid (BM25 + vectors, RRF), BM25 alone, vectors alone - search the same index in the same run.

Scale: synthetic chunks (words drawn Zipf-like from the PubMedQA vocabulary, ~80 words each, 5 chunks per document;
random unit vectors, so the store is timed, not the model) written through the store's ``add_document`` (docs/s and
chunks/s), then 200 queries (100 in CI) of 6 words taken from random chunks through ``Retrieval.search`` with the
hashing embedder (query p50/p99 ms per mode), on the SQLite store and the PostgreSQL store. Exact vector search in
numpy is compared with sqlite-vec's ``vec0`` (brute force KNN in SQLite) on the same vectors, in a throwaway venv
(``apsw`` + ``sqlite-vec``: this Python's ``sqlite3`` cannot load extensions).

Data: ``$FEDINF_DATA_DIR/rag/pubmedqa_pqal`` (default ``../shared/data`` from the repo root), read in place.
Writes ``bench/results/retrieval_eval.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common.results import header, table, write  # noqa: E402
from bench.common.stats import percentile  # noqa: E402
from fedinf.privacy import Classifier  # noqa: E402
from fedinf.retrieval import ChunkText, DocumentInfo, HashingEmbedder, LocalEmbedder, Retrieval  # noqa: E402
from fedinf.retrieval.store import open_store  # noqa: E402
from fedinf.data_class import DataClass  # noqa: E402

CI = os.environ.get("CI") == "true"
DATA = Path(os.environ.get("FEDINF_DATA_DIR") or ROOT.parent / "shared" / "data") / "rag" / "pubmedqa_pqal"
MODES = ("hybrid", "bm25", "vector")
PG_DSNS = [os.environ.get("FEDINF_TEST_PG_DSN", ""), "postgresql://postgres@127.0.0.1:5432/test",
           "postgresql://root@127.0.0.1:5432/test"]


def load_items(limit: int | None) -> list[tuple[str, str, str]]:
    """(pmid, question, document text), sorted by PMID, the first ``limit``."""
    raw = json.loads((DATA / "ori_pqal.json").read_text())
    items = [(pmid, v["QUESTION"], "\n\n".join(v["CONTEXTS"])) for pmid, v in sorted(raw.items())]
    return items[:limit] if limit else items


# ---------------------------------------------------------------------------------------------- quality

async def quality(items: list[tuple[str, str, str]], workdir: Path) -> dict[str, Any]:
    embedder = LocalEmbedder()
    t0 = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - t0
    rt = Retrieval(store=open_store(f"sqlite:///{workdir}/quality.db"), embedder=embedder,
                   classifier=Classifier.from_config())
    await rt.create_collection("pubmedqa")
    t0 = time.perf_counter()
    ids: dict[str, str] = {}
    for pmid, _, text in items:
        added = await rt.add_text("pubmedqa", text, name=pmid)
        ids[added.document.id] = pmid
    ingest_s = time.perf_counter() - t0
    chunks = (await rt.get_collection("pubmedqa")).chunks
    out: dict[str, Any] = {"docs": len(items), "chunks": chunks, "load_s": load_s, "ingest_s": ingest_s, "modes": {}}
    for mode in MODES:
        ranks, lat = [], []
        for pmid, question, _ in items:
            t = time.perf_counter()
            res = await rt.search("pubmedqa", question, k=30, mode=mode)
            lat.append((time.perf_counter() - t) * 1000)
            docs = list(dict.fromkeys(ids[h.document_id] for h in res.hits))
            ranks.append(docs.index(pmid) + 1 if pmid in docs else None)
        n = len(ranks)
        out["modes"][mode] = {
            "recall@5": sum(1 for r in ranks if r and r <= 5) / n, "recall@10": sum(1 for r in ranks if r and r <= 10) / n,
            "mrr@10": sum(1 / r for r in ranks if r and r <= 10) / n, "p50": percentile(lat, 50),
            "p99": percentile(lat, 99)}
    await rt.aclose()
    return out


# ---------------------------------------------------------------------------------------------- scale

def vocabulary(items: list[tuple[str, str, str]]) -> list[str]:
    import re
    from collections import Counter

    counts = Counter(w.lower() for _, _, t in items for w in re.findall(r"[A-Za-z]{3,}", t))
    return [w for w, _ in counts.most_common(20000)]


def synthetic(n_chunks: int, vocab: list[str], seed: int = 7) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    words = rng.choice(len(vocab), size=(n_chunks, 80), p=weights)
    texts = [" ".join(vocab[i] for i in row) for row in words]
    vecs = rng.standard_normal((n_chunks, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs


def fill(store: Any, texts: list[str], vecs: np.ndarray, per_doc: int = 5) -> float:
    """Write the chunks as documents of ``per_doc`` chunks through the store; seconds taken."""
    t0 = time.perf_counter()
    for d in range(0, len(texts), per_doc):
        chunks, pos = [], 0
        for i, t in enumerate(texts[d:d + per_doc]):
            chunks.append(ChunkText(index=i, start=pos, end=pos + len(t), page=1, text=t))
            pos += len(t) + 2
        doc = DocumentInfo(id=f"doc-{d:08d}", collection="scale", name=f"synthetic-{d}.txt", kind="text",
                           sha256=uuid.uuid4().hex, size_bytes=pos, data_class=DataClass.PUBLIC, chunks=len(chunks))
        store.add_document(doc, chunks, vecs[d:d + per_doc])
    return time.perf_counter() - t0


def word_queries(texts: list[str], n: int, count: int) -> list[str]:
    """``count`` queries of 6 consecutive words from random chunks among the first ``n``."""
    rng = np.random.default_rng(11)
    out = []
    for i in rng.integers(0, n, count):
        words = texts[int(i)].split()
        start = int(rng.integers(0, len(words) - 6))
        out.append(" ".join(words[start:start + 6]))
    return out


async def scale_one(store: Any, n: int, texts: list[str], vecs: np.ndarray, n_queries: int) -> dict[str, Any]:
    rt = Retrieval(store=store, embedder=HashingEmbedder(384), classifier=Classifier.from_config())
    await rt.create_collection("scale")
    secs = fill(store, texts[:n], vecs[:n])
    queries = word_queries(texts, n, n_queries)
    out: dict[str, Any] = {"ingest_s": secs, "docs_per_s": n / 5 / secs, "chunks_per_s": n / secs}
    await rt.search("scale", queries[0], k=10, mode="vector")  # load the vector matrix once (reported separately)
    for mode in MODES:
        lat = []
        for q in queries:
            t = time.perf_counter()
            await rt.search("scale", q, k=10, mode=mode)
            lat.append((time.perf_counter() - t) * 1000)
        out[mode] = (percentile(lat, 50), percentile(lat, 99))
    await rt.aclose()
    return out


def pg_dsn() -> str | None:
    try:
        import psycopg
    except ImportError:
        return None
    for dsn in filter(None, PG_DSNS):
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            return dsn
        except Exception:  # noqa: BLE001 - try the next one
            continue
    return None


async def scale(sizes: list[int], vocab: list[str], workdir: Path, n_queries: int) -> dict[str, Any]:
    texts, vecs = synthetic(max(sizes), vocab)
    results: dict[str, Any] = {}
    dsn = pg_dsn()
    for n in sizes:
        results[("sqlite", n)] = await scale_one(open_store(f"sqlite:///{workdir}/scale-{n}.db"), n, texts, vecs,
                                                 n_queries)
        print(f"  sqlite {n}: {results[('sqlite', n)]}", flush=True)
        if dsn is not None:
            schema = f"bench_rt_{uuid.uuid4().hex[:8]}"
            try:
                results[("postgresql", n)] = await scale_one(open_store(dsn, schema=schema), n, texts, vecs, n_queries)
                print(f"  postgresql {n}: {results[('postgresql', n)]}", flush=True)
            finally:
                import psycopg
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    results["vec_peer"] = vec_peer(sizes, vecs, workdir, texts, word_queries(texts, min(sizes), n_queries))
    return results


# ---------------------------------------------------------------------------------------------- sqlite-vec peer

PEER = r'''
import json, sys, time
import apsw, numpy as np, sqlite_vec
vecs = np.load(sys.argv[1]); queries = np.load(sys.argv[2]); sizes = json.loads(sys.argv[3]); out = {}
for n in sizes:
    db = apsw.Connection(":memory:"); db.enable_load_extension(True); db.load_extension(sqlite_vec.loadable_path())
    db.execute("CREATE VIRTUAL TABLE v USING vec0(embedding float[384] distance_metric=cosine)")
    t = time.perf_counter()
    with db:
        db.executemany("INSERT INTO v(rowid, embedding) VALUES (?, ?)", ((i + 1, vecs[i].tobytes()) for i in range(n)))
    ins = time.perf_counter() - t
    lat = []
    for q in queries:
        t = time.perf_counter()
        rows = list(db.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 10", (q.tobytes(),)))
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    out[str(n)] = {"insert_per_s": n / ins, "p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * .99))]}
print(json.dumps(out))
'''


PEER_LANCE = r'''
import json, sys, tempfile, time
import lancedb, numpy as np, pyarrow as pa
vecs = np.load(sys.argv[1]); queries = np.load(sys.argv[2]); sizes = json.loads(sys.argv[3])
texts = json.load(open(sys.argv[4])); words = json.load(open(sys.argv[5])); out = {}

def pct(lat, q):
    lat = sorted(lat); return lat[min(len(lat) - 1, int(len(lat) * q))]

for n in sizes:
    db = lancedb.connect(tempfile.mkdtemp())
    t = time.perf_counter()
    table = pa.table({"id": pa.array(range(n)), "text": pa.array(texts[:n]),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[:n].ravel()), 384)})
    tb = db.create_table("t", data=table)
    tb.create_fts_index("text")
    ins = time.perf_counter() - t
    vl, fl = [], []
    for q in queries:
        t = time.perf_counter(); tb.search(q).metric("cosine").limit(10).to_arrow(); vl.append((time.perf_counter() - t) * 1000)
    for w in words:
        t = time.perf_counter(); tb.search(w, query_type="fts").limit(10).to_arrow(); fl.append((time.perf_counter() - t) * 1000)
    out[str(n)] = {"insert_per_s": n / ins, "vector": [pct(vl, .5), pct(vl, .99)], "fts": [pct(fl, .5), pct(fl, .99)]}
print(json.dumps(out))
'''


def run_peer(name: str, requirements: list[str], script: str, args: list[str]) -> dict[str, Any] | str:
    """Run ``script`` in the throwaway venv ``name``; its JSON output, or why it is missing."""
    try:
        from bench.common.venvs import ensure_venv

        bin_dir = ensure_venv(name, requirements)
        done = subprocess.run([str(bin_dir / "python"), "-c", script, *args], capture_output=True, text=True,
                              timeout=1200)
        if done.returncode != 0:
            return f"failed: {done.stderr.strip()[-300:]}"
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    except Exception as exc:  # noqa: BLE001 - a peer is optional; say why it is missing
        return f"not measured: {exc}"


def vec_peer(sizes: list[int], vecs: np.ndarray, workdir: Path, texts: list[str],
             words: list[str]) -> dict[str, Any]:
    """numpy exact top-10 (what the stores do) vs sqlite-vec vec0 KNN and LanceDB (flat vector search and its
    full-text index), same vectors, texts and queries."""
    rng = np.random.default_rng(3)
    queries = vecs[rng.integers(0, max(sizes), 100)] + 0.01
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    from fedinf.retrieval.vectors import VectorIndex

    mine: dict[str, Any] = {}
    for n in sizes:
        index = VectorIndex(np.arange(n, dtype=np.int64), vecs[:n])
        lat = []
        for q in queries:
            t = time.perf_counter()
            index.top(q, 10)
            lat.append((time.perf_counter() - t) * 1000)
        mine[str(n)] = {"p50": percentile(lat, 50), "p99": percentile(lat, 99)}
    np.save(workdir / "v.npy", vecs[:max(sizes)])
    np.save(workdir / "q.npy", queries)
    (workdir / "t.json").write_text(json.dumps(texts[:max(sizes)]))
    (workdir / "w.json").write_text(json.dumps(words))
    args = [str(workdir / "v.npy"), str(workdir / "q.npy"), json.dumps(sizes)]
    return {"numpy": mine,
            "sqlite_vec": run_peer("sqlite-vec", ["apsw==3.54.1.0", "sqlite-vec==0.1.9", "numpy"], PEER, args),
            "lancedb": run_peer("lancedb", ["lancedb==0.40.0", "numpy"], PEER_LANCE,
                                args + [str(workdir / "t.json"), str(workdir / "w.json")])}


# ---------------------------------------------------------------------------------------------- report

def report(q: dict[str, Any], s: dict[str, Any], sizes: list[int], n_queries: int) -> str:
    mode = "CI subsample (first 150 PubMedQA-L items by PMID; 10k chunks)" if CI else \
        "full (1000 PubMedQA-L items; 10k and 100k chunks)"
    parts = [header("Retrieval evaluation (bench/retrieval_eval)", mode=mode), "",
             "## Quality: PubMedQA-L questions -> their own abstract", "",
             f"{q['docs']} documents ({q['chunks']} chunks of <= 1000 characters), {q['docs']} queries (each item's "
             "QUESTION); one relevant document per query; hits reduced to documents in rank order. Embedder: "
             "all-MiniLM-L6-v2 in process (torch CPU); store: SQLite (FTS5 BM25 + exact vectors).", ""]
    m = q["modes"]
    rows = [[mode_, f"{v['recall@5']:.3f}", f"{v['recall@10']:.3f}", f"{v['mrr@10']:.3f}",
             f"{v['recall@5'] / m['bm25']['recall@5']:.3f}", f"{v['p50']:.1f}", f"{v['p99']:.1f}"]
            for mode_, v in m.items()]
    parts += [table(["mode", "recall@5", "recall@10", "MRR@10", "recall@5 vs BM25", "query p50 ms", "query p99 ms"],
                    rows), "",
              f"Model load {q['load_s']:.1f} s; ingest (parse, classify, chunk, embed, store) {q['ingest_s']:.1f} s = "
              f"{q['docs'] / q['ingest_s']:.1f} docs/s, {q['chunks'] / q['ingest_s']:.1f} chunks/s (the embedding "
              "model dominates). Query latency includes embedding the question (vector and hybrid modes).", "",
              "## Scale: synthetic chunks, store speed", "",
              f"~80-word chunks, 5 per document, random unit vectors (the store is timed, not the model); "
              f"{n_queries} queries of 6 words from random chunks, k=10, through `Retrieval.search` with the hashing "
              "embedder.", ""]
    rows = []
    for (store, n), v in sorted(((k, v) for k, v in s.items() if isinstance(k, tuple)), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append([store, f"{n:,}", f"{v['docs_per_s']:.0f}", f"{v['chunks_per_s']:.0f}",
                     *[f"{v[md][0]:.1f} / {v[md][1]:.1f}" for md in MODES]])
    parts += [table(["store", "chunks", "ingest docs/s", "chunks/s", "hybrid p50/p99 ms", "bm25 p50/p99 ms",
                     "vector p50/p99 ms"], rows), ""]
    parts += peer_report(s["vec_peer"], s)
    return "\n".join(parts) + "\n"


def _pair(v: Any) -> str:
    return f"{v[0]:.2f} / {v[1]:.2f}"


def peer_report(peer: dict[str, Any], s: dict[str, Any]) -> list[str]:
    out = ["### The choice: numpy exact search vs sqlite-vec and LanceDB (peers, same vectors, texts and queries)", "",
           "Exact top-10 by cosine over the same unit vectors (sqlite-vec `vec0` brute-force KNN through apsw; "
           "LanceDB flat search without an ANN index), and full-text top-10 for the same 6-word queries (LanceDB's "
           "FTS index vs this store's SQLite FTS5 BM25 through `Retrieval.search`, which also reads the hit rows). "
           "Each peer runs in a throwaway venv (bench/.venvs). p50 / p99 ms; ratio = peer p50 / fedinf p50.", ""]
    sv, ld = peer["sqlite_vec"], peer["lancedb"]
    rows = []
    for n, mine in peer["numpy"].items():
        row: list[object] = [f"{int(n):,}", _pair((mine["p50"], mine["p99"]))]
        for p in (sv, ld):
            if isinstance(p, dict) and n in p:
                v = p[n] if p is sv else {"p50": p[n]["vector"][0], "p99": p[n]["vector"][1]}
                row += [_pair((v["p50"], v["p99"])), f"{v['p50'] / mine['p50']:.1f}x"]
            else:
                row += ["-", "-"]
        rows.append(row)
    out += [table(["vectors", "numpy (fedinf)", "sqlite-vec", "ratio", "LanceDB flat", "ratio"], rows), ""]
    if isinstance(ld, dict):
        rows = []
        for n, v in ld.items():
            mine = s.get(("sqlite", int(n)))
            if mine:
                rows.append([f"{int(n):,}", _pair(mine["bm25"]), _pair(v["fts"]), f"{v['fts'][0] / mine['bm25'][0]:.1f}x",
                             f"{mine['chunks_per_s']:.0f}", f"{v['insert_per_s']:.0f}"])
        out += [table(["chunks", "SQLite FTS5 (fedinf) ms", "LanceDB FTS ms", "ratio", "fedinf store chunks/s",
                       "LanceDB insert+index chunks/s"], rows), ""]
    for name, p in (("sqlite-vec", sv), ("LanceDB", ld)):
        if not isinstance(p, dict):
            out.append(f"{name}: {p}")
    return out


async def main() -> None:
    if not (DATA / "ori_pqal.json").is_file():
        raise SystemExit(f"PubMedQA-L not found under {DATA} (set FEDINF_DATA_DIR)")
    items = load_items(150 if CI else None)
    sizes = [10_000] if CI else [10_000, 100_000]
    n_queries = 100 if CI else 200
    with tempfile.TemporaryDirectory(prefix="fedinf-rt-bench-") as tmp:
        t0 = time.perf_counter()
        q = await quality(items, Path(tmp))
        print(f"quality done in {time.perf_counter() - t0:.0f}s: {q['modes']}", flush=True)
        s = await scale(sizes, vocabulary(load_items(None)), Path(tmp), n_queries)
    path = write("retrieval_eval", report(q, s, sizes, n_queries))
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
