"""The audit journal: a durable append-only log in front of the SQLite audit store.

Why: making a SQLite commit durable (``synchronous=FULL``) fsyncs about seven WAL pages per commit (the record, six
index entries, the chain head). The journal makes a record durable with one small ``pwrite`` + ``fdatasync`` into a
preallocated file instead; the indexed, hash-chained insert into SQLite then runs with ``synchronous=NORMAL`` right
after, without the reply waiting for it.

Layout, next to the database ``audit.db``: the directory ``audit.db-journal.d/``. Each live writer (one per
:class:`~fedinf.audit.Auditor`, so one per process) owns one journal ``<id>``: the file ``<id>.lock``, held with
``flock`` while its owner lives, and segments ``<id>.<n>.seg``, preallocated to ``segment_bytes`` (64 MiB) and rotated
when full. An entry is an 8-byte header (payload length, CRC32 of length and payload) and the payload (JSON
``[epoch_ts, body]``). Reading stops at the first header that is zero (preallocated space), runs past the file, or
fails its CRC: a torn tail left by a crash is ignored. Only entries whose ``fdatasync`` returned were acknowledged.

Intents (write-ahead records of requests in flight): a lone request journals an *intent* entry (``[ts, body,
"i:<key>"]``, the record as known before the upstream call: who, data class, eligible models and zones) whose
``fdatasync`` runs while the upstream call is under way; its final record (``[ts, body, "f:<key>"]``) is written
before the reply and synced within :data:`fedinf.audit.writer.OUTCOME_SYNC_S` (see :class:`fedinf.audit.Auditor`).
Intents are never inserted while their writer lives. When a segment is rotated, open intents are written again at
the start of the next one, so a segment can be retired whatever is in flight. Recovery inserts each intent of a
dead writer that has no final record anywhere in its journal as a record of its own, status 503 and error code
``interrupted`` (the gateway stopped before the outcome was durable): a request whose data may have left still
has its record. The store thread inserts only entries whose ``fdatasync`` has returned.

Exactly once: the store keeps, per segment, how many bytes of it are applied (table ``journal_applied``), updated in
the same transaction that inserts those entries. With ``synchronous=NORMAL`` a power loss may drop the last commits,
but their offset update goes with them, so replaying from the stored offset restores exactly those records.

Durability argument, step by step:

1. ``Auditor.write`` returns only after the record's entry (or, for a lone request, its intent entry; the final
   entry is then written, in the page cache, and synced shortly after) is ``fdatasync``ed into a segment whose size
   (preallocated) and directory entry were made durable when it was created: it survives a process crash and a
   power loss.
2. A SQLite commit may be lost (power loss, NORMAL) only together with its offset update: replay redoes it.
3. A segment is deleted only once every entry in it is applied *and* durable: it is marked retired in a commit with
   ``synchronous=FULL`` (its WAL fsync makes every earlier commit durable, the WAL being one file), then unlinked
   and the directory fsynced. Its row stays (retired) until no insert of it can be queued any more (the owner's
   clean close, or recovery), so neither a late queued insert nor a segment file that reappears after a power loss
   is applied twice.
4. Journals of dead writers (their lock can be taken) are replayed, retired and deleted by the next writer that
   starts and by every process that opens the store through :func:`fedinf.audit.open_audit_store` (``fedinf audit
   verify`` included), one at a time under ``recover.lock``.

The chain is linked when the rows are inserted (``BEGIN IMMEDIATE`` reads the head), so several processes sharing one
database still produce one linear chain; replayed records are linked after whatever is in the chain by then.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from fedinf.audit.store import JournalOffsetMismatch, SqliteAuditStore

log = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024 * 1024
REPLAY_BATCH = 512
_HDR = struct.Struct("<II")  # payload length, CRC32 of (the 4 length bytes + payload)
_MAX_ENTRY = 1 << 30
_CHUNK = 1 << 20
_fdatasync = getattr(os, "fdatasync", os.fsync)

Bodies = list[tuple[dict[str, Any], float]]
#: What is journaled: (body, epoch ts, tag). ``tag`` is None for a plain record, ``"i:<key>"`` for an intent and
#: ``"f:<key>"`` for the final record that closes intent ``<key>``.
Entries = list[tuple[dict[str, Any], float, "str | None"]]
Mark = tuple[int, int]  # (segment number, byte offset in it): how far this journal is written or durable
#: The error code of a record made at recovery from an intent whose outcome never became durable.
INTERRUPTED = "interrupted"


def journal_dir(db_path: Path) -> Path:
    """Where the journals of the database at ``db_path`` live."""
    return db_path.with_name(db_path.name + "-journal.d")


def encode(body: dict[str, Any], ts: float, tag: str | None = None) -> bytes:
    """One framed entry: header + JSON ``[ts, body]`` (``[ts, body, tag]`` for intents and their finals)."""
    payload = orjson.dumps([ts, body] if tag is None else [ts, body, tag])
    head = struct.pack("<I", len(payload))
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def decode(payload: bytes) -> tuple[dict[str, Any], float, str | None]:
    """``(body, ts, tag)`` of one entry's payload."""
    vals = orjson.loads(payload)
    return vals[1], float(vals[0]), (vals[2] if len(vals) > 2 else None)


