"""Key and tenant stores: SQLite (default, a file under ``server.state_dir``) and PostgreSQL, same interface.

Both share the SQL below (``?`` placeholders, ``{t}`` for the table prefix: empty on SQLite, ``schema.`` on
PostgreSQL). Roles, scopes and limits are JSON text columns, so adding a scope needs no table change. Stores are
thread-safe (one lock around the connection): the authenticator looks keys up from worker threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fedinf.access.keys import KeyRecord, Tenant
from fedinf.access.principal import Limits, Scopes
from fedinf.audit.db import check_ident, pg_connect, pg_migrate, sqlite_connect, sqlite_migrate, sqlite_tx
from fedinf.stores import StoreUrl

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE {t}tenants (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '',
            log_content BOOLEAN NOT NULL DEFAULT FALSE, created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE {t}api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL,
            tenant TEXT NOT NULL REFERENCES {t}tenants (name), name TEXT NOT NULL DEFAULT '',
            roles TEXT NOT NULL, scopes TEXT NOT NULL, limits TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION, rotated_from TEXT)""",
        "CREATE INDEX {i}api_keys_tenant ON {t}api_keys (tenant)",
    ]),
]

_KEY_COLS = "key_id, key_hash, tenant, name, roles, scopes, limits, created_at, expires_at, revoked_at, rotated_from"
_KEEP = object()


def _key_row(r: KeyRecord) -> tuple[Any, ...]:
    return (r.key_id, r.key_hash, r.tenant, r.name, json.dumps(list(r.roles)), json.dumps(r.scopes.to_dict()),
            json.dumps(r.limits.to_dict()), r.created_at, r.expires_at, r.revoked_at, r.rotated_from)


