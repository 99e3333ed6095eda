"""Fixtures: key stores on SQLite and PostgreSQL (unique schema per test), and a Redis URL."""

from __future__ import annotations

import os
import uuid
from typing import Any, Iterator

import pytest

from fedinf.access import PostgresAccessStore, SqliteAccessStore

PG_DSNS = [os.environ.get("FEDINF_TEST_PG_DSN", ""), "postgresql://postgres@127.0.0.1:5432/test",
           "postgresql://root@127.0.0.1:5432/test"]
REDIS_URL = os.environ.get("FEDINF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: services are required)")
    pytest.skip(reason)


def pg_dsn() -> str:
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed")
    errors = []
    for dsn in filter(None, PG_DSNS):
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            return dsn
        except Exception as exc:  # noqa: BLE001
            errors.append(str(exc).strip().splitlines()[0])
    unavailable(f"PostgreSQL at 127.0.0.1:5432 db test unreachable: {errors}")
    raise AssertionError


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
