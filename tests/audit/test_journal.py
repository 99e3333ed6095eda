"""The audit journal (fedinf.audit.journal): framing, torn tails, crash recovery exactly once, several processes,
segment rotation and deletion, and failing closed when the journal cannot be written. Real files, real SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fedinf.audit import AuditQuery, Auditor, AuditRecord, SqliteAuditStore, build_auditor, open_audit_store
from fedinf.audit.journal import Journal, decode, encode, iter_entries, journal_dir, recover, replay_segment
from fedinf.config import default_config
from fedinf.errors import ServiceUnavailable

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _normal(path: Path) -> SqliteAuditStore:
    return SqliteAuditStore(path, synchronous="NORMAL")


def _ids(store: SqliteAuditStore) -> Counter[str]:
    return Counter(r["request_id"] for r in store.query(AuditQuery(limit=1_000_000)))


def _files(db: Path) -> list[str]:
    return sorted(p.name for p in journal_dir(db).iterdir() if p.name != "recover.lock")


def test_entries_round_trip(tmp_path) -> None:
    j = Journal(tmp_path / "j", segment_bytes=1 << 16)
    records = [AuditRecord(request_id=f"r{i}", key_id="k", content={"text": "é" * i}) for i in range(20)]
    seg, starts, end = j.append([encode(r.to_dict(), r.time) for r in records[:5]])
    seg2, starts2, end2 = j.append([encode(r.to_dict(), r.time) for r in records[5:]])
    assert seg == seg2 and starts2[0] == end and starts[0] == 0
    assert os.path.getsize(j.dir / seg) == 1 << 16  # preallocated
    got = list(iter_entries(j.dir / seg))
    assert [e for e, _ in got][4] == end and got[-1][0] == end2
    assert [decode(p) for _, p in got] == [(r.to_dict(), r.time, None) for r in records]
    assert [p for _, p in iter_entries(j.dir / seg, starts2[3])] == [p for _, p in got[8:]]  # from an offset
    j.close(remove=True)


@pytest.mark.parametrize("damage", ["cut_payload", "cut_header", "flip_byte", "garbage_header"])
def test_torn_tail_is_ignored(tmp_path, damage) -> None:
    j = Journal(tmp_path / "j", segment_bytes=1 << 16)
    entries = [encode({"request_id": f"r{i}", "n": i}, 1.0) for i in range(6)]
    seg, starts, end = j.append(entries)
    j.close(remove=False)
    path = j.dir / seg
    data = bytearray(path.read_bytes()[:end])
    last = starts[-1]
    if damage == "cut_payload":
        data = data[:end - 3]
    elif damage == "cut_header":
        data = data[:last + 5]
    elif damage == "flip_byte":
        data[end - 2] ^= 0x40
    else:
        data += b"\xff\xff\xff\x7f\x00\x01"  # a header claiming 2 GiB, then nothing
        last = end
    path.write_bytes(bytes(data) + b"\0" * 100)
    got = [decode(p)[0]["n"] for _, p in iter_entries(path)]
    assert got == list(range(6 if damage == "garbage_header" else 5))
    store = _normal(tmp_path / "a.db")  # replay stops at the same place, and replaying again adds nothing
    assert replay_segment(store, path) == len(got) and replay_segment(store, path) == 0
    assert store.count() == len(got) and store.journal_applied(seg) == (last, False)


CRASH_CHILD = r"""
import asyncio, os, signal, sys
from fedinf.audit import Auditor, AuditRecord, SqliteAuditStore
db, kill_at, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Store(SqliteAuditStore):  # the real store; SIGKILLs its process before the kill_at-th insert commits
    calls = 0
    def append(self, bodies, *, journal=None):
        Store.calls += 1
        if Store.calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().append(bodies, journal=journal)

async def main():
    a = Auditor(lambda: Store(db, synchronous="NORMAL"), journal=True, segment_bytes=8192)
    async def one(i):
        await a.write(AuditRecord(request_id=f"{tag}{i}"))
        print(f"acked {tag}{i}", flush=True)
    for burst in range(1000):
        await asyncio.gather(*(one(burst * 5 + i) for i in range(5)))