def _key_from(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(key_id=row[0], key_hash=row[1], tenant=row[2], name=row[3], roles=tuple(json.loads(row[4])),
                     scopes=Scopes.from_dict(json.loads(row[5])), limits=Limits.from_dict(json.loads(row[6])),
                     created_at=row[7], expires_at=row[8], revoked_at=row[9], rotated_from=row[10])


def _tenant_from(row: tuple[Any, ...]) -> Tenant:
    return Tenant(name=row[0], description=row[1], log_content=bool(row[2]), created_at=row[3])


class _SqlAccessStore:
    """The shared implementation; subclasses provide the connection, ``_prefix``, ``_ph`` and ``_tx``."""

    _prefix = ""
    _ph = "?"
    _conn: Any  # sqlite3.Connection or psycopg.Connection (DB-API: execute, close)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def _sql(self, sql: str) -> str:
        return sql.replace("{t}", self._prefix).replace("?", self._ph)

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(self._sql(sql), args).fetchall())

    @contextmanager
    def _tx(self) -> Iterator[None]:  # pragma: no cover - overridden
        raise NotImplementedError
        yield

    def _x(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(self._sql(sql), args)

    # ---- tenants

    def upsert_tenant(self, tenant: Tenant) -> Tenant:
        """Create ``tenant`` or update its description and ``log_content``; returns the stored tenant."""
        with self._tx():
            self._x("INSERT INTO {t}tenants (name, description, log_content, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET description = excluded.description, "
                    "log_content = excluded.log_content",
                    (tenant.name, tenant.description, tenant.log_content, tenant.created_at))
        got = self.get_tenant(tenant.name)
        assert got is not None
        return got

    def get_tenant(self, name: str) -> Tenant | None:
        rows = self._all("SELECT name, description, log_content, created_at FROM {t}tenants WHERE name = ?", (name,))
        return _tenant_from(rows[0]) if rows else None

    def list_tenants(self) -> list[Tenant]:
        return [_tenant_from(r) for r in
                self._all("SELECT name, description, log_content, created_at FROM {t}tenants ORDER BY name")]

    # ---- keys

    def _ensure_tenant(self, name: str) -> None:
        self._x("INSERT INTO {t}tenants (name, description, log_content, created_at) VALUES (?, '', ?, ?) "
                "ON CONFLICT (name) DO NOTHING", (name, False, time.time()))

    def insert_key(self, rec: KeyRecord) -> None:
        """Store a new key (its tenant is created with defaults if missing)."""
        with self._tx():
            self._ensure_tenant(rec.tenant)
            self._x(f"INSERT INTO {{t}}api_keys ({_KEY_COLS}) VALUES ({', '.join('?' * 11)})", _key_row(rec))

    def insert_key_if_none_active(self, rec: KeyRecord) -> bool:
        """Insert ``rec`` only if no active key exists (atomically); True if inserted. For first-start bootstrap."""
        with self._tx():
            self._serialize_bootstrap()
            now = time.time()
            n = self._x("SELECT count(*) FROM {t}api_keys WHERE (revoked_at IS NULL OR revoked_at > ?) AND "
                        "(expires_at IS NULL OR expires_at > ?)", (now, now)).fetchone()[0]
            if n:
                return False
            self._ensure_tenant(rec.tenant)
            self._x(f"INSERT INTO {{t}}api_keys ({_KEY_COLS}) VALUES ({', '.join('?' * 11)})", _key_row(rec))
            return True

    def _serialize_bootstrap(self) -> None:
        """Make concurrent bootstraps (several processes starting at once) take turns; SQLite's BEGIN IMMEDIATE
        already does."""

    def get_key(self, key_id: str) -> tuple[KeyRecord, Tenant] | None:
        """The key and its tenant, or ``None``."""
        cols = ", ".join(f"k.{c.strip()}" for c in _KEY_COLS.split(","))
        rows = self._all(f"SELECT {cols}, t.name, t.description, t.log_content, t.created_at FROM {{t}}api_keys k "
                         "JOIN {t}tenants t ON t.name = k.tenant WHERE k.key_id = ?", (key_id,))
        if not rows:
            return None
        return _key_from(rows[0][:11]), _tenant_from(rows[0][11:])

    def list_keys(self, *, tenant: str | None = None, include_inactive: bool = False) -> list[KeyRecord]:
        sql, args = f"SELECT {_KEY_COLS} FROM {{t}}api_keys WHERE 1 = 1", list[object]()
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if not include_inactive:
            sql += " AND (revoked_at IS NULL OR revoked_at > ?) AND (expires_at IS NULL OR expires_at > ?)"
            args += [time.time(), time.time()]
        return [_key_from(r) for r in self._all(sql + " ORDER BY created_at, key_id", tuple(args))]

    def update_key(self, key_id: str, *, name: Any = _KEEP, roles: Any = _KEEP, scopes: Any = _KEEP,
                   limits: Any = _KEEP, expires_at: Any = _KEEP, revoked_at: Any = _KEEP) -> KeyRecord | None:
        """Change the given fields; returns the updated key or ``None`` if unknown."""
        sets: list[str] = []
        args: list[Any] = []
        for col, val, enc in (("name", name, str), ("roles", roles, lambda v: json.dumps(list(v))),
                              ("scopes", scopes, lambda v: json.dumps(v.to_dict())),
                              ("limits", limits, lambda v: json.dumps(v.to_dict())),
                              ("expires_at", expires_at, lambda v: v), ("revoked_at", revoked_at, lambda v: v)):
            if val is not _KEEP:
                sets.append(f"{col} = ?")
                args.append(enc(val))
        if sets:
            with self._tx():
                self._x(f"UPDATE {{t}}api_keys SET {', '.join(sets)} WHERE key_id = ?", (*args, key_id))
        got = self.get_key(key_id)
        return got[0] if got else None

    def revoke_key(self, key_id: str, *, at: float | None = None) -> KeyRecord | None:
        """Revoke now (or at ``at``); an already earlier revocation is kept. ``None`` if the key is unknown."""
        at = time.time() if at is None else at
        with self._tx():
            self._x("UPDATE {t}api_keys SET revoked_at = ? WHERE key_id = ? AND "
                    "(revoked_at IS NULL OR revoked_at > ?)", (at, key_id, at))
        got = self.get_key(key_id)
        return got[0] if got else None

    def rotate_key(self, old_id: str, new: KeyRecord, *, old_ends_at: float) -> bool:
        """Insert ``new`` and end ``old_id`` at ``old_ends_at`` in one transaction; False if ``old_id`` is unknown."""
        with self._tx():
            cur = self._x("UPDATE {t}api_keys SET revoked_at = ? WHERE key_id = ? AND "
                          "(revoked_at IS NULL OR revoked_at > ?)", (old_ends_at, old_id, old_ends_at))
            if cur.rowcount == 0 and not self._x("SELECT 1 FROM {t}api_keys WHERE key_id = ?", (old_id,)).fetchall():
                return False
            self._x(f"INSERT INTO {{t}}api_keys ({_KEY_COLS}) VALUES ({', '.join('?' * 11)})", _key_row(new))
        return True

    def close(self) -> None:
        with self._lock:
            self._conn.close()


AccessStore = _SqlAccessStore  # the type every key-store engine implements


class SqliteAccessStore(_SqlAccessStore):
    """Keys and tenants in a SQLite file (WAL)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._conn = sqlite_connect(Path(path), check_same_thread=False)
        sqlite_migrate(self._conn, [(v, [s.replace("{t}", "").replace("{i}", "") for s in stmts])
                                    for v, stmts in MIGRATIONS])

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, sqlite_tx(self._conn):
            yield


class PostgresAccessStore(_SqlAccessStore):
    """Keys and tenants in PostgreSQL, schema ``schema``."""

    _ph = "%s"

    def __init__(self, dsn: str, *, schema: str = "fedinf") -> None:
        super().__init__()
        self.schema = check_ident(schema)
        self._prefix = f"{self.schema}."
        self._dsn = dsn
        self._conn = pg_connect(dsn)
        pg_migrate(self._conn, self.schema, [(v, [s.replace("{t}", "{s}.").replace("{i}", "") for s in stmts])
                                             for v, stmts in MIGRATIONS], lock_id=0x6665_6462)

    def _alive(self) -> None:
        """Reconnect when the server closed the connection (restart, failover, idle timeout)."""
        if self._conn.closed or self._conn.broken:
            self._conn = pg_connect(self._dsn)

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self._lock:
            self._alive()
            try:
                return list(self._conn.execute(self._sql(sql), args).fetchall())
            except psycopg.OperationalError:  # died since the check: reads are safe to retry once
                self._alive()
                return list(self._conn.execute(self._sql(sql), args).fetchall())

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock:
            self._alive()
            with self._conn.transaction():
                yield

    def _serialize_bootstrap(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x6665_6463,))


def open_sqlite(url: StoreUrl, **_: Any) -> SqliteAccessStore:
    """The ``sqlite`` engine's key-store opener (see :mod:`fedinf.stores`)."""
    assert url.path is not None
    return SqliteAccessStore(url.path)


def open_postgres(url: StoreUrl, *, schema: str = "fedinf", **_: Any) -> PostgresAccessStore:
    """The ``postgresql`` engine's key-store opener (see :mod:`fedinf.stores`)."""
    assert url.dsn is not None
    return PostgresAccessStore(url.dsn, schema=schema)


def open_access_store(url: str | None, *, state_dir: str | Path = ".fedinf",
                      schema: str = "fedinf") -> AccessStore:
    """Open (and migrate) the key store at ``url`` (default: ``state_dir/keys.db``)."""
    from fedinf.stores import open_store

    store: AccessStore = open_store("keys", url or "sqlite:///keys.db", base_dir=state_dir, schema=schema)
    return store
