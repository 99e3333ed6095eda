"""Retrieval: collections of documents, chunked with offsets, embedded, searched (BM25 + vectors), cited.

The public API (documented in docs/retrieval.md)::

    from fedinf.retrieval import Retrieval
    rt = Retrieval.from_config(config, classifier=gateway.classifier, gateway=gateway)   # or gateway.retrieval
    await rt.create_collection("advisories", data_class="public")
    added = await rt.add("advisories", data, name="PYSEC-2018-104.yaml")
    result = await rt.search("advisories", "fixed version of oslo-middleware", k=5)
    for n, hit in enumerate(result.hits, 1):
        hit.citation(n)                     # collection, document, chunk, offsets, page, data class
    result.data_class                       # the highest class retrieved: a request using it inherits it

Data classes: every document's class is the highest of its collection's declared class, its own declared class and
the class its content is classified as; a search result carries the highest class among its hits.
"""

from fedinf.retrieval.chunking import ChunkPolicy, chunk_text
from fedinf.retrieval.embeddings import Embedder, HashingEmbedder, LocalEmbedder
from fedinf.retrieval.model import (
    SEARCH_MODES, AddResult, ChunkText, CollectionInfo, DocumentInfo, Hit, SearchMode, SearchResult,
)
from fedinf.retrieval.service import Retrieval, build_embedder
from fedinf.retrieval.sources import Source, is_osv, load_source, render_osv, text_source
from fedinf.retrieval.store import RetrievalStore, open_store

__all__ = [
    "SEARCH_MODES", "AddResult", "ChunkPolicy", "ChunkText", "CollectionInfo", "DocumentInfo", "Embedder",
    "HashingEmbedder", "Hit", "LocalEmbedder", "Retrieval", "RetrievalStore", "SearchMode", "SearchResult", "Source",
    "build_embedder", "chunk_text", "is_osv", "load_source", "open_store", "render_osv", "text_source",
]