def is_intent(tag: str | None) -> bool:
    return tag is not None and tag.startswith("i:")


def interrupted(body: dict[str, Any]) -> dict[str, Any]:
    """The record of a request whose intent is all that became durable (its writer stopped mid-request)."""
    return {**body, "status": 503, "error_code": INTERRUPTED, "latency_ms": None}


def iter_entries(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(end offset, payload)`` of each complete entry of the segment at ``path`` from ``offset`` on; stops at the
    first zero, torn or corrupt header or payload (the end of what was acknowledged)."""
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        buf, i, pos, eof = b"", 0, offset, False  # buf[i] is at file offset pos
        while True:
            need = _HDR.size
            if len(buf) - i >= need:
                n, crc = _HDR.unpack_from(buf, i)
                if n == 0 or n > _MAX_ENTRY:
                    return
                need += n
            if len(buf) - i < need:
                if eof:
                    return
                more = f.read(max(_CHUNK, need))
                eof = not more
                buf, i = buf[i:] + more, 0
                continue
            payload = buf[i + _HDR.size:i + need]
            if zlib.crc32(payload, zlib.crc32(buf[i:i + 4])) != crc:
                return
            i += need
            pos += need
            yield pos, payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s exclusive flock, or None when someone else holds it (or the file is gone)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def replay_segment(store: SqliteAuditStore, path: Path, upto: int | None = None) -> int:
    """Apply the records of ``path`` after its applied offset, up to byte ``upto`` (exactly once; intents are passed
    over); return how many were applied."""
    offset, retired = store.journal_applied(path.name)
    if retired:
        return 0
    done, batch, start, end, seen = 0, [], offset, offset, 0
    for stop, payload in iter_entries(path, offset):
        if upto is not None and stop > upto:
            break
        end, seen = stop, seen + 1
        body, ts, tag = decode(payload)
        if not is_intent(tag):
            batch.append((body, ts))
        if seen >= REPLAY_BATCH:
            store.append(batch, journal=(path.name, start, end))
            done, batch, start, seen = done + len(batch), [], end, 0
    if end > start:
        store.append(batch, journal=(path.name, start, end))
        done += len(batch)
    return done


def insert_interrupted(store: SqliteAuditStore, jid: str, segments: list[Path]) -> int:
    """Insert (once) a record for each intent in ``segments`` (all of dead journal ``jid``) that no final closes."""
    opened: dict[str, tuple[dict[str, Any], float]] = {}
    closed: set[str] = set()
    for seg in segments:
        for _, payload in iter_entries(seg):
            body, ts, tag = decode(payload)
            if tag is None:
                continue
            if is_intent(tag):
                opened.setdefault(tag[2:], (body, ts))
            else:
                closed.add(tag[2:])
    return record_interrupted(store, jid, [(b, ts) for key, (b, ts) in opened.items() if key not in closed])


def record_interrupted(store: SqliteAuditStore, jid: str, intents: Bodies) -> int:
    """Insert (once per journal ``jid``) a record for each of ``intents``, requests that never finished."""
    orphans = sorted(((interrupted(b), ts) for b, ts in intents), key=lambda item: item[1])
    if not orphans:
        return 0
    try:  # the marker row makes this exactly once, like a segment's applied offset
        store.append(orphans, journal=(f"{jid}.interrupted", 0, 1))
    except JournalOffsetMismatch:
        return 0
    log.warning("audit journal: %d request(s) of writer %s never finished; recorded as %r", len(orphans), jid,
                INTERRUPTED)
    return len(orphans)


def retire(store: SqliteAuditStore, directory: Path, names: list[str], *, forget: bool = True) -> None:
    """Delete fully applied segments: mark them retired (a synced commit), unlink, fsync the directory, then (with
    ``forget``) drop their rows. Keep the rows while batches of these segments may still be queued for insert: a
    retired row makes such a late insert a no-op (offset mismatch), where a missing row would let it in twice."""
    if not names:
        return
    store.retire_journals(names)
    for name in names:
        (directory / name).unlink(missing_ok=True)
    _fsync_dir(directory)
    if forget:
        store.forget_journals(names)


def recover(store: SqliteAuditStore) -> int:
    """Replay and delete the journals of dead writers next to ``store``'s database; return the records applied."""
    d = journal_dir(store.path)
    if not d.is_dir():
        return 0
    applied = 0
    with _exclusive(d / "recover.lock"):
        ids = {p.name.split(".", 1)[0] for p in d.glob("*.seg")}
        ids |= {p.name[:-len(".lock")] for p in d.glob("*.lock") if p.name != "recover.lock"}
        for jid in sorted(ids):
            lock = d / f"{jid}.lock"
            fd = _try_lock(lock)
            if fd is None and lock.exists():
                continue  # its owner is alive
            try:
                segments = sorted(d.glob(f"{jid}.*.seg"))
                for seg in segments:
                    applied += replay_segment(store, seg)
                applied += insert_interrupted(store, jid, segments)
                retire(store, d, [s.name for s in segments] + [f"{jid}.interrupted"])
                lock.unlink(missing_ok=True)
                _fsync_dir(d)
            finally:
                if fd is not None:
                    os.close(fd)
    if applied:
        log.warning("audit journal recovery: %d record(s) of stopped writers applied to %s", applied, store.path)
    return applied


class Journal:
    """This writer's journal: its lock, the segment being appended to, and full segments awaiting retirement.
    One thread writes at a time (the Auditor's rule); :meth:`sync` may run in another thread meanwhile (``_io``
    guards the segment's state; the fdatasync itself runs on a duplicate of the descriptor, outside the lock)."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        new = not directory.is_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if new:
            _fsync_dir(directory.parent)
        with _exclusive(directory / "recover.lock"):  # no recoverer sees the lock file before it is locked
            self._lock: int | None = os.open(directory / f"{self.id}.lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._n = 0
        self._fd: int | None = None
        self._pos = 0
        self._synced = 0  # bytes of the current segment known durable
        self._io = threading.Lock()
        self.current: str | None = None
        self.sealed: list[str] = []  # rotated out (or abandoned after an error): retire once applied
        self._sealed_lock = threading.Lock()  # the journal thread seals, the store thread retires

    def append(self, entries: list[bytes]) -> tuple[str, list[int], int]:
        """Write framed ``entries`` and fdatasync them: ``(segment, start offset of each entry, end offset)``.
        On an error nothing is acknowledged and the segment is abandoned (the next append starts a new one)."""
        seg, _, starts, end = self.put(entries)
        self.sync()
        return seg, starts, end

    def put(self, entries: list[bytes], carry: Callable[[], list[bytes]] | None = None
            ) -> tuple[str, int, list[int], int]:
        """Write framed ``entries`` after what is there, not synced (:meth:`sync`): ``(segment, first byte written,
        start offset of each entry, end offset)``. When they do not fit, the segment is synced and sealed and the
        next one started with ``carry()``'s entries (the open intents) before them. On an error the segment is
        abandoned (the next put starts a new one) and nothing in it after the last sync may be taken as durable."""
        data = b"".join(entries)
        with self._io:
            first_entries: list[bytes] = []
            if self._fd is None or (self._pos and self._pos + len(data) > self.segment_bytes):
                self._rotate()
                first_entries = carry() if carry is not None else []
            assert self._fd is not None and self.current is not None
            first = self._pos
            if first_entries:
                data = b"".join(first_entries) + data
            try:
                view, written = memoryview(data), 0
                while written < len(data):
                    written += os.pwrite(self._fd, view[written:], first + written)
            except OSError:
                self._seal()
                raise
            self._pos += len(data)
            starts, at = [], first + sum(map(len, first_entries))
            for e in entries:
                starts.append(at)
                at += len(e)
            return self.current, first, starts, self._pos

    def sync(self) -> None:
        """fdatasync what is written: every :meth:`put` that returned before this call is then durable
        (:meth:`durable`). On an error the segment is abandoned and the error raised."""
        with self._io:
            if self._fd is None or self._synced >= self._pos:
                return
            fd, n, target = os.dup(self._fd), self._n, self._pos
        try:
            _fdatasync(fd)
        except OSError:
            with self._io:
                if self._n == n:
                    self._seal()
            raise
        finally:
            os.close(fd)
        with self._io:
            if self._n == n and target > self._synced:
                self._synced = target

    def written_mark(self) -> Mark:
        return self._n, self._pos

    def durable_offset(self) -> int:
        """Bytes of the current segment known durable."""
        return self._synced

    def durable(self, mark: Mark) -> bool:
        """Whether everything up to ``mark`` is durable (an earlier segment was synced when it was rotated)."""
        n, synced = self._n, self._synced
        return mark[0] < n or (mark[0] == n and mark[1] <= synced)

    def seal(self) -> None:
        """Stop appending to the current segment (it joins :attr:`sealed`)."""
        with self._io:
            self._seal()

    def _seal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.current is not None:
            with self._sealed_lock:
                self.sealed = [*self.sealed, self.current]
            self.current = None

    def _rotate(self) -> None:
        """Sync and seal the current segment and start the next: preallocated and synced, so appends into it change
        no metadata (an fdatasync then flushes just the data), and its directory entry is durable."""
        if self._fd is not None and self._synced < self._pos:
            try:
                _fdatasync(self._fd)
            except OSError:
                self._seal()
                raise
        self._seal()
        self._n += 1
        name = f"{self.id}.{self._n:06d}.seg"
        fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, self.segment_bytes)
            os.fsync(fd)
            _fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            (self.dir / name).unlink(missing_ok=True)
            raise
        self._fd, self._pos, self._synced, self.current = fd, 0, 0, name

    def segments(self) -> list[str]:
        """Every segment of this journal still on disk, oldest first."""
        current = self.current  # read before sealed: a segment being sealed meanwhile is then in one or both
        sealed = self.sealed
        return sealed + ([current] if current and current not in sealed else [])

    def forget(self, names: list[str]) -> None:
        """``names`` were retired (deleted)."""
        with self._sealed_lock:
            self.sealed = [s for s in self.sealed if s not in names]

    def close(self, *, remove: bool) -> None:
        """Close the segment and release the lock; ``remove``: delete the lock file (the segments must be gone)."""
        self.seal()
        if self._lock is None:
            return
        if remove:
            (self.dir / f"{self.id}.lock").unlink(missing_ok=True)
            _fsync_dir(self.dir)
        os.close(self._lock)
        self._lock = None


class JournalAppender:
    """Journal first, then the store, in two threads: :meth:`write` (the journal thread) makes a batch durable and
    queues it; :meth:`apply` (the store thread, which owns the store) inserts what is queued, merging consecutive
    batches into one transaction. The :class:`~fedinf.audit.Auditor` acknowledges a batch as soon as :meth:`write`
    returns, so the insert never delays a reply and a slow insert never delays the next batch's durability."""

    def __init__(self, store: SqliteAuditStore, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        """Recover dead writers' journals (errors are logged: their records stay on disk for the next try), then
        open this writer's journal."""
        try:
            recover(store)
        except Exception as exc:  # noqa: BLE001 - their entries are safe on disk; the next start retries
            log.error("audit journal recovery failed (retried at the next start): %s", exc)
        self.journal = Journal(journal_dir(store.path), segment_bytes=segment_bytes)
        self.behind = False  # an insert failed: the journal holds acknowledged entries the store lacks
        #: journaled, not yet inserted: (segment, start, end, records, mark); inserted once durable (mark)
        self._pending: deque[tuple[str, int, int, Bodies, Mark]] = deque()
        self.open: dict[str, tuple[float, dict[str, Any]]] = {}  # intents without a final yet, by key
        self._retry_retire = 0.0
        self._retired: list[str] = []  # deleted segments whose rows are kept until close

    def write(self, entries: Entries) -> tuple[str, list[int]]:
        """Encode, append and fdatasync ``entries``; return (segment, entry offsets) once durable. Raises (nothing
        acknowledged) if they cannot be made durable."""
        out = self.put(entries)
        self.journal.sync()
        return out

    def put(self, entries: Entries) -> tuple[str, list[int]]:
        """Encode and append ``entries`` without syncing (durable after the next :meth:`sync`); return (segment,
        entry offsets). Intents are remembered until their final is put (and carried into the next segment)."""
        seg, first, starts, end = self.journal.put([encode(b, t, tag) for b, t, tag in entries], self._carry)
        records: Bodies = []
        for body, ts, tag in entries:
            if tag is None:
                records.append((body, ts))
            elif is_intent(tag):
                self.open[tag[2:]] = (ts, body)
            else:
                self.open.pop(tag[2:], None)
                records.append((body, ts))
        self._pending.append((seg, first, end, records, self.journal.written_mark()))
        return seg, starts

    def sync(self) -> None:
        """fdatasync what is put (raises if it cannot: see :meth:`Journal.sync`)."""
        self.journal.sync()

    def mark(self) -> Mark:
        """How far this journal is written."""
        return self.journal.written_mark()

    def durable(self, mark: Mark | None = None) -> bool:
        """Whether what was put up to ``mark`` (default: everything) is durable."""
        return self.journal.durable(mark if mark is not None else self.journal.written_mark())

    def _carry(self) -> list[bytes]:
        return [encode(body, ts, "i:" + key) for key, (ts, body) in self.open.items()]

    def apply(self, store: SqliteAuditStore) -> int:
        """Store thread: insert every queued batch (exactly once: each moves its segment's applied offset), then
        retire full segments. Raises if the store fails; :attr:`behind` is then set and the entries stay in the
        journal for :meth:`catch_up`."""
        items = []
        while self._pending and self.journal.durable(self._pending[0][4]):  # never a record not yet durable
            seg, start, end, bodies, _ = self._pending.popleft()
            items.append((seg, start, end, bodies))
        if self.behind:
            return 0  # catch_up replays them from the journal
        done = 0
        try:
            for seg, start, end, bodies in _merge(items):
                try:
                    store.append(bodies, journal=(seg, start, end))
                    done += len(bodies)
                except JournalOffsetMismatch:  # a replay got there first (retiring a full segment, a catch-up)
                    offset, retired = store.journal_applied(seg)
                    if retired or offset >= end:
                        continue  # all of it is applied already
                    done += self.catch_up(store)  # part of it: finish from the files (they hold every item)
                    break
        except BaseException:
            self.behind = True
            raise
        if self.journal.sealed and time.monotonic() >= self._retry_retire:
            self._retire_sealed(store)
        return done

    def catch_up(self, store: SqliteAuditStore) -> int:
        """Store thread: apply what this journal holds beyond the store's applied offsets (what is durable of it)."""
        current, synced = self.journal.current, self.journal.durable_offset()
        n = sum(replay_segment(store, self.journal.dir / s, synced if s == current else None)
                for s in self.journal.segments())
        if self.behind and n:
            log.warning("audit journal: %d acknowledged record(s) inserted after a failure", n)
        self.behind = False
        return n

    def _retire_sealed(self, store: SqliteAuditStore) -> None:
        sealed = list(self.journal.sealed)
        try:
            for name in sealed:  # entries not inserted yet (queued, or in an abandoned segment) are replayed
                replay_segment(store, self.journal.dir / name)
            retire(store, self.journal.dir, sealed, forget=False)  # rows dropped at close (see retire)
            self._retired += sealed
        except Exception as exc:  # noqa: BLE001 - kept on disk; retried later
            log.warning("audit journal: retiring %d segment(s) failed (retried): %s", len(sealed), exc)
            self._retry_retire = time.monotonic() + 5.0
            return
        self.journal.forget(sealed)

    def close(self, store: SqliteAuditStore | None) -> None:
        """Store thread, once the journal thread is idle: apply everything, retire every segment and remove this
        journal; if that fails, release it for the next start's recovery (the entries stay on disk)."""
        self._pending.clear()  # catch_up reads them from the files
        try:
            if store is None:
                raise RuntimeError("no audit store")
            self.journal.sync()
            self.journal.seal()
            self.catch_up(store)
            segments = self.journal.segments()
            record_interrupted(store, self.journal.id, [(b, ts) for ts, b in self.open.values()])  # never finished
            retire(store, self.journal.dir, segments + [f"{self.journal.id}.interrupted"])
            store.forget_journals(self._retired)  # nothing is queued any more
        except Exception as exc:  # noqa: BLE001
            log.error("audit journal %s left for recovery at the next start: %s", self.journal.id, exc)
            self.journal.close(remove=False)
            return
        self.journal.close(remove=True)


def _merge(items: list[tuple[str, int, int, Bodies]]) -> list[tuple[str, int, int, Bodies]]:
    """Consecutive batches of one segment (each starting where the previous ended) as one."""
    out: list[tuple[str, int, int, Bodies]] = []
    for seg, start, end, bodies in items:
        if out and out[-1][0] == seg and out[-1][2] == start:
            out[-1] = (seg, out[-1][1], end, out[-1][3] + bodies)
        else:
            out.append((seg, start, end, bodies))
    return out
