"""The retrieval service: the one object the HTTP layer, the CLI, the chat pipeline and tasks use.

    rt = Retrieval.from_config(config, classifier=gateway.classifier, gateway=gateway)
    await rt.create_collection("advisories", data_class="public")
    added = await rt.add("advisories", data, name="PYSEC-2018-104.yaml")      # bytes of any supported format
    result = await rt.search("advisories", "fixed version of oslo-middleware", k=5)
    result.hits[0].citation(1), result.data_class

Adding a document: parse (:mod:`~fedinf.retrieval.sources`), classify its text with the privacy classifier, set its
class to the highest of (collection's declared class, the caller's declared class, the detected class), chunk, embed
(a remote embedder only receives it if a model is eligible for that class), store in one transaction. The
collection's class is raised to its documents' highest. Adding the same bytes twice is a no-op (``created=False``).

Searching inherits data classes: :attr:`SearchResult.data_class` is the highest class among the documents of the
returned hits. Blocking work (parsing, classifying, the store) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedinf.data_class import DataClass
from fedinf.documents import DocumentLimits
from fedinf.errors import Conflict, Forbidden, NotFound, PolicyViolation, RequestError
from fedinf.retrieval.chunking import ChunkPolicy, chunk_text
from fedinf.retrieval.embeddings import Embedder
from fedinf.retrieval.model import SEARCH_MODES, AddResult, CollectionInfo, DocumentInfo, Hit, SearchResult
from fedinf.retrieval.search import fuse
from fedinf.retrieval.sources import Source, load_source, text_source

if TYPE_CHECKING:
    from fedinf.config import Config, RetrievalSettings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_K = 100


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RequestError("a collection name is 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
                           "digit", param="name", code="invalid_collection_name")
    return name


def _class(value: "DataClass | str | None", param: str) -> DataClass | None:
    if value is None:
        return None
    try:
        return DataClass.parse(value)
    except ValueError as exc:
        raise RequestError(str(exc), param=param, code="invalid_data_class") from None


@dataclass
class Retrieval:
    """See the module docstring. Build with :meth:`from_config`; close with :meth:`aclose`."""

    store: Any
    embedder: Embedder
    classifier: Any
    chunking: ChunkPolicy = ChunkPolicy()
    limits: DocumentLimits = DocumentLimits()
    default_k: int = 5
    default_mode: str = "hybrid"

    @classmethod
    def from_config(cls, config: "Config", *, classifier: Any, gateway: Any = None,
                    embedder: Embedder | None = None, store: Any = None) -> "Retrieval":
        from fedinf.retrieval.store import open_store

        s: RetrievalSettings = config.retrieval
        return cls(
            store=store or open_store(s.store, state_dir=config.server.state_dir, schema=s.schema_name),
            embedder=embedder or build_embedder(s.embedder, gateway=gateway), classifier=classifier,
            chunking=ChunkPolicy(s.chunk_chars, s.chunk_overlap), limits=DocumentLimits(max_bytes=s.max_document_bytes),
            default_k=s.top_k, default_mode=s.mode)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.store.close)

    # ------------------------------------------------------------------ collections

    async def create_collection(self, name: str, *, data_class: "DataClass | str | None" = None,
                                description: str = "", owner: str | None = None) -> CollectionInfo:
        declared = _class(data_class, "data_class") or DataClass.PUBLIC
        check_name(name)
        if not self.embedder.dim:  # a remote embedder learns its width from a first (public, fixed) text
            await self.embedder.embed(["fedinf dimension probe"])
        info = CollectionInfo(name=check_name(name), data_class=declared, declared_class=declared,
                              embedder=self.embedder.name, dim=self.embedder.dim, description=description or "",
                              created_at=time.time(), owner=owner)
        created: CollectionInfo = await asyncio.to_thread(self.store.create_collection, info)
        return created

    async def get_collection(self, name: str) -> CollectionInfo:
        info: CollectionInfo | None = await asyncio.to_thread(self.store.get_collection, name)
        if info is None:
            raise NotFound(f"collection {name!r} does not exist", param="collection", code="collection_not_found")
        return info

    async def list_collections(self) -> list[CollectionInfo]:
        out: list[CollectionInfo] = await asyncio.to_thread(self.store.list_collections)
        return out

    async def delete_collection(self, name: str) -> None:
        if not await asyncio.to_thread(self.store.delete_collection, name):
            raise NotFound(f"collection {name!r} does not exist", param="collection", code="collection_not_found")

    # ------------------------------------------------------------------ documents

    async def add(self, collection: str, data: bytes, *, name: str, media_type: str | None = None,
                  data_class: "DataClass | str | None" = None, metadata: dict[str, Any] | None = None,
                  max_class: DataClass | None = None) -> AddResult:
        """Add one document given as bytes (text, Markdown, HTML, PDF, JSON, YAML, OSV). ``max_class``: refuse
        (Forbidden ``data_class_not_allowed``, nothing stored) a document classified above it."""
        source = await asyncio.to_thread(load_source, data, name=name, media_type=media_type, limits=self.limits)
        return await self.add_source(collection, source, data_class=data_class, metadata=metadata,
                                     max_class=max_class)

    async def add_text(self, collection: str, text: str, *, name: str, data_class: "DataClass | str | None" = None,
                       metadata: dict[str, Any] | None = None) -> AddResult:
        return await self.add_source(collection, text_source(text, name=name), data_class=data_class,
                                     metadata=metadata)

    async def add_path(self, collection: str, path: str | Path, *, data_class: "DataClass | str | None" = None,
                       metadata: dict[str, Any] | None = None) -> AddResult:
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > self.limits.max_bytes:
                from fedinf.errors import PayloadTooLarge
                raise PayloadTooLarge(f"{p.name} is {size} bytes; the limit is {self.limits.max_bytes}")
            data = await asyncio.to_thread(p.read_bytes)
        except OSError as exc:
            raise RequestError(f"{p.name}: cannot read file: {exc.strerror}", code="unreadable_file") from None
        return await self.add(collection, data, name=p.name, data_class=data_class, metadata=metadata)

    async def add_source(self, collection: str, source: Source, *, data_class: "DataClass | str | None" = None,
                         metadata: dict[str, Any] | None = None, max_class: DataClass | None = None) -> AddResult:
        declared = _class(data_class, "data_class")
        info = await self.get_collection(collection)
        self._check_embedder(info)
        existing = await asyncio.to_thread(self.store.find_document, collection, source.sha256)
        if existing is not None:
            return AddResult(existing, created=False)
        classification, chunks = await asyncio.to_thread(self._prepare, source)
        level = max(info.declared_class, declared or DataClass.PUBLIC, classification.data_class)
        if max_class is not None and level > max_class:
            raise Forbidden(f"{source.name} is classified {level.label}; this caller may send data up to "
                            f"{max_class.label}", code="data_class_not_allowed")
        vectors = await self.embedder.embed([c.text for c in chunks], data_class=level)
        doc = DocumentInfo(id="doc-" + uuid.uuid4().hex[:24], collection=collection, name=source.name,
                           kind=source.kind, sha256=source.sha256, size_bytes=source.size_bytes, data_class=level,
                           chunks=len(chunks), entities=dict(sorted(classification.counts().items())),
                           metadata={**source.metadata, **(metadata or {})}, created_at=time.time())
        stored: DocumentInfo = await asyncio.to_thread(self.store.add_document, doc, chunks, vectors)
        return AddResult(stored, created=stored.id == doc.id)

    def _prepare(self, source: Source) -> tuple[Any, list[Any]]:
        chunks = chunk_text(source.text, policy=self.chunking, pages=source.pages)
        if not chunks:
            raise RequestError(f"{source.name}: the document has no text to index", code="invalid_document")
        return self.classifier.classify([source.text]), chunks

    def _check_embedder(self, info: CollectionInfo) -> None:
        if info.embedder != self.embedder.name:
            raise Conflict(f"collection {info.name!r} was built with embedder {info.embedder!r}; this gateway "
                           f"embeds with {self.embedder.name!r} (set retrieval.embedder, or re-create the collection)",
                           code="embedder_mismatch")

    async def get_document(self, collection: str, document_id: str) -> DocumentInfo:
        await self.get_collection(collection)
        doc: DocumentInfo | None = await asyncio.to_thread(self.store.get_document, collection, document_id)
        if doc is None:
            raise NotFound(f"document {document_id!r} is not in collection {collection!r}", param="document_id",
                           code="document_not_found")
        return doc

    async def list_documents(self, collection: str, *, limit: int = 100, after: str | None = None) -> list[DocumentInfo]:
        await self.get_collection(collection)
        docs: list[DocumentInfo] = await asyncio.to_thread(self.store.list_documents, collection, limit=limit,
                                                           after=after)
        return docs

    async def delete_document(self, collection: str, document_id: str) -> None:
        await self.get_collection(collection)
        if not await asyncio.to_thread(self.store.delete_document, collection, document_id):
            raise NotFound(f"document {document_id!r} is not in collection {collection!r}", param="document_id",
                           code="document_not_found")

    # ------------------------------------------------------------------ search

    async def search(self, collections: str | Sequence[str], query: str, *, k: int | None = None,
                     mode: str | None = None, data_class: DataClass = DataClass.PUBLIC) -> SearchResult:
        """The ``k`` best chunks for ``query`` across ``collections``. ``data_class`` is the query's own class
        (routes a remote query embedding); the result's class is the highest retrieved. When no embedding model is
        eligible for the query, the search falls back to keywords alone (``SearchResult.mode == "bm25"``)."""
        names = [collections] if isinstance(collections, str) else list(collections)
        k, mode = (self.default_k if k is None else k), (mode or self.default_mode)
        if mode not in SEARCH_MODES:
            raise RequestError(f"mode must be one of {', '.join(SEARCH_MODES)}", param="mode", code="invalid_value")
        if not 1 <= k <= MAX_K:
            raise RequestError(f"k must be between 1 and {MAX_K}", param="k", code="invalid_value")
        if not isinstance(query, str) or not query.strip():
            raise RequestError("the query is empty", param="query", code="invalid_value")
        infos = [await self.get_collection(n) for n in dict.fromkeys(names)]
        for info in infos:
            self._check_embedder(info)
        vector = None
        if mode != "bm25":
            try:
                vector = (await self.embedder.embed([query], data_class=data_class))[0]
            except PolicyViolation:  # no embedding model may see this query: keywords only, nothing leaves
                mode = "bm25"
        hits: list[Hit] = []
        for info in infos:
            hits += await asyncio.to_thread(self._search_one, info.name, query, vector, k, mode)
        hits.sort(key=lambda h: -h.score)
        top = tuple(hits[:k])
        return SearchResult(query=query, mode=mode, hits=top,
                            data_class=max((h.data_class for h in top), default=DataClass.PUBLIC))

    def _search_one(self, collection: str, query: str, vector: Any, k: int, mode: str) -> list[Hit]:
        pool = max(4 * k, 50)
        keyword = self.store.keyword(collection, query, pool) if mode != "vector" else []
        nearest = self.store.nearest(collection, vector, pool) if vector is not None else []
        ranked = fuse(keyword, nearest, mode=mode, limit=k)
        rows = self.store.chunks([r.id for r in ranked])
        out = []
        for r in ranked:
            c = rows.get(r.id)
            if c is None:  # deleted between the two reads
                continue
            out.append(Hit(collection=c.collection, document_id=c.document_id, document_name=c.document_name,
                           chunk=c.index, start=c.start, end=c.end, page=c.page, text=c.text, score=r.score,
                           data_class=c.data_class, bm25_rank=r.bm25_rank, vector_rank=r.vector_rank,
                           similarity=r.similarity))
        return out


def build_embedder(spec: str, *, gateway: Any = None) -> Embedder:
    """The embedder named by ``retrieval.embedder`` (see docs/config.md)."""
    from fedinf.retrieval.embeddings import HashingEmbedder, LocalEmbedder

    if spec == "local":
        return LocalEmbedder()
    if spec == "hashing" or spec.startswith("hashing:"):
        return HashingEmbedder(int(spec.partition(":")[2] or 384))
    from fedinf.retrieval.remote import RemoteEmbedder

    return RemoteEmbedder(spec, gateway=gateway)
