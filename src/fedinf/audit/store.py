"""Audit stores: the interface, the query filter, and the SQLite store (the embedded default).

A store is synchronous and thread-confined: one store object is used by one thread at a time (the :class:`Auditor`
runs its store in one dedicated writer thread; readers open their own). ``append`` links a batch onto the chain and
commits it in one transaction; when it returns, every record in the batch is as durable as the connection's
``synchronous`` setting makes it.

SQLite durability: WAL mode with ``synchronous=FULL`` fsyncs the WAL at every commit, so a committed record survives a
process crash *and* a power loss. ``synchronous=NORMAL`` skips that fsync: commits still survive a process crash
(SIGKILL — the WAL is in the OS page cache) but the last ones may be lost on power loss or kernel panic. The default
configuration (``audit.sqlite_synchronous: full`` with ``audit.sqlite_journal``) makes records durable in an
append-only journal first and appends them here with NORMAL (:mod:`fedinf.audit.journal`); the table
``journal_applied`` records, in the same transaction as the rows, how far each journal segment has been applied.
Several processes may append to one file: ``BEGIN IMMEDIATE`` takes SQLite's write lock before the head is read, so
the chain stays linear.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from fedinf.audit.chain import COLUMNS, GENESIS, ChainedRow, Hasher, link
from fedinf.audit.db import sqlite_connect, sqlite_migrate, sqlite_tx
from fedinf.audit.verify import VerifyReport, verify_rows
from fedinf.errors import ServiceUnavailable
from fedinf.stores import StoreUrl

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for :meth:`AuditStore.query`; all optional and combined with AND.

    ``model`` matches the chosen model or the one asked for. ``outcome`` is ``ok`` (status < 400), ``error``
    (>= 400), an HTTP status (``429``) or an error code (``rate_limit_exceeded``). ``since``/``until`` are epoch
    seconds. Results are in ``seq`` order (``descending`` for newest first), at most ``limit``.
    """

    key_id: str | None = None
    tenant: str | None = None
    model: str | None = None
    zone: str | None = None
    data_class: str | None = None
    since: float | None = None
    until: float | None = None
    outcome: str | None = None
    request_id: str | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int = 100
    descending: bool = False


def build_where(q: AuditQuery, ph: str) -> tuple[str, list[Any]]:
    """SQL WHERE clause and parameters for ``q``; ``ph`` is the driver's placeholder (``?`` or ``%s``)."""
    conds: list[str] = []
    args: list[Any] = []
    for col in ("key_id", "tenant", "zone", "data_class", "request_id"):
        val = getattr(q, col)
        if val is not None:
            conds.append(f"{col} = {ph}")
            args.append(val)
    if q.model is not None:
        conds.append(f"(model = {ph} OR model_requested = {ph})")
        args += [q.model, q.model]
    for expr, val in (("ts >= ", q.since), ("ts < ", q.until), ("seq > ", q.after_seq), ("seq < ", q.before_seq)):
        if val is not None:
            conds.append(f"{expr}{ph}")
            args.append(val)
    if q.outcome is not None:
        o = q.outcome.strip().lower()
        if o == "ok":
            conds.append("status < 400")
        elif o == "error":
            conds.append("status >= 400")
        elif o.isdigit():
            conds.append(f"status = {ph}")
            args.append(int(o))
        else:
            conds.append(f"error_code = {ph}")
            args.append(q.outcome)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


class AuditStore(Protocol):
    """What every audit store provides (SQLite and PostgreSQL implement the same methods)."""

    hasher: Hasher

    def append(self, bodies: list[tuple[dict[str, Any], float]]) -> list[ChainedRow]: ...
    def head(self) -> tuple[int, str]: ...
    def iter_rows(self, *, page: int = 2000, after_seq: int = -1) -> Iterator[tuple[Any, ...]]: ...
    def query(self, q: AuditQuery) -> list[dict[str, Any]]: ...
    def count(self) -> int: ...
    def tokens_used(self, key_id: str, since: float) -> int: ...
    def verify(self, anchors: dict[int, str] | None = None,
               start: tuple[int, str] | None = None) -> VerifyReport: ...
    def close(self) -> None: ...


