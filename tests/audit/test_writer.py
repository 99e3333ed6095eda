"""The Auditor: durable group commit, fail closed, and several writer processes keeping one chain."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedinf.audit import AuditQuery, Auditor, AuditRecord, NullAuditor, build_auditor
from fedinf.config import default_config
from fedinf.errors import ServiceUnavailable

SRC = str(Path(__file__).resolve().parents[2] / "src")


async def test_concurrent_writes_group_commit(store_factory) -> None:
    auditor = Auditor(store_factory, max_batch=64)
    await auditor.start()
    receipts = await asyncio.gather(*(auditor.write(AuditRecord(request_id=f"r{i}", key_id="k")) for i in range(300)))
    assert sorted(r.seq for r in receipts) == list(range(1, 301))
    assert auditor.batches < 300 // 2, f"{auditor.batches} commits for 300 records: no grouping"
    assert await auditor.run(lambda s: s.count()) == 300
    # every receipt is durable: a fresh connection sees it, hash included
    reader = store_factory()
    got = {r["request_id"]: r["hash"] for r in reader.query(AuditQuery(limit=1000))}
    assert all(got[f"r{i}"] == rc.hash for i, rc in enumerate(receipts))
    assert reader.verify().ok
    await auditor.aclose()


async def test_lone_write_is_durable_on_return(store_factory) -> None:
    auditor = Auditor(store_factory)
    receipt = await auditor.write(AuditRecord(request_id="only"))
    assert receipt.seq == 1
    assert store_factory().query(AuditQuery(request_id="only"))[0]["hash"] == receipt.hash
    await auditor.aclose()


async def test_store_failure_fails_closed(store_factory) -> None:
    auditor = Auditor(store_factory)
    await auditor.write(AuditRecord(request_id="before"))
    table = "{s}.audit_records" if store_factory.kind == "postgres" else "audit_records"
    await auditor.run(lambda s: s.execute(f"DROP TABLE {table}"))
    with pytest.raises(ServiceUnavailable) as ei:
        await asyncio.gather(*(auditor.write(AuditRecord(request_id=f"x{i}")) for i in range(5)))
    assert ei.value.code == "audit_unavailable" and ei.value.status_code == 503
    await auditor.aclose()


async def test_cancelled_caller_still_gets_record_written(store_factory) -> None:
    auditor = Auditor(store_factory)
    await auditor.start()
    task = asyncio.create_task(auditor.write(AuditRecord(request_id="cancelled")))
    await asyncio.sleep(0)
    task.cancel()
    await auditor.aclose()  # drains the queue
    assert store_factory().query(AuditQuery(request_id="cancelled"))


async def test_build_auditor_from_config(tmp_path) -> None:
    cfg = default_config().model_copy(update={"server": default_config().server.model_copy(
        update={"state_dir": str(tmp_path)})})
    auditor = build_auditor(cfg)
    await auditor.write(AuditRecord(request_id="cfg"))
    await auditor.aclose()
    assert (tmp_path / "audit.db").exists()
    off = build_auditor(cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"enabled": False})}))
    assert isinstance(off, NullAuditor)


CHILD = r"""
import asyncio, sys
from fedinf.audit import Auditor, AuditRecord, SqliteAuditStore
kind, url, schema, tag, n = sys.argv[1:6]
def factory():
    if kind == "sqlite":
        return SqliteAuditStore(url.removeprefix("sqlite:///"))
    from fedinf.audit.pg import PostgresAuditStore
    return PostgresAuditStore(url, schema=schema)
