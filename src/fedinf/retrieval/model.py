"""The retrieval data model: collections, documents, chunks, search hits and citations.

Every object here is plain data (frozen dataclasses) that stores, the service, the HTTP layer and the CLI share.
Offsets are half-open ``[start, end)`` character offsets into the document's text (the text fedinf extracted and
stored: for PDF/HTML that is the extracted text, for OSV records the rendered record, see
:mod:`fedinf.retrieval.sources`). ``page`` is 1-based (1 for documents without pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fedinf.data_class import DataClass

SearchMode = Literal["hybrid", "bm25", "vector"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "bm25", "vector")


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A named set of documents searched together.

    ``declared_class`` is what its creator declared (a floor for every document in it); ``data_class`` is the
    highest class of the collection: the declared one, raised by every document added (classified content).
    ``embedder`` names the embedder its vectors were made with; searches must use the same one (``dim`` wide).
    """

    name: str
    data_class: DataClass
    declared_class: DataClass
    embedder: str
    dim: int
    description: str = ""
    created_at: float = 0.0
    documents: int = 0
    chunks: int = 0
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"object": "collection", "name": self.name, "data_class": self.data_class.label,
                "declared_class": self.declared_class.label, "embedder": self.embedder, "dimensions": self.dim,
                "description": self.description, "created_at": int(self.created_at), "documents": self.documents,
                "chunks": self.chunks, "owner": self.owner}


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One ingested document. ``data_class`` = max(collection's declared class, the document's declared class, the
    class its content was classified as); ``entities`` are entity types with counts (never values)."""

    id: str
    collection: str
    name: str
    kind: str
    sha256: str
    size_bytes: int
    data_class: DataClass
    chunks: int
    entities: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"object": "collection.document", "id": self.id, "collection": self.collection, "name": self.name,
                "kind": self.kind, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "data_class": self.data_class.label, "chunks": self.chunks, "entities": dict(self.entities),
                "metadata": dict(self.metadata), "created_at": int(self.created_at)}


@dataclass(frozen=True, slots=True)
class ChunkText:
    """A piece of a document's text to index: ``text == document_text[start:end]``."""

    index: int
    start: int
    end: int
    page: int
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``score`` is the fused score of ``mode`` (higher is better); ``bm25_rank`` and
    ``vector_rank`` are the chunk's 1-based ranks in each list (None where it was not among the candidates)."""

    collection: str
    document_id: str
    document_name: str
    chunk: int
    start: int
    end: int
    page: int
    text: str
    score: float
    data_class: DataClass
    bm25_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None

    def citation(self, number: int) -> dict[str, Any]:
        """The citation shape shown to clients (no text: clients fetch it with search if they need it)."""
        return {"ref": number, "collection": self.collection, "document_id": self.document_id,
                "document": self.document_name, "chunk": self.chunk, "start": self.start, "end": self.end,
                "page": self.page, "data_class": self.data_class.label}

    def to_dict(self) -> dict[str, Any]:
        return {"object": "collection.hit", "collection": self.collection, "document_id": self.document_id,
                "document": self.document_name, "chunk": self.chunk, "start": self.start, "end": self.end,
                "page": self.page, "text": self.text, "score": round(self.score, 6),
                "data_class": self.data_class.label, "bm25_rank": self.bm25_rank, "vector_rank": self.vector_rank,
                "similarity": None if self.similarity is None else round(self.similarity, 6)}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits of one search and the data class the caller inherits by reading them (the highest class among the
    documents retrieved; ``public`` when nothing was retrieved)."""

    query: str
    mode: str
    hits: tuple[Hit, ...]
    data_class: DataClass

    def to_dict(self) -> dict[str, Any]:
        return {"object": "list", "mode": self.mode, "data_class": self.data_class.label,
                "data": [h.to_dict() for h in self.hits]}


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding one document did. ``created`` is False when the same bytes were already in the collection (adding
    is idempotent per content hash)."""

    document: DocumentInfo
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.document.to_dict(), "created": self.created}