asyncio.run(main())
"""


def _run_crashing_child(db: Path, kill_at: int, tag: str = "r") -> set[str]:
    proc = subprocess.run([sys.executable, "-c", CRASH_CHILD, str(db), str(kill_at), tag], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("acked ")}


def test_killed_between_journal_and_insert_is_replayed_exactly_once(tmp_path) -> None:
    db = tmp_path / "audit.db"
    acked = _run_crashing_child(db, kill_at=40)
    store = _normal(db)
    before = _ids(store)
    journaled = {decode(p)[0]["request_id"] for seg in sorted(journal_dir(db).glob("*.seg")) for _, p in
                 iter_entries(seg)}
    pending = journaled - set(before)  # (retired segments are gone: everything in them is in the store)
    assert pending, "the last batch must be journaled but not inserted"
    assert acked <= set(before) | journaled
    applied = recover(store)  # what the next start (or `fedinf audit verify`) does
    after = _ids(store)
    assert applied == len(pending)
    assert set(after) == set(before) | journaled and max(after.values()) == 1, "every record exactly once"
    assert acked <= set(after)
    assert store.verify().ok and recover(store) == 0
    assert _files(db) == []  # the dead journal is gone (segments and lock)
    # a second crash, then a new Auditor's start replays it: the chain continues
    acked2 = _run_crashing_child(db, kill_at=7, tag="s")

    async def restart() -> None:
        a = Auditor(lambda: _normal(db), journal=True)
        await a.write(AuditRecord(request_id="after-restart"))
        await a.aclose()
    asyncio.run(restart())
    final = _ids(store)
    assert (acked | acked2 | {"after-restart"}) <= set(final) and max(final.values()) == 1
    report = store.verify()
    assert report.ok and report.last_seq == sum(final.values())


def test_verify_cli_sees_a_dead_writers_records(tmp_path) -> None:
    state = tmp_path / "state"
    acked = _run_crashing_child(state / "audit.db", kill_at=5)
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(f'server: {{state_dir: "{state}"}}\nzones: {{onprem: {{kind: onprem, clearance: restricted}}}}\n'
                   'models: [{id: fake, backend: fake, zone: onprem, license: Apache-2.0}]\n')
    out = subprocess.run([sys.executable, "-m", "fedinf", "audit", "verify", "--config", str(cfg)], text=True,
                         capture_output=True, env=dict(os.environ, PYTHONPATH=SRC), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert acked <= set(_ids(_normal(state / "audit.db")))


TWO_CHILD = r"""
import asyncio, sys
from fedinf.audit import Auditor, AuditRecord, SqliteAuditStore
db, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main():
    a = Auditor(lambda: SqliteAuditStore(db, synchronous="NORMAL"), journal=True, segment_bytes=16384, max_batch=16)
    for burst in range(n // 20):
        await asyncio.gather(*(a.write(AuditRecord(request_id=f"{tag}-{burst}-{i}")) for i in range(20)))
    await a.aclose()
asyncio.run(main())
"""


def test_two_processes_journal_into_one_chain(tmp_path) -> None:
    db = tmp_path / "audit.db"
    store = _normal(db)
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = [subprocess.Popen([sys.executable, "-c", TWO_CHILD, str(db), tag, "400"], env=env) for tag in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ids = _ids(store)
    assert len(ids) == 800 and max(ids.values()) == 1
    assert sum(k.startswith("a-") for k in ids) == 400
    report = store.verify()
    assert report.ok and report.last_seq == 800, report.problems[:5]
    assert _files(db) == [] and store.execute("SELECT count(*) FROM journal_applied") == [(0,)]


async def test_segments_rotate_and_are_deleted_once_synced(tmp_path) -> None:
    db = tmp_path / "audit.db"
    auditor = Auditor(lambda: _normal(db), journal=True, segment_bytes=4096)
    seen_segments = set()
    for i in range(120):
        receipt = await auditor.write(AuditRecord(request_id=f"r{i}", key_id="k"))
        assert receipt.seq is None and receipt.journal is not None and receipt.offset is not None
        seen_segments.add(receipt.journal)
        # (checked from the writer thread, once it has inserted the record: the reply does not wait for that)
        segs = await auditor.run(lambda s: list(journal_dir(db).glob("*.seg")))
        assert len(segs) <= 1, segs  # a full segment is retired as soon as it is applied and synced
    assert len(seen_segments) > 10
    rows = await auditor.run(lambda s: s.execute("SELECT retired, count(*) FROM journal_applied GROUP BY 1"))
    assert rows == [(0, 1), (1, len(seen_segments) - 1)]  # the current segment, and the deleted ones (kept retired)
    store = _normal(db)
    await auditor.aclose()
    assert _files(db) == [] and store.count() == 120 and store.verify().ok
    assert store.execute("SELECT count(*) FROM journal_applied") == [(0,)]  # a clean close drops the rows


async def test_insert_failure_after_journaling_is_caught_up(tmp_path) -> None:
    """The journal write succeeded, the SQLite insert failed: that record is acknowledged (durable in the journal);
    writes after the failure fail closed until the store works again, then the journal is replayed into it exactly
    once."""
    db = tmp_path / "audit.db"
    auditor = Auditor(lambda: _normal(db), journal=True)
    await auditor.write(AuditRecord(request_id="ok-1"))
    await auditor.run(lambda s: s.execute("ALTER TABLE audit_records RENAME TO hidden"))
    await auditor.write(AuditRecord(request_id="journaled-only"))  # durable in the journal: no error
    await auditor.run(lambda s: None)  # its insert (queued in the store thread after the reply) has failed by now
    with pytest.raises(ServiceUnavailable) as ei:
        await auditor.write(AuditRecord(request_id="refused"))
    assert ei.value.code == "audit_unavailable"
    await auditor.run(lambda s: s.execute("ALTER TABLE hidden RENAME TO audit_records"))
    await auditor.write(AuditRecord(request_id="ok-2"))
    await auditor.aclose()
    store = _normal(db)
    assert _ids(store) == Counter({"ok-1": 1, "journaled-only": 1, "ok-2": 1})
    assert store.verify().ok and _files(db) == []


async def test_fails_closed_when_the_journal_cannot_be_created(tmp_path) -> None:
    db = tmp_path / "audit.db"
    journal_dir(db).write_text("not a directory")
    auditor = Auditor(lambda: _normal(db), journal=True)
    with pytest.raises(ServiceUnavailable) as ei:
        await auditor.write(AuditRecord(request_id="x"))
    assert ei.value.code == "audit_unavailable"
    await auditor.aclose()
    assert _normal(db).count() == 0


async def test_fails_closed_when_the_journal_cannot_be_written(tmp_path) -> None:
    """Mid-run the journal directory becomes unusable (here: replaced by a file, which even root cannot write into):
    the next segment cannot be created, so writes fail closed; everything acknowledged before is in the store."""
    db = tmp_path / "audit.db"
    auditor = Auditor(lambda: _normal(db), journal=True, segment_bytes=2048)
    acked = []
    for i in range(5):
        await auditor.write(AuditRecord(request_id=f"r{i}"))
        acked.append(f"r{i}")
    jd = journal_dir(db)
    jd.rename(tmp_path / "moved")
    jd.write_text("not a directory")
    failed = 0
    for i in range(5, 15):
        try:
            await auditor.write(AuditRecord(request_id=f"r{i}"))
            acked.append(f"r{i}")
        except ServiceUnavailable as exc:
            assert exc.code == "audit_unavailable"
            failed += 1
    assert failed >= 8  # at most the rest of the open segment was usable
    await auditor.aclose()
    assert set(_ids(_normal(db))) == set(acked)


def test_config_turns_the_journal_on_by_default(tmp_path) -> None:
    base = default_config()
    cfg = base.model_copy(update={"server": base.server.model_copy(update={"state_dir": str(tmp_path)})})
    assert build_auditor(cfg)._use_journal is True
    off = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"sqlite_journal": False})})
    assert build_auditor(off)._use_journal is False
    normal = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"sqlite_synchronous": "normal"})})
    assert build_auditor(normal)._use_journal is False
    store = open_audit_store(cfg.audit, state_dir=tmp_path)  # journaled: the connection commits without fsync
    assert store.execute("PRAGMA synchronous") == [(1,)]
    store.close()
    store = open_audit_store(off.audit, state_dir=tmp_path)
    assert store.execute("PRAGMA synchronous") == [(2,)]
    store.close()


def test_a_queued_insert_of_a_retired_segment_is_not_applied_twice(tmp_path) -> None:
    """The race the two-process test once hit: the store thread retires a full segment (replaying a batch of it from
    the file) while that batch's own insert is still queued. The queued insert must then be a no-op."""
    from fedinf.audit.journal import JournalAppender

    store = _normal(tmp_path / "audit.db")
    appender = JournalAppender(store, segment_bytes=1024)
    records = [[AuditRecord(request_id=f"{tag}{i}") for i in range(2)] for tag in "xyz"]
    bodies = [[(r.to_dict(), r.time, None) for r in batch] for batch in records]
    seg_x, offsets_x = appender.write(bodies[0])  # segment 1 at offset 0 (queued for insert)
    seg_y, _ = appender.write(bodies[1])  # does not fit: segment 1 is sealed, segment 2 starts (queued too)
    assert offsets_x[0] == 0 and seg_y != seg_x and appender.journal.sealed == [seg_x]
    appender._retire_sealed(store)  # replays x from segment 1 and deletes the file before x's insert runs
    assert not (appender.journal.dir / seg_x).exists()
    appender.apply(store)  # x's queued insert (a no-op now), then y
    appender.write(bodies[2])
    appender.apply(store)
    assert _ids(store) == Counter({f"{t}{i}": 1 for t in "xyz" for i in range(2)})
    appender.close(store)
    assert store.verify().ok and _files(tmp_path / "audit.db") == []


async def test_reads_in_the_serving_process_see_every_acknowledged_record(tmp_path) -> None:
    """The reply does not wait for the SQLite insert, but the auditor's own readers (admin API, UI) wait for the
    inserts queued before them, so a query right after a reply finds its record."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    for i in range(30):
        await asyncio.gather(*(auditor.write(AuditRecord(request_id=f"r{i}-{j}")) for j in range(i % 4 + 1)))
        assert await auditor.read(lambda s: s.count()) == sum(k % 4 + 1 for k in range(i + 1))
    await auditor.aclose()


class _SlowDisk:
    """Journal writes that stall while ``on`` (see the ``slow_disk`` fixture); ``where``: each write's thread."""

    def __init__(self) -> None:
        self.on = False
        self.where: list[str] = []


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> _SlowDisk:
    """``JournalAppender.write`` sleeps 1.5 x SLOW_SYNC_S while ``slow_disk.on``. SLOW_SYNC_S is 100 ms, so that a real
    fdatasync on a busy disk (seen: 35 ms) is no stall here, and INLINE_SYNC_S 500 ms: what these tests check is the
    stall back-off, not the moving average (a busy CI disk can take >10 ms for the first fdatasync of a new segment,
    which alone lifts the average above the default 2 ms for a few writes)."""
    import threading
    import time

    from fedinf.audit import writer
    from fedinf.audit.journal import JournalAppender

    disk = _SlowDisk()
    real = JournalAppender.write

    def write(self, bodies):
        disk.where.append(threading.current_thread().name)
        if disk.on:
            time.sleep(writer.SLOW_SYNC_S * 1.5)
        return real(self, bodies)

    monkeypatch.setattr(JournalAppender, "write", write)
    monkeypatch.setattr(writer, "SLOW_SYNC_S", 0.1)
    monkeypatch.setattr(writer, "INLINE_SYNC_S", 0.5)
    return disk


async def test_journal_writes_leave_the_event_loop_while_the_disk_is_slow(tmp_path, monkeypatch, slow_disk) -> None:
    """Fast journal writes run on the event loop (no thread hand-offs); one slow write sends the next ones to the
    journal thread for a while, and they come back to the loop when that time has passed and writes are fast."""
    import threading

    from fedinf.audit import writer

    where, slow = slow_disk.where, slow_disk
    monkeypatch.setattr(writer, "FIRST_BACKOFF_S", 0.2)
    db = tmp_path / "audit.db"
    auditor = Auditor(lambda: _normal(db), journal=True)
    main = threading.current_thread().name
    for i in range(3):
        await auditor.write(AuditRecord(request_id=f"fast{i}"))
    assert where == [main] * 3
    slow.on = True
    await auditor.write(AuditRecord(request_id="slow"))  # measured slow (on the loop, once)
    slow.on = False
    for i in range(3):
        await auditor.write(AuditRecord(request_id=f"after{i}"))
    assert where[3] == main and all(w.startswith("fedinf-audit-journal") for w in where[4:7])
    await asyncio.sleep(0.25)  # the back-off passed: back on the loop
    for i in range(20):
        await auditor.write(AuditRecord(request_id=f"back{i}"))
    assert where[-1] == main
    await auditor.aclose()
    store = _normal(db)
    assert store.count() == 27 and store.verify().ok
    store.close()


async def test_the_stall_back_off_is_short_for_a_lone_stall_and_doubles_while_stalls_recur(tmp_path, monkeypatch,
                                                                                             caplog, slow_disk) -> None:
    """A lone stall keeps writes off the loop for FIRST_BACKOFF_S only (one slow fdatasync every ~5 s, in step with
    the kernel's writeback, used to cost 10 s of thread hand-offs each); a stall within STALL_MEMORY_S of the end of
    the previous back-off doubles it, up to SLOW_BACKOFF_S; a stall long after starts again from FIRST_BACKOFF_S.
    Each stall is logged."""
    from fedinf.audit import writer

    slow = slow_disk
    monkeypatch.setattr(writer, "FIRST_BACKOFF_S", 0.05)
    monkeypatch.setattr(writer, "SLOW_BACKOFF_S", 0.3)
    monkeypatch.setattr(writer, "STALL_MEMORY_S", 5.0)
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.write(AuditRecord(request_id="first"))
    backoffs = []
    for i in range(5):
        while not auditor._inline_ok():  # wait out the back-off: writes then run on the loop again
            await asyncio.sleep(0.01)
        slow.on = True
        await auditor.write(AuditRecord(request_id=f"slow{i}"))
        slow.on = False
        backoffs.append(auditor._backoff_s)
        assert not auditor._inline_ok()
    assert backoffs == [0.05, 0.1, 0.2, 0.3, 0.3] and auditor.stalls == 5
    assert sum("journal writes go to the journal thread" in r.getMessage() for r in caplog.records) == 5
    monkeypatch.setattr(writer, "STALL_MEMORY_S", 0.0)  # the next stall comes "long" after the last back-off
    while not auditor._inline_ok():
        await asyncio.sleep(0.01)
    slow.on = True
    await auditor.write(AuditRecord(request_id="later"))
    slow.on = False
    assert auditor._backoff_s == 0.05
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    assert store.count() == 7 and store.verify().ok
    store.close()


async def test_the_metrics_show_the_writers_records_commits_and_stalls(tmp_path, slow_disk) -> None:
    """``Metrics.watch_audit``: records, commits, journal stalls and whether writes are off the loop, at scrape
    time (a stall is a disk health signal an operator alerts on, not only a log line)."""
    from fedinf.metrics import Metrics

    slow = slow_disk
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    metrics = Metrics()
    metrics.watch_audit(auditor.stats)

    def scraped() -> dict[str, float]:
        out = {}
        for line in metrics.render().decode().splitlines():
            if line.startswith("fedinf_audit_"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    for i in range(3):
        await auditor.write(AuditRecord(request_id=f"r{i}"))
    got = scraped()
    assert got["fedinf_audit_records_total"] == 3 and got["fedinf_audit_commits_total"] == 3
    assert got["fedinf_audit_journal_stalls_total"] == 0 and got["fedinf_audit_journal_off_loop"] == 0
    assert 0 < got["fedinf_audit_journal_write_seconds"] < 0.5
    slow.on = True
    await auditor.write(AuditRecord(request_id="slow"))
    slow.on = False
    got = scraped()
    assert got["fedinf_audit_journal_stalls_total"] == 1 and got["fedinf_audit_journal_off_loop"] == 1
    assert got["fedinf_audit_records_total"] == 4
    await auditor.aclose()


async def test_inserts_are_batched_after_the_replies(tmp_path, monkeypatch) -> None:
    """Journaled records reach SQLite in batches: one store-thread insert for what waited INSERT_DELAY_S, or at once
    when INSERT_BATCH wait; another connection (another process) sees them then, the auditor's own reader at once."""
    from fedinf.audit import writer
    from fedinf.audit.journal import JournalAppender

    applied: list[int] = []
    real = JournalAppender.apply

    def apply(self, store):
        n = real(self, store)
        applied.append(n)
        return n

    monkeypatch.setattr(JournalAppender, "apply", apply)
    monkeypatch.setattr(writer, "INSERT_DELAY_S", 0.4)
    db = tmp_path / "audit.db"
    auditor = Auditor(lambda: _normal(db), journal=True)
    other = _normal(db)
    for i in range(10):
        receipt = await auditor.write(AuditRecord(request_id=f"r{i}"))
        assert receipt.journal is not None and receipt.seq is None  # durable in the journal, not yet inserted
    assert applied == [] and other.count() == 0
    await asyncio.sleep(0.8)
    assert applied == [10] and other.count() == 10  # one insert for the ten
    monkeypatch.setattr(writer, "INSERT_BATCH", 4)
    monkeypatch.setattr(writer, "INSERT_DELAY_S", 30.0)
    for i in range(9):
        await auditor.write(AuditRecord(request_id=f"b{i}"))
    for _ in range(100):  # handed over at the fourth and the eighth, without waiting for the delay (an insert
        if other.count() >= 18:  # takes every record journaled by the time it runs, so it may hold the ninth too)
            break
        await asyncio.sleep(0.02)
    assert other.count() >= 18 and len(applied) == 3
    assert await auditor.read(lambda s: s.count()) == 19  # the auditor's reader hands anything left over first
    assert other.count() == 19
    await auditor.aclose()
    assert other.verify().ok
    other.close()


async def test_journal_writes_leave_the_event_loop_while_other_requests_are_served(tmp_path, monkeypatch) -> None:
    """Alone, a journal write runs on the loop; while ``busy`` (other requests in flight) it runs in the journal
    thread, so the loop keeps serving them during the fdatasync. The gateway wires ``busy`` to its pool."""
    import threading

    from fedinf.audit.journal import JournalAppender
    from fedinf.gateway import Gateway

    where: list[str] = []
    real = JournalAppender.write

    def write(self, bodies):
        where.append(threading.current_thread().name)
        return real(self, bodies)

    monkeypatch.setattr(JournalAppender, "write", write)
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.write(AuditRecord(request_id="alone"))
    busy = {"on": True}
    auditor.busy = lambda: busy["on"]
    await asyncio.gather(*(auditor.write(AuditRecord(request_id=f"busy{i}")) for i in range(3)))
    busy["on"] = False
    await auditor.write(AuditRecord(request_id="alone again"))
    main = threading.current_thread().name
    assert where[0] == main and where[-1] == main
    assert where[1:-1] and all(w.startswith("fedinf-audit-journal") for w in where[1:-1])
    assert await auditor.read(lambda s: s.count()) == 5
    await auditor.aclose()

    from fedinf.config import Config

    cfg = Config.model_validate({
        "server": {"state_dir": str(tmp_path / "state")}, "zones": {"cloud": {"kind": "cloud", "clearance": "public"}},
        "models": [{"id": "m", "backend": "openai", "zone": "cloud", "license": "proprietary-api",
                    "endpoints": [{"url": "http://127.0.0.1:9/v1"}]}]})
    gw = Gateway.assemble(cfg, access=None)
    assert isinstance(gw.auditor, Auditor) and not gw.auditor.busy()
    gw.pool.enter()
    assert gw.auditor.busy()
    gw.pool.leave()
    assert not gw.auditor.busy()
    await gw.auditor.aclose()


async def test_concurrent_writers_share_commits_even_when_nothing_says_busy(tmp_path) -> None:
    """A standalone Auditor (nothing wires ``busy``): a write from another task in the same turn of the loop as an
    inline one takes the queue, so concurrent writers share fdatasyncs; one task writing in a loop stays inline."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()

    async def writer(i: int) -> None:
        for j in range(10):
            receipt = await auditor.write(AuditRecord(request_id=f"w{i}-{j}"))
            assert receipt.journal is not None  # durable when it returns, either way

    await asyncio.gather(*(writer(i) for i in range(32)))
    assert auditor.records == 320 and auditor.batches < 320 // 4  # group commits, not one fdatasync each
    before = auditor.batches
    for j in range(20):  # one task alone: each write journaled inline (a batch of one), in order
        await auditor.write(AuditRecord(request_id=f"solo{j}"))
    assert auditor.batches == before + 20
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    assert store.count() == 340 and store.verify().ok
    store.close()


async def test_flush_puts_every_written_record_in_the_store(tmp_path) -> None:
    """A batch worker's loop stops between batches (a Ray actor), and with it the timers that sync and insert what
    was written: ``flush`` at the end of a batch makes the batch's records visible to other processes at once."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    intent = auditor.begin(lambda: AuditRecord(request_id="r0"))
    await asyncio.sleep(0)  # journaled while its call runs
    await auditor.write(AuditRecord(request_id="r0"), intent)  # written behind: not yet synced nor inserted
    for i in range(1, 4):
        await auditor.write(AuditRecord(request_id=f"r{i}"))
    other = _normal(tmp_path / "audit.db")
    assert other.count() < 4  # nothing has had time to reach the store yet
    await auditor.flush()
    assert other.count() == 4 and other.verify().ok
    assert auditor._journal is not None and auditor._journal.durable()
    other.close()
    await auditor.aclose()