async def main():
    a = Auditor(factory, max_batch=16)
    for burst in range(int(n) // 20):
        await asyncio.gather(*(a.write(AuditRecord(request_id=f"{tag}-{burst}-{i}")) for i in range(20)))
    await a.aclose()
asyncio.run(main())
"""


def test_two_writer_processes_keep_one_chain(store_factory) -> None:
    store = store_factory()  # creates the schema before the children race
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, store_factory.kind, store_factory.url,
                               store_factory.schema, tag, "400"], env=env) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert store.count() == 800
    report = store.verify()
    assert report.ok, report.problems[:5]
    assert report.last_seq == 800
    tags = [r["request_id"][0] for r in store.query(AuditQuery(limit=800))]
    assert tags.count("a") == 400 and tags.count("b") == 400


async def test_reconnects_after_database_connection_dies(store_factory) -> None:
    """PostgreSQL restarted / connection killed: that batch fails closed, the next one reconnects; one chain."""
    if store_factory.kind != "postgres":
        pytest.skip("connection loss is a PostgreSQL concern")
    import psycopg

    auditor = Auditor(store_factory)
    await auditor.write(AuditRecord(request_id="before"))
    pid = (await auditor.run(lambda s: s.execute("SELECT pg_backend_pid()")))[0][0]
    with psycopg.connect(store_factory.url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(ServiceUnavailable):
        await auditor.write(AuditRecord(request_id="lost"))
    receipt = await auditor.write(AuditRecord(request_id="after"))
    assert receipt.seq == 2
    await auditor.aclose()
    store = store_factory()
    assert [r["request_id"] for r in store.query(AuditQuery(limit=10))] == ["before", "after"]
    assert store.verify().ok


def test_migrations_apply_only_new_versions(tmp_path) -> None:
    from fedinf.audit.db import sqlite_connect, sqlite_migrate

    conn = sqlite_connect(tmp_path / "m.db")
    v1 = [(1, ["CREATE TABLE a (x INTEGER)"])]
    assert sqlite_migrate(conn, v1) == 1
    conn.execute("INSERT INTO a VALUES (1)")
    assert sqlite_migrate(conn, v1 + [(2, ["ALTER TABLE a ADD COLUMN y TEXT"])]) == 2
    assert sqlite_migrate(conn, v1 + [(2, ["ALTER TABLE a ADD COLUMN y TEXT"])]) == 2  # not applied twice
    assert conn.execute("SELECT x, y FROM a").fetchall() == [(1, None)]
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2]


async def test_write_after_close_fails_fast(store_factory) -> None:
    auditor = Auditor(store_factory)
    await auditor.write(AuditRecord(request_id="a"))
    await auditor.aclose()
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(auditor.write(AuditRecord(request_id="b")), timeout=5)


async def test_inline_auditor_for_sqlite_normal(tmp_path) -> None:
    from fedinf.audit import SqliteAuditStore

    auditor = Auditor(lambda: SqliteAuditStore(tmp_path / "a.db", synchronous="NORMAL"), inline=True)
    receipts = await asyncio.gather(*(auditor.write(AuditRecord(request_id=f"r{i}")) for i in range(200)))
    assert sorted(r.seq for r in receipts) == list(range(1, 201)) and auditor.batches < 100
    for i in range(20):  # one at a time too
        await auditor.write(AuditRecord(request_id=f"s{i}"))
    assert await auditor.read(lambda s: s.verify().ok)
    await auditor.aclose()
    assert SqliteAuditStore(tmp_path / "a.db").count() == 220


async def test_build_auditor_inline_only_without_fsync(tmp_path) -> None:
    base = default_config()
    cfg = base.model_copy(update={"server": base.server.model_copy(update={"state_dir": str(tmp_path)})})
    assert build_auditor(cfg)._inline is False  # FULL: commits wait on fsync, keep them off the loop
    normal = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"sqlite_synchronous": "normal"})})
    assert build_auditor(normal)._inline is True


def test_background_checkpoint_keeps_the_wal_bounded(tmp_path) -> None:
    import time as _time

    from fedinf.audit import SqliteAuditStore

    store = SqliteAuditStore(tmp_path / "a.db", synchronous="NORMAL", background_checkpoint=True)
    assert store.execute("PRAGMA wal_autocheckpoint") == [(0,)]
    for i in range(300):
        r = AuditRecord(request_id=f"r{i}")
        store.append([(r.to_dict(), r.time)])
    db = tmp_path / "a.db"
    for _ in range(50):  # within a few checkpoint intervals the pages land in the database file
        if db.stat().st_size > 200_000:
            break
        _time.sleep(0.1)
    assert db.stat().st_size > 200_000
    store.close()
    reader = SqliteAuditStore(db)
    assert reader.count() == 300 and reader.verify().ok


async def test_reader_reopens_after_connection_loss(store_factory) -> None:
    if store_factory.kind != "postgres":
        pytest.skip("connection loss is a PostgreSQL concern")
    import psycopg

    auditor = Auditor(store_factory)
    await auditor.write(AuditRecord(request_id="a"))
    pid = (await auditor.read(lambda s: s.execute("SELECT pg_backend_pid()")))[0][0]
    with psycopg.connect(store_factory.url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(Exception):
        await auditor.read(lambda s: s.count())
    assert await auditor.read(lambda s: s.count()) == 1
    await auditor.aclose()
