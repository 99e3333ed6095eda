"""SQL connections and migrations shared by the audit and access stores (store URLs: :mod:`fedinf.stores`).

PostgreSQL objects live in one schema (``schema``), so several deployments or
test runs can share a database without clashing. Migrations are ordered lists of SQL statements; each store records
the versions it applied in ``schema_migrations`` and applies the missing ones in one transaction.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fedinf.errors import ConfigError, ServiceUnavailable
from fedinf.stores import StoreUrl, parse_store_url  # noqa: F401 - their home is fedinf.stores; kept importable here

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_ident(name: str) -> str:
    """Return ``name`` if it is a safe lower-case SQL identifier (it is formatted into SQL), else raise ConfigError."""
    if not _IDENT.match(name):
        raise ConfigError(f"invalid schema name {name!r}: use lower-case letters, digits and _")
    return name


def sqlite_connect(path: Path, *, synchronous: str = "FULL", check_same_thread: bool = True) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, autocommit (explicit BEGIN), with a busy timeout for concurrent processes.

    The file is created 0600 (keys and audit records are for the owner only); SQLite gives its ``-wal`` and ``-shm``
    files the database file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if str(path) != ":memory:":
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous.upper() == 'FULL' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def sqlite_tx(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def sqlite_migrate(conn: sqlite3.Connection, migrations: list[tuple[int, list[str]]]) -> int:
    """Apply missing ``(version, statements)`` migrations in order, in one write transaction; return the version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, statements in migrations:
            if version in done:
                continue
            for stmt in statements:
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max([v for v, _ in migrations], default=0)


def pg_connect(dsn: str) -> Any:
    """Open a psycopg 3 connection with durable commits (``synchronous_commit=on`` whatever the server default).
    An unreachable server raises :class:`ServiceUnavailable` (``store_unavailable``), without the password."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError("PostgreSQL stores need the postgres extra: pip install 'fedinf[postgres]'") from exc
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(f"PostgreSQL is unreachable: {reason}", code="store_unavailable") from exc
    conn.execute("SET synchronous_commit = on")
    return conn


def pg_migrate(conn: Any, schema: str, migrations: list[tuple[int, list[str]]], *, lock_id: int) -> int:
    """Create ``schema`` and apply missing migrations under an advisory lock (safe with concurrent starters).

    Statements may contain ``{s}``, replaced by the schema name.
    """
    s = check_ident(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations "
                     "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
        done = {r[0] for r in conn.execute(f"SELECT version FROM {s}.schema_migrations")}
        for version, statements in migrations:
            if version in done:
                continue
            for stmt in statements:
                conn.execute(stmt.format(s=s))
            conn.execute(f"INSERT INTO {s}.schema_migrations VALUES (%s, %s)", (version, time.time()))
    return max([v for v, _ in migrations], default=0)
