"""Fixtures: key stores on SQLite and PostgreSQL (unique schema per test), and a Redis URL."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest

from fedinf.access import PostgresAccessStore, SqliteAccessStore

from tests.services import REDIS_URL, pg_dsn, unavailable


@pytest.fixture
def redis_url() -> str:
    try:
        import redis
    except ImportError:
        unavailable("redis-py is not installed")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL} unreachable: {exc}")
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def key_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    if request.param == "sqlite":
        store = SqliteAccessStore(tmp_path / "keys.db")
        store.url = f"sqlite:///{tmp_path / 'keys.db'}"
        yield store
        store.close()
        return
    dsn = pg_dsn()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = PostgresAccessStore(dsn, schema=schema)
    store.url = dsn
    yield store
    store.close()
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
