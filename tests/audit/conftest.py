"""Fixtures: an audit store per backend (SQLite file, PostgreSQL in a unique schema per test)."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import pytest

from fedinf.audit import Hasher, SqliteAuditStore

from tests.services import pg_dsn


StoreFactory = Callable[..., Any]


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreFactory]:
    """A factory opening stores on one fresh database: ``factory(hasher=None)``; all opened stores are closed."""
    opened: list[Any] = []
    if request.param == "sqlite":
        path = tmp_path / "audit.db"

        def factory(hasher: Hasher | None = None, **kw: Any) -> Any:
            s = SqliteAuditStore(path, hasher=hasher, **kw)
            opened.append(s)
            return s
        factory.url = f"sqlite:///{path}"  # type: ignore[attr-defined]
        factory.schema = "fedinf"  # type: ignore[attr-defined]
    else:
        dsn = pg_dsn()
        from fedinf.audit.pg import PostgresAuditStore
        schema = f"t_{uuid.uuid4().hex[:12]}"

        def factory(hasher: Hasher | None = None, **kw: Any) -> Any:
            s = PostgresAuditStore(dsn, schema=schema, hasher=hasher)
            opened.append(s)
            return s
        factory.url = dsn  # type: ignore[attr-defined]
        factory.schema = schema  # type: ignore[attr-defined]
    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for s in opened:
        try:
            s.close()
        except Exception:  # noqa: BLE001
            pass
    if request.param == "postgres":
        import psycopg
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
