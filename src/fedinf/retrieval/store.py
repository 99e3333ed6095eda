"""Retrieval stores: the interface and the registry that opens one from a URL.

A store keeps collections, documents, chunks (text, offsets, vectors) and a full-text index, and answers two kinds of
candidate queries - keyword (:meth:`RetrievalStore.keyword`, BM25 or the engine's equivalent) and vector
(:meth:`RetrievalStore.nearest`) - which :mod:`fedinf.retrieval.search` fuses. Stores are synchronous and
thread-safe; the service calls them from worker threads.

URL schemes (the ``retrieval`` family of the shared engine registry, :data:`fedinf.stores.ENGINES`):

- ``sqlite:///path.db`` (default ``retrieval.db`` in ``server.state_dir``): the embedded store - SQLite FTS5 (BM25,
  Porter stemming) + exact vector search in numpy (:mod:`fedinf.retrieval.sqlite_store`);
- ``postgresql://user@host/db``: the scale-out store - tsvector full-text search with a GIN index + vectors as
  ``bytea`` scored in numpy (:mod:`fedinf.retrieval.pg_store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fedinf.data_class import DataClass
from fedinf.retrieval.model import ChunkText, CollectionInfo, DocumentInfo

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back for a hit."""

    id: int
    collection: str
    document_id: str
    document_name: str
    index: int
    start: int
    end: int
    page: int
    text: str
    data_class: DataClass


class RetrievalStore(Protocol):
    def create_collection(self, info: CollectionInfo) -> CollectionInfo:
        """Create ``info.name``; raise :class:`~fedinf.errors.Conflict` if it exists."""
        ...

    def get_collection(self, name: str) -> CollectionInfo | None: ...

    def list_collections(self) -> list[CollectionInfo]: ...

    def delete_collection(self, name: str) -> bool: ...

    def find_document(self, collection: str, sha256: str) -> DocumentInfo | None: ...

    def get_document(self, collection: str, document_id: str) -> DocumentInfo | None: ...

    def list_documents(self, collection: str, *, limit: int = 100, after: str | None = None) -> list[DocumentInfo]: ...

    def add_document(self, doc: DocumentInfo, chunks: Sequence[ChunkText],
                     vectors: "NDArray[np.float32]") -> DocumentInfo:
        """Store a document, its chunks and vectors in one transaction and raise the collection's class to the
        document's; return the stored document (or the existing one when its hash was already there)."""
        ...

    def delete_document(self, collection: str, document_id: str) -> bool: ...

    def keyword(self, collection: str, query: str, limit: int) -> list[tuple[int, float]]:
        """``(chunk id, score)`` best first (higher score is better)."""
        ...

    def nearest(self, collection: str, vector: "NDArray[np.float32]", limit: int) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` best first."""
        ...

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]: ...

    def close(self) -> None: ...


def open_store(url: str | None, *, state_dir: str | Path = ".fedinf", schema: str = "fedinf_retrieval") -> Any:
    """Open (and migrate) the store named by ``url`` (default ``sqlite:///retrieval.db`` in ``state_dir``)."""
    from fedinf import stores

    return stores.open_store("retrieval", url or "sqlite:///retrieval.db", base_dir=state_dir, schema=schema)