SQLITE_MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE audit_records (
            seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, ts REAL NOT NULL,
            request_id TEXT, key_id TEXT, tenant TEXT, model_requested TEXT, model TEXT, zone TEXT,
            data_class TEXT, status INTEGER, error_code TEXT, body TEXT NOT NULL)""",
        "CREATE INDEX audit_records_ts ON audit_records (ts)",
        "CREATE INDEX audit_records_key ON audit_records (key_id, seq)",
        "CREATE INDEX audit_records_tenant ON audit_records (tenant, seq)",
        "CREATE INDEX audit_records_model ON audit_records (model, seq)",
        "CREATE INDEX audit_records_request ON audit_records (request_id)",
        "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
        f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS}')",
    ]),
    (2, [  # token usage as a column, so budgets can be summed per key and period (see fedinf.access.usage)
        "ALTER TABLE audit_records ADD COLUMN tokens INTEGER",
        "UPDATE audit_records SET tokens = json_extract(body, '$.usage.total_tokens')",
        "CREATE INDEX audit_records_key_ts ON audit_records (key_id, ts)",
    ]),
    (3, [  # how far each journal segment has been applied (fedinf.audit.journal); retired: applied and synced
        "CREATE TABLE journal_applied (journal TEXT PRIMARY KEY, offset INTEGER NOT NULL, "
        "retired INTEGER NOT NULL DEFAULT 0)",
    ]),
]

_COLS = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO audit_records ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))})"


class JournalOffsetMismatch(ServiceUnavailable):
    """A journal batch was not applied: the segment's applied offset is not where the batch starts (see
    :meth:`SqliteAuditStore.append`). The journal appender then replays the segment from its file."""

    code = "audit_unavailable"


class SqliteAuditStore:
    """The embedded audit store (see the module docstring for the durability contract)."""

    def __init__(self, path: str | Path, *, hasher: Hasher | None = None, synchronous: str = "FULL",
                 check_same_thread: bool = True, background_checkpoint: bool = False) -> None:
        """``background_checkpoint``: the appending connection never checkpoints the WAL itself (a checkpoint
        fsyncs the database file and would stall that commit); a daemon thread with its own connection does it
        every second instead. Use it for the long-lived writer."""
        self.path = Path(path)
        self.hasher = hasher or Hasher()
        self._synchronous = "FULL" if synchronous.upper() == "FULL" else "NORMAL"
        self._conn = sqlite_connect(self.path, synchronous=synchronous, check_same_thread=check_same_thread)
        sqlite_migrate(self._conn, SQLITE_MIGRATIONS)
        self._checkpointer: _Checkpointer | None = None
        if background_checkpoint:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn.execute("PRAGMA journal_size_limit=67108864")  # shrink the WAL file back after a spike
            self._checkpointer = _Checkpointer(self.path, synchronous)

    def append(self, bodies: list[tuple[dict[str, Any], float]], *,
               journal: tuple[str, int, int] | None = None) -> list[ChainedRow]:
        """Link ``bodies`` onto the chain and commit. ``journal`` = (segment, start, end): the bodies are that
        segment's entries from byte ``start`` to ``end``; the segment's applied offset moves from ``start`` to ``end``
        in the same transaction, and if it is not at ``start`` (already applied) nothing is written and
        :class:`JournalOffsetMismatch` is raised — so a journal entry is applied exactly once."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if journal is not None:
                self._advance(*journal)
            if not bodies:  # journal entries that are not records (intents): only the offset moves
                c.execute("COMMIT")
                return []
            seq, prev = c.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            rows = link(bodies, seq, prev, self.hasher)
            c.executemany(_INSERT, [r.columns() for r in rows])
            c.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (rows[-1].seq, rows[-1].hash))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return rows

    def _advance(self, segment: str, start: int, end: int) -> None:
        got = self._conn.execute("SELECT offset, retired FROM journal_applied WHERE journal = ?",
                                 (segment,)).fetchone()
        if (got or (0, 0)) != (start, 0):
            raise JournalOffsetMismatch(f"journal {segment}: applied up to {got}, not {start}")
        self._conn.execute("INSERT INTO journal_applied (journal, offset) VALUES (?, ?) ON CONFLICT (journal) "
                           "DO UPDATE SET offset = excluded.offset", (segment, end))

    def journal_applied(self, segment: str) -> tuple[int, bool]:
        """(bytes of ``segment`` applied, whether it is retired: fully applied and synced, so deletable)."""
        got = self._conn.execute("SELECT offset, retired FROM journal_applied WHERE journal = ?",
                                 (segment,)).fetchone()
        return (int(got[0]), bool(got[1])) if got else (0, False)

    def retire_journals(self, segments: list[str]) -> None:
        """Mark ``segments`` retired in a commit with synchronous=FULL: its WAL fsync makes every earlier commit
        (of any connection; the WAL is one file) durable too, so the segments' applied entries can no longer be lost
        and the files may be deleted."""
        c = self._conn
        c.execute("PRAGMA synchronous=FULL")
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT INTO journal_applied (journal, offset, retired) VALUES (?, 0, 1) "
                              "ON CONFLICT (journal) DO UPDATE SET retired = 1", [(s,) for s in segments])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        finally:
            c.execute(f"PRAGMA synchronous={self._synchronous}")

    def forget_journals(self, segments: list[str]) -> None:
        """Drop the rows of retired segments whose files are gone (their deletion must be durable first)."""
        with sqlite_tx(self._conn):
            self._conn.executemany("DELETE FROM journal_applied WHERE journal = ? AND retired = 1",
                                   [(s,) for s in segments])

    def head(self) -> tuple[int, str]:
        seq, h = self._conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return int(seq), h

    def iter_rows(self, *, page: int = 2000, after_seq: int = -1) -> Iterator[tuple[Any, ...]]:
        last = after_seq
        while True:
            rows = self._conn.execute(f"SELECT {_COLS} FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?",
                                      (last, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1][0]

    def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        where, args = build_where(q, "?")
        order = "DESC" if q.descending else "ASC"
        sql = f"SELECT {_COLS} FROM audit_records{where} ORDER BY seq {order} LIMIT ?"
        return [ChainedRow(*r).record_dict() for r in self._conn.execute(sql, [*args, q.limit])]

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM audit_records").fetchone()[0])

    def tokens_used(self, key_id: str, since: float) -> int:
        """Tokens recorded for ``key_id`` from ``since`` (epoch seconds) on."""
        return int(self._conn.execute("SELECT COALESCE(SUM(tokens), 0) FROM audit_records WHERE key_id = ? AND "
                                      "ts >= ?", (key_id, since)).fetchone()[0])

    def verify(self, anchors: dict[int, str] | None = None,
               start: tuple[int, str] | None = None) -> VerifyReport:
        """Verify the whole chain inside one read transaction (a consistent snapshot while writers go on)."""
        self._conn.execute("BEGIN")
        try:
            rows = self.iter_rows(after_seq=start[0] - 1 if start else -1)
            return verify_rows(rows, self.head(), self.hasher, anchors, start)
        finally:
            self._conn.execute("COMMIT")

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL (tests and tooling only: this is how tampering is simulated)."""
        return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._conn.close()


def open_sqlite(url: StoreUrl, *, hasher: Hasher | None = None, synchronous: str = "FULL",
                check_same_thread: bool = True, background_checkpoint: bool = False, **_: Any) -> SqliteAuditStore:
    """The ``sqlite`` engine's audit opener (see :mod:`fedinf.stores`); PostgreSQL-only options are ignored."""
    assert url.path is not None
    return SqliteAuditStore(url.path, hasher=hasher, synchronous=synchronous, check_same_thread=check_same_thread,
                            background_checkpoint=background_checkpoint)


class _Checkpointer:
    """Checkpoints a WAL database from its own thread and connection (PASSIVE: never blocks the writer)."""

    def __init__(self, path: Path, synchronous: str, interval_s: float = 1.0) -> None:
        self._path, self._sync, self._interval = path, synchronous, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fedinf-audit-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        conn = sqlite_connect(self._path, synchronous=self._sync)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # keep trying: a missed checkpoint only lets the WAL grow
                    log.warning("audit WAL checkpoint failed: %s", exc)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
