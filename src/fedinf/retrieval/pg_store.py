"""The scale-out retrieval store: PostgreSQL full-text search + vectors as ``bytea`` scored in numpy.

Debian 12's PostgreSQL 15 has no pgvector package, and the PyPI ``pgvector`` package is only a client for the server
extension. So: text search is PostgreSQL's own (a stored ``tsvector`` column, English stemming, a GIN index, ranked
with ``ts_rank_cd``; query words OR-ed like the SQLite store's BM25 query), and vectors are stored as little-endian
float32 ``bytea`` and searched exactly in numpy, with the per-collection matrix cached in each gateway process and
reloaded when the collection's ``generation`` moves (any process's write bumps it). Several gateways share one
database; all tables live in one schema (``retrieval.schema_name``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fedinf.audit.db import check_ident, pg_connect, pg_migrate
from fedinf.data_class import DataClass
from fedinf.errors import Conflict, NotFound
from fedinf.retrieval.model import ChunkText, CollectionInfo, DocumentInfo
from fedinf.retrieval.store import StoredChunk
from fedinf.retrieval.vectors import VectorCache, to_blob
from fedinf.stores import StoreUrl

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

LOCK_ID = 0x0F1E_0012
MIGRATIONS: list[tuple[int, list[str]]] = [(1, [
    """CREATE TABLE {s}.collections (cid SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, data_class INTEGER NOT NULL,
       declared_class INTEGER NOT NULL, embedder TEXT NOT NULL, dim INTEGER NOT NULL, description TEXT NOT NULL,
       owner TEXT, created_at DOUBLE PRECISION NOT NULL, generation BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE {s}.documents (id TEXT PRIMARY KEY, cid INTEGER NOT NULL REFERENCES {s}.collections(cid)
       ON DELETE CASCADE, name TEXT NOT NULL, kind TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes BIGINT NOT NULL,
       data_class INTEGER NOT NULL, chunks INTEGER NOT NULL, entities JSONB NOT NULL, metadata JSONB NOT NULL,
       created_at DOUBLE PRECISION NOT NULL, UNIQUE (cid, sha256))""",
    """CREATE TABLE {s}.chunks (id BIGSERIAL PRIMARY KEY, cid INTEGER NOT NULL, doc_id TEXT NOT NULL
       REFERENCES {s}.documents(id) ON DELETE CASCADE, idx INTEGER NOT NULL, start_off INTEGER NOT NULL,
       end_off INTEGER NOT NULL, page INTEGER NOT NULL, text TEXT NOT NULL, vector BYTEA NOT NULL,
       tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)""",
    "CREATE INDEX chunks_tsv ON {s}.chunks USING GIN (tsv)",
    "CREATE INDEX chunks_cid ON {s}.chunks (cid, id)",
    "CREATE INDEX chunks_doc ON {s}.chunks (doc_id)",
])]
_TOKEN = re.compile(r"[A-Za-z0-9]+")


def ts_query(text: str, *, max_terms: int = 64) -> str | None:
    """An OR query for ``to_tsquery`` from the words of ``text`` (only letters and digits reach the parser)."""
    terms = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(text)))[:max_terms]
    return " | ".join(terms) if terms else None


class PostgresRetrievalStore:
    """See the module docstring."""

    def __init__(self, dsn: str, *, schema: str = "fedinf_retrieval") -> None:
        self.schema = check_ident(schema)
        self._db = pg_connect(dsn)
        self._lock = threading.RLock()
        self._vectors = VectorCache()
        pg_migrate(self._db, self.schema, MIGRATIONS, lock_id=LOCK_ID)

    def _q(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql.replace("{s}", self.schema), args)

    # ------------------------------------------------------------------ collections

    def _collections(self, where: str, args: Sequence[Any]) -> list[CollectionInfo]:
        rows = self._q(
            "SELECT c.name, c.data_class, c.declared_class, c.embedder, c.dim, c.description, c.created_at, c.owner,"
            " (SELECT count(*) FROM {s}.documents d WHERE d.cid = c.cid),"
            " (SELECT count(*) FROM {s}.chunks k WHERE k.cid = c.cid) FROM {s}.collections c " + where, args).fetchall()
        return [CollectionInfo(name=r[0], data_class=DataClass(r[1]), declared_class=DataClass(r[2]), embedder=r[3],
                               dim=r[4], description=r[5], created_at=r[6], owner=r[7], documents=r[8], chunks=r[9])
                for r in rows]

    def create_collection(self, info: CollectionInfo) -> CollectionInfo:
        import psycopg

        with self._lock:
            try:
                self._q("INSERT INTO {s}.collections (name, data_class, declared_class, embedder, dim, description,"
                        " owner, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (info.name, int(info.data_class), int(info.declared_class), info.embedder, info.dim,
                         info.description, info.owner, info.created_at or time.time()))
            except psycopg.errors.UniqueViolation:
                raise Conflict(f"collection {info.name!r} already exists", param="name") from None
            return self._collections("WHERE c.name = %s", (info.name,))[0]

    def get_collection(self, name: str) -> CollectionInfo | None:
        with self._lock:
            rows = self._collections("WHERE c.name = %s", (name,))
        return rows[0] if rows else None

    def list_collections(self) -> list[CollectionInfo]:
        with self._lock:
            return self._collections("ORDER BY c.name", ())

    def _cid(self, name: str) -> tuple[int, int, int] | None:
        row = self._q("SELECT cid, generation, dim FROM {s}.collections WHERE name = %s", (name,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def delete_collection(self, name: str) -> bool:
        with self._lock:
            found = self._cid(name)
            if found is None:
                return False
            with self._db.transaction():
                self._q("DELETE FROM {s}.chunks WHERE cid = %s", (found[0],))
                self._q("DELETE FROM {s}.collections WHERE cid = %s", (found[0],))
            self._vectors.drop(str(found[0]))
            return True

    # ------------------------------------------------------------------ documents

    _DOC = ("SELECT d.id, c.name, d.name, d.kind, d.sha256, d.size_bytes, d.data_class, d.chunks, d.entities, "
            "d.metadata, d.created_at FROM {s}.documents d JOIN {s}.collections c ON c.cid = d.cid ")

    @staticmethod
    def _doc(r: Sequence[Any]) -> DocumentInfo:
        return DocumentInfo(id=r[0], collection=r[1], name=r[2], kind=r[3], sha256=r[4], size_bytes=r[5],
                            data_class=DataClass(r[6]), chunks=r[7], entities=dict(r[8]), metadata=dict(r[9]),
                            created_at=r[10])

    def find_document(self, collection: str, sha256: str) -> DocumentInfo | None:
        with self._lock:
            r = self._q(self._DOC + "WHERE c.name = %s AND d.sha256 = %s", (collection, sha256)).fetchone()
        return self._doc(r) if r else None

    def get_document(self, collection: str, document_id: str) -> DocumentInfo | None:
        with self._lock:
            r = self._q(self._DOC + "WHERE c.name = %s AND d.id = %s", (collection, document_id)).fetchone()
        return self._doc(r) if r else None

    def list_documents(self, collection: str, *, limit: int = 100, after: str | None = None) -> list[DocumentInfo]:
        with self._lock:
            rows = self._q(self._DOC + "WHERE c.name = %s AND d.id > %s ORDER BY d.id LIMIT %s",
                           (collection, after or "", limit)).fetchall()
        return [self._doc(r) for r in rows]

    def add_document(self, doc: DocumentInfo, chunks: Sequence[ChunkText],
                     vectors: "NDArray[np.float32]") -> DocumentInfo:
        with self._lock, self._db.transaction():
            row = self._q("SELECT cid FROM {s}.collections WHERE name = %s FOR UPDATE", (doc.collection,)).fetchone()
            if row is None:
                raise NotFound(f"collection {doc.collection!r} does not exist", code="collection_not_found")
            cid = row[0]
            existing = self._q(self._DOC + "WHERE d.cid = %s AND d.sha256 = %s", (cid, doc.sha256)).fetchone()
            if existing:
                return self._doc(existing)
            self._q("INSERT INTO {s}.documents VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (doc.id, cid, doc.name, doc.kind, doc.sha256, doc.size_bytes, int(doc.data_class), len(chunks),
                     json.dumps(doc.entities), json.dumps(doc.metadata, default=str), doc.created_at or time.time()))
            with self._db.cursor() as cur:
                cur.executemany(
                    self._sql("INSERT INTO {s}.chunks (cid, doc_id, idx, start_off, end_off, page, text, vector) "
                              "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"),
                    [(cid, doc.id, c.index, c.start, c.end, c.page, c.text, to_blob(v)) for c, v in zip(chunks, vectors)])
            self._q("UPDATE {s}.collections SET generation = generation + 1, data_class = GREATEST(data_class, %s) "
                    "WHERE cid = %s", (int(doc.data_class), cid))
        return DocumentInfo(**{f: getattr(doc, f) for f in DocumentInfo.__dataclass_fields__})

    def _sql(self, sql: str) -> str:
        return sql.replace("{s}", self.schema)

    def delete_document(self, collection: str, document_id: str) -> bool:
        with self._lock, self._db.transaction():
            found = self._cid(collection)
            if found is None:
                return False
            n = self._q("DELETE FROM {s}.documents WHERE id = %s AND cid = %s", (document_id, found[0])).rowcount
            self._q("UPDATE {s}.collections SET generation = generation + 1 WHERE cid = %s", (found[0],))
            return bool(n)

    # ------------------------------------------------------------------ search

    def keyword(self, collection: str, query: str, limit: int) -> list[tuple[int, float]]:
        q = ts_query(query)
        with self._lock:
            found = self._cid(collection)
            if found is None or q is None:
                return []
            rows = self._q("SELECT id, ts_rank_cd(tsv, q, 1) AS r FROM {s}.chunks, to_tsquery('english', %s) q "
                           "WHERE cid = %s AND tsv @@ q ORDER BY r DESC, id LIMIT %s", (q, found[0], limit)).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def nearest(self, collection: str, vector: "NDArray[np.float32]", limit: int) -> list[tuple[int, float]]:
        with self._lock:
            found = self._cid(collection)
            if found is None:
                return []
            cid, generation, dim = found

            def load() -> tuple[list[int], list[bytes], int]:
                rows = self._q("SELECT id, vector FROM {s}.chunks WHERE cid = %s ORDER BY id", (cid,)).fetchall()
                return [r[0] for r in rows], [bytes(r[1]) for r in rows], dim

            index = self._vectors.get(str(cid), generation, load)
        return index.top(vector, limit)

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        with self._lock:
            rows = self._q(
                "SELECT k.id, c.name, k.doc_id, d.name, k.idx, k.start_off, k.end_off, k.page, k.text, d.data_class "
                "FROM {s}.chunks k JOIN {s}.documents d ON d.id = k.doc_id JOIN {s}.collections c ON c.cid = k.cid "
                "WHERE k.id = ANY(%s)", (list(ids),)).fetchall()
        return {r[0]: StoredChunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], DataClass(r[9])) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_postgres(url: StoreUrl, *, schema: str = "fedinf_retrieval", **options: Any) -> PostgresRetrievalStore:
    """The ``retrieval`` family's opener in :mod:`fedinf.stores`."""
    assert url.dsn is not None
    return PostgresRetrievalStore(url.dsn, schema=schema)
