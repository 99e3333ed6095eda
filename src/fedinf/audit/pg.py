"""The PostgreSQL audit store: one chain shared by every replica.

Concurrency: ``append`` locks the chain head row (``SELECT ... FOR UPDATE``) in the same transaction that inserts
the batch and moves the head, so writers in any number of processes serialise on the head and the chain stays
linear; a writer that crashes mid-transaction releases the lock with its rollback. Durability: the connection sets
``synchronous_commit = on`` (whatever the server default), so ``append`` returns only after the WAL is flushed.
All objects live in one schema (``schema``, default ``fedinf``).
"""

from __future__ import annotations

from typing import Any, Iterator

from fedinf.audit.chain import COLUMNS, GENESIS, ChainedRow, Hasher, link
from fedinf.audit.db import check_ident, pg_connect, pg_migrate
from fedinf.audit.store import AuditQuery, build_where
from fedinf.audit.verify import VerifyReport, verify_rows
from fedinf.stores import StoreUrl

PG_MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE {s}.audit_records (
            seq BIGINT PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
            request_id TEXT, key_id TEXT, tenant TEXT, model_requested TEXT, model TEXT, zone TEXT,
            data_class TEXT, status INTEGER, error_code TEXT, body TEXT NOT NULL)""",
        "CREATE INDEX audit_records_ts ON {s}.audit_records (ts)",
        "CREATE INDEX audit_records_key ON {s}.audit_records (key_id, seq)",
        "CREATE INDEX audit_records_tenant ON {s}.audit_records (tenant, seq)",
        "CREATE INDEX audit_records_model ON {s}.audit_records (model, seq)",
        "CREATE INDEX audit_records_request ON {s}.audit_records (request_id)",
        "CREATE TABLE {s}.audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)",
        f"INSERT INTO {{s}}.audit_head VALUES (1, 0, '{GENESIS}')",
    ]),
    (2, [  # token usage as a column, so budgets can be summed per key and period (see fedinf.access.usage)
        "ALTER TABLE {s}.audit_records ADD COLUMN tokens BIGINT",
        "UPDATE {s}.audit_records SET tokens = ((body::jsonb) -> 'usage' ->> 'total_tokens')::bigint",
        "CREATE INDEX audit_records_key_ts ON {s}.audit_records (key_id, ts)",
    ]),
]

_COLS = ", ".join(COLUMNS)
_LOCK_ID = 0x6665_6461  # advisory lock id for audit migrations ("feda")


class PostgresAuditStore:
    """Same interface as :class:`fedinf.audit.store.SqliteAuditStore`, on PostgreSQL (psycopg 3)."""

    def __init__(self, dsn: str, *, schema: str = "fedinf", hasher: Hasher | None = None) -> None:
        self.schema = check_ident(schema)
        self.hasher = hasher or Hasher()
        self._conn = pg_connect(dsn)
        pg_migrate(self._conn, self.schema, PG_MIGRATIONS, lock_id=_LOCK_ID)

    def append(self, bodies: list[tuple[dict[str, Any], float]]) -> list[ChainedRow]:
        s = self.schema
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(f"SELECT seq, hash FROM {s}.audit_head WHERE id = 1 FOR UPDATE")
            seq, prev = cur.fetchone()
            rows = link(bodies, int(seq), prev, self.hasher)
            cur.executemany(f"INSERT INTO {s}.audit_records ({_COLS}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                            [r.columns() for r in rows])
            cur.execute(f"UPDATE {s}.audit_head SET seq = %s, hash = %s WHERE id = 1", (rows[-1].seq, rows[-1].hash))
        return rows

    def head(self) -> tuple[int, str]:
        seq, h = self._conn.execute(f"SELECT seq, hash FROM {self.schema}.audit_head WHERE id = 1").fetchone()
        return int(seq), h

    def iter_rows(self, *, page: int = 2000, after_seq: int = -1) -> Iterator[tuple[Any, ...]]:
        last = after_seq
        while True:
            rows = self._conn.execute(
                f"SELECT {_COLS} FROM {self.schema}.audit_records WHERE seq > %s ORDER BY seq LIMIT %s",
                (last, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1][0]

    def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        where, args = build_where(q, "%s")
        order = "DESC" if q.descending else "ASC"
        sql = f"SELECT {_COLS} FROM {self.schema}.audit_records{where} ORDER BY seq {order} LIMIT %s"
        return [ChainedRow(*r).record_dict() for r in self._conn.execute(sql, [*args, q.limit]).fetchall()]

    def count(self) -> int:
        return int(self._conn.execute(f"SELECT count(*) FROM {self.schema}.audit_records").fetchone()[0])

    def tokens_used(self, key_id: str, since: float) -> int:
        """Tokens recorded for ``key_id`` from ``since`` (epoch seconds) on."""
        return int(self._conn.execute(f"SELECT COALESCE(SUM(tokens), 0) FROM {self.schema}.audit_records "
                                      "WHERE key_id = %s AND ts >= %s", (key_id, since)).fetchone()[0])

    def verify(self, anchors: dict[int, str] | None = None,
               start: tuple[int, str] | None = None) -> VerifyReport:
        """Verify the chain in one REPEATABLE READ snapshot, so concurrent appends do not look like a truncation."""
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            head = self.head()
            rows = self.iter_rows(after_seq=start[0] - 1 if start else -1)
            return verify_rows(rows, head, self.hasher, anchors, start)

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL (``{s}`` = schema; tests and tooling only: this is how tampering is simulated)."""
        cur = self._conn.execute(sql.format(s=self.schema), args)
        return cur.fetchall() if cur.description else []

    def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests)."""
        self._conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        self._conn.close()


def open_postgres(url: StoreUrl, *, schema: str = "fedinf", hasher: Hasher | None = None,
                  **_: Any) -> PostgresAuditStore:
    """The ``postgresql`` engine's audit opener (see :mod:`fedinf.stores`); SQLite-only options are ignored."""
    assert url.dsn is not None
    return PostgresAuditStore(url.dsn, schema=schema, hasher=hasher)
