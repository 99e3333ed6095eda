"""The embedded retrieval store: one SQLite file, FTS5 for BM25, vectors as float32 BLOBs searched in numpy.

Layout: ``collections`` (one row each, with an integer ``cid`` and a write ``generation``), ``documents``,
``chunks`` (text, offsets, page, vector) and one FTS5 table per collection (``fts_<cid>``, Porter-stemmed
``unicode61`` tokens, external content = ``chunks``), so BM25's document frequencies are the collection's own.
Writes happen in one transaction per document; WAL mode lets readers in other processes go on meanwhile.

Why not sqlite-vec: Python's ``sqlite3`` here is built without extension loading (``enable_load_extension`` is
missing), so the extension cannot be loaded without swapping the SQLite binding; exact search in numpy is as fast at
the sizes measured (see bench/results/retrieval_eval.md) and needs nothing extra.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedinf.audit.db import sqlite_connect, sqlite_migrate
from fedinf.data_class import DataClass
from fedinf.errors import Conflict
from fedinf.retrieval.model import ChunkText, CollectionInfo, DocumentInfo
from fedinf.retrieval.store import StoredChunk
from fedinf.retrieval.vectors import VectorCache, to_blob
from fedinf.stores import StoreUrl

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MIGRATIONS: list[tuple[int, list[str]]] = [(1, [
    """CREATE TABLE collections (cid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data_class INTEGER NOT NULL,
       declared_class INTEGER NOT NULL, embedder TEXT NOT NULL, dim INTEGER NOT NULL, description TEXT NOT NULL,
       owner TEXT, created_at REAL NOT NULL, generation INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE documents (id TEXT PRIMARY KEY, cid INTEGER NOT NULL REFERENCES collections(cid) ON DELETE
       CASCADE, name TEXT NOT NULL, kind TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL,
       data_class INTEGER NOT NULL, chunks INTEGER NOT NULL, entities TEXT NOT NULL, metadata TEXT NOT NULL,
       created_at REAL NOT NULL, UNIQUE (cid, sha256))""",
    """CREATE TABLE chunks (id INTEGER PRIMARY KEY, cid INTEGER NOT NULL, doc_id TEXT NOT NULL REFERENCES
       documents(id) ON DELETE CASCADE, idx INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
       page INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL)""",
    "CREATE INDEX chunks_cid ON chunks (cid, id)",
    "CREATE INDEX chunks_doc ON chunks (doc_id)",
])]

_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str, *, max_terms: int = 64) -> str | None:
    """A safe FTS5 query: every word of ``text`` quoted, OR-ed (BM25 ranks documents matching more terms higher)."""
    terms = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(text)))[:max_terms]
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


class SqliteRetrievalStore:
    """See the module docstring. ``path`` is created with its parent folders."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite_connect(self.path, synchronous="NORMAL", check_same_thread=False)
        self._lock = threading.RLock()
        self._vectors = VectorCache()
        sqlite_migrate(self._db, MIGRATIONS)

    # ------------------------------------------------------------------ collections

    def _collection_row(self, where: str, args: tuple[Any, ...]) -> list[CollectionInfo]:
        rows = self._db.execute(
            "SELECT c.name, c.data_class, c.declared_class, c.embedder, c.dim, c.description, c.created_at, c.owner,"
            " (SELECT count(*) FROM documents d WHERE d.cid = c.cid),"
            " (SELECT count(*) FROM chunks k WHERE k.cid = c.cid) FROM collections c " + where, args).fetchall()
        return [CollectionInfo(name=r[0], data_class=DataClass(r[1]), declared_class=DataClass(r[2]), embedder=r[3],
                               dim=r[4], description=r[5], created_at=r[6], owner=r[7], documents=r[8], chunks=r[9])
                for r in rows]

    def create_collection(self, info: CollectionInfo) -> CollectionInfo:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO collections (name, data_class, declared_class, embedder, dim, description, owner,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (info.name, int(info.data_class), int(info.declared_class), info.embedder, info.dim,
                     info.description, info.owner, info.created_at or time.time()))
                self._db.execute(f"CREATE VIRTUAL TABLE fts_{cur.lastrowid} USING fts5(text, content='chunks', "
                                 "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')")
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise Conflict(f"collection {info.name!r} already exists", param="name") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._collection_row("WHERE c.name = ?", (info.name,))[0]

    def get_collection(self, name: str) -> CollectionInfo | None:
        with self._lock:
            rows = self._collection_row("WHERE c.name = ?", (name,))
        return rows[0] if rows else None

    def list_collections(self) -> list[CollectionInfo]:
        with self._lock:
            return self._collection_row("ORDER BY c.name", ())

    def _cid(self, name: str) -> tuple[int, int] | None:
        row = self._db.execute("SELECT cid, generation FROM collections WHERE name = ?", (name,)).fetchone()
        return (row[0], row[1]) if row else None

    def delete_collection(self, name: str) -> bool:
        with self._lock:
            found = self._cid(name)
            if found is None:
                return False
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"DROP TABLE IF EXISTS fts_{found[0]}")
                self._db.execute("DELETE FROM chunks WHERE cid = ?", (found[0],))
                self._db.execute("DELETE FROM collections WHERE cid = ?", (found[0],))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._vectors.drop(str(found[0]))
            return True

    # ------------------------------------------------------------------ documents

    _DOC_COLS = ("d.id, c.name, d.name, d.kind, d.sha256, d.size_bytes, d.data_class, d.chunks, d.entities, "
                 "d.metadata, d.created_at FROM documents d JOIN collections c ON c.cid = d.cid")

    @staticmethod
    def _doc(r: Sequence[Any]) -> DocumentInfo:
        return DocumentInfo(id=r[0], collection=r[1], name=r[2], kind=r[3], sha256=r[4], size_bytes=r[5],
                            data_class=DataClass(r[6]), chunks=r[7], entities=json.loads(r[8]),
                            metadata=json.loads(r[9]), created_at=r[10])

    def find_document(self, collection: str, sha256: str) -> DocumentInfo | None:
        with self._lock:
            r = self._db.execute(f"SELECT {self._DOC_COLS} WHERE c.name = ? AND d.sha256 = ?",
                                 (collection, sha256)).fetchone()
        return self._doc(r) if r else None

    def get_document(self, collection: str, document_id: str) -> DocumentInfo | None:
        with self._lock:
            r = self._db.execute(f"SELECT {self._DOC_COLS} WHERE c.name = ? AND d.id = ?",
                                 (collection, document_id)).fetchone()
        return self._doc(r) if r else None

    def list_documents(self, collection: str, *, limit: int = 100, after: str | None = None) -> list[DocumentInfo]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._DOC_COLS} WHERE c.name = ? AND d.id > ? ORDER BY d.id LIMIT ?",
                                    (collection, after or "", limit)).fetchall()
        return [self._doc(r) for r in rows]

    def add_document(self, doc: DocumentInfo, chunks: Sequence[ChunkText],
                     vectors: "NDArray[np.float32]") -> DocumentInfo:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                stored = self._insert(doc, chunks, vectors)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return stored

    def _insert(self, doc: DocumentInfo, chunks: Sequence[ChunkText], vectors: "NDArray[np.float32]") -> DocumentInfo:
        from fedinf.errors import NotFound

        found = self._cid(doc.collection)
        if found is None:
            raise NotFound(f"collection {doc.collection!r} does not exist", code="collection_not_found")
        cid = found[0]
        existing = self._db.execute(f"SELECT {self._DOC_COLS} WHERE d.cid = ? AND d.sha256 = ?",
                                    (cid, doc.sha256)).fetchone()
        if existing:
            return self._doc(existing)
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.id, cid, doc.name, doc.kind, doc.sha256, doc.size_bytes, int(doc.data_class), len(chunks),
             json.dumps(doc.entities), json.dumps(doc.metadata, default=str), doc.created_at or time.time()))
        for ch, vec in zip(chunks, vectors):
            cur = self._db.execute(
                "INSERT INTO chunks (cid, doc_id, idx, start, end, page, text, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, doc.id, ch.index, ch.start, ch.end, ch.page, ch.text, to_blob(vec)))
            self._db.execute(f"INSERT INTO fts_{cid} (rowid, text) VALUES (?, ?)", (cur.lastrowid, ch.text))
        self._db.execute("UPDATE collections SET generation = generation + 1, data_class = max(data_class, ?) "
                         "WHERE cid = ?", (int(doc.data_class), cid))
        return DocumentInfo(**{**_fields(doc), "chunks": len(chunks)})

    def delete_document(self, collection: str, document_id: str) -> bool:
        with self._lock:
            found = self._cid(collection)
            if found is None:
                return False
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT id, text FROM chunks WHERE doc_id = ? AND cid = ?",
                                        (document_id, found[0])).fetchall()
                for cid_row, text in rows:
                    self._db.execute(f"INSERT INTO fts_{found[0]} (fts_{found[0]}, rowid, text) VALUES ('delete', ?, ?)",
                                     (cid_row, text))
                n = self._db.execute("DELETE FROM documents WHERE id = ? AND cid = ?",
                                     (document_id, found[0])).rowcount
                self._db.execute("UPDATE collections SET generation = generation + 1 WHERE cid = ?", (found[0],))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return n > 0

    # ------------------------------------------------------------------ search

    def keyword(self, collection: str, query: str, limit: int) -> list[tuple[int, float]]:
        q = fts_query(query)
        with self._lock:
            found = self._cid(collection)
            if found is None or q is None:
                return []
            t = f"fts_{found[0]}"
            rows = self._db.execute(f"SELECT rowid, bm25({t}) FROM {t} WHERE {t} MATCH ? ORDER BY bm25({t}) LIMIT ?",
                                    (q, limit)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def nearest(self, collection: str, vector: "NDArray[np.float32]", limit: int) -> list[tuple[int, float]]:
        with self._lock:
            found = self._cid(collection)
            if found is None:
                return []
            cid, generation = found
            info = self._db.execute("SELECT dim FROM collections WHERE cid = ?", (cid,)).fetchone()

            def load() -> tuple[list[int], list[bytes], int]:
                rows = self._db.execute("SELECT id, vector FROM chunks WHERE cid = ? ORDER BY id", (cid,)).fetchall()
                return [r[0] for r in rows], [r[1] for r in rows], int(info[0])

            index = self._vectors.get(str(cid), generation, load)
        return index.top(vector, limit)

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        out: dict[int, StoredChunk] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                part = list(ids[i:i + 500])
                rows = self._db.execute(
                    "SELECT k.id, c.name, k.doc_id, d.name, k.idx, k.start, k.end, k.page, k.text, d.data_class "
                    "FROM chunks k JOIN documents d ON d.id = k.doc_id JOIN collections c ON c.cid = k.cid "
                    f"WHERE k.id IN ({','.join('?' * len(part))})", part).fetchall()
                for r in rows:
                    out[r[0]] = StoredChunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], DataClass(r[9]))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_sqlite(url: StoreUrl, **options: Any) -> SqliteRetrievalStore:
    """The ``retrieval`` family's opener in :mod:`fedinf.stores` (``options`` such as ``schema`` do not apply)."""
    assert url.path is not None
    return SqliteRetrievalStore(url.path)


def _fields(doc: DocumentInfo) -> dict[str, Any]:
    return {f: getattr(doc, f) for f in DocumentInfo.__dataclass_fields__}
