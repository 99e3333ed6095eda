"""The Auditor: durable writes with group commit.

``await auditor.write(record)`` returns a :class:`Receipt` only once the record is durable. Records written while a
commit is in flight wait in a queue; the next commit takes all of them (up to ``max_batch``) at once, so under load
the cost of making them durable (an fsync) is shared by many requests and throughput holds, while a lone request pays
exactly one. The store is used from a single dedicated thread (it is thread-confined), so the event loop never blocks
on the database.

Durable means committed to the store, or, with the journal on (SQLite, see :mod:`fedinf.audit.journal`), written
and fdatasynced to this process's journal. A lone write (nothing queued, and ``Auditor.busy`` says nothing
else is being served) does that itself on the event loop while such writes are fast, cheaper than a thread hand-off;
under load, or while the disk is slow, the writer task does it in a journal thread, so the loop keeps serving. The
callers are acknowledged at once; the store thread inserts the journaled records into SQLite (``synchronous=NORMAL``)
in batches (:data:`INSERT_DELAY_S`, :data:`INSERT_BATCH`); whatever an insert misses is replayed from the journal.
After a failed insert, writes fail closed until the replay succeeds.

Intents (journal on, ``intents=True``): after :meth:`Auditor.begin`, a lone request's record as known before its
upstream call is built, journaled and fdatasynced on the loop's next turn, which comes once that call is sent and
under way; ``write`` of the final record with that intent (the pipeline completes the intent's body with the outcome)
then only writes it (durable within :data:`OUTCOME_SYNC_S`, by the next request's intent sync or by a check in the
journal thread), so the reply neither waits for an fdatasync after the call nor for the intent before it.

If the store fails, every waiting ``write`` raises :class:`ServiceUnavailable` (``audit_unavailable``): the caller
must not deliver a response whose record is not durable (fail closed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from fedinf.audit.chain import ChainedRow
from fedinf.audit.journal import SEGMENT_BYTES, Entries, JournalAppender, Mark
from fedinf.audit.record import Recordable
from fedinf.audit.store import AuditStore, SqliteAuditStore
from fedinf.errors import ConfigError, FedinfError, ServiceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
_Item = tuple[dict[str, Any], float, "str | None", "asyncio.Future[Receipt]"]  # body, ts, journal tag, receipt
_MAX_QUEUED_INSERTS = 64  # journaled batches waiting for the store thread before journaling waits too
#: A journal write whose recent duration (moving average) is at most this runs on the event loop: on a disk that
#: syncs ~900 bytes in 0.1-0.5 ms that is cheaper than the thread hand-offs (measured: one durable write at
#: concurrency 1, p50 0.48 -> 0.33 ms, bench/gateway_overhead/NOTES.md "Session 3: audit hand-offs"). 0.5 ms was too
#: tight: under load this VM's fdatasync takes ~0.5 ms at the median, and writes kept flipping to the thread.
INLINE_SYNC_S = 0.002
#: One journal write slower than this sends the next ones to the journal thread for a while (a stalling disk
#: must not stall the event loop again); they come back to the loop once writes are fast again. Not lower: on a VM
#: disk whose fdatasync takes ~0.15 ms, single writes of 2-10 ms come every few seconds, and a 2 ms threshold kept
#: nearly every write in the thread (~3 more context switches and a loop wake-up per write; bench NOTES, session 4).
#: Jitter below this still moves the moving average above, which hands a few writes to the thread.
SLOW_SYNC_S = 0.02
#: How long writes stay in the journal thread after such a stall: FIRST_BACKOFF_S after a lone one; doubled, up to
#: SLOW_BACKOFF_S, for a stall that comes within STALL_MEMORY_S of the end of the previous back-off (a disk that
#: keeps stalling). Lone stalls are the common case: on these VMs one fdatasync in ~5 s takes 50-150 ms, in step with
#: the kernel's periodic writeback and ext4 journal commit, while a checkpoint of SQLite's own writes does not line up
#: with them. A flat 10 s back-off after each of those kept every write in the thread (intents off, ~+0.4 ms per
#: request at concurrency 1; CI's gateway runs: the first c=1 cell after the c=16 warm-up). Writes come back to the
#: loop only once the journal thread's own writes have brought the moving average under INLINE_SYNC_S again.
FIRST_BACKOFF_S = 0.25
SLOW_BACKOFF_S = 10.0
STALL_MEMORY_S = 2.0
#: Journaled records are inserted into SQLite in batches: the store thread is handed the records waiting
#: INSERT_DELAY_S after the first of them, or at once when INSERT_BATCH wait. Waking a thread per record (and the loop
#: again when it is done) cost more than the insert itself at low load, and one transaction per record writes every
#: index page to the WAL again (~130 us per record alone, ~30 us each in tens). Readers in this process (admin API,
#: UI) hand over what waits first; another process sees a record at most about this long after its reply. 5 ms
#: (session 4) still meant a store-thread batch of ~3 records every few requests at concurrency 1, each holding the
#: GIL against the loop (strace: 200-300 us GIL waits next to it); 50 ms batches ~25 (CPU per request at c=1 -0.1 ms,
#: bench/gateway_overhead/NOTES.md "Session 5").
INSERT_DELAY_S = 0.05
INSERT_BATCH = 256
#: A lone request's final record (its intent durable already, see :meth:`Auditor.begin`) is written to the journal
#: before the reply and fdatasynced at most this long after it; in practice the next request's intent sync covers it
#: sooner. Until then it survives a process crash (it is in the page cache) but not a power loss; the intent does.
OUTCOME_SYNC_S = 0.01


@dataclass(slots=True, eq=False)
class Intent:
    """A request's write-ahead record (:meth:`Auditor.begin`). It is journaled at the loop's next turn, once the
    caller has sent its upstream request: then ``mark`` is where the journal has to be durable for it to be and
    ``body`` what was journaled (the final record is that body completed, :class:`~fedinf.audit.record.Completion`).
    Until then both are None; a final that comes first cancels it (``make`` is dropped, nothing is journaled)."""

    key: str
    make: Callable[[], Recordable] | None = None
    mark: Mark | None = None
    body: dict[str, Any] | None = None

    @property
    def journaled(self) -> bool:
        return self.mark is not None


@dataclass(frozen=True, slots=True)
class AuditorStats:
    """What the metrics read of an :class:`Auditor` at scrape time (:meth:`Auditor.stats`)."""

    records: int  # records made durable since start (each final; intents are not counted)
    commits: int  # journal writes / store commits that made them durable
    stalls: int  # journal writes on the event loop slower than SLOW_SYNC_S
    write_s: float  # moving average of a journal write's duration (write + fdatasync)
    off_loop: bool  # journal writes go to the journal thread now (a stall's back-off, or slow writes)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a durable record landed. Without the journal: its chain position (``seq``, ``hash``). With the journal:
    ``seq`` and ``hash`` are None (the record is linked into the chain just after the reply) and ``journal`` /
    ``offset`` name the segment file and byte offset of its entry."""

    seq: int | None
    hash: str | None
    journal: str | None = None
    offset: int | None = None


class AuditSink(Protocol):
    """Where the pipeline writes audit records: :class:`Auditor` (durable), :class:`NullAuditor` (audit off), or a
    test double. ``write`` returns only once the record is durable."""

    async def start(self) -> None: ...

    def begin(self, make: Callable[[], Recordable]) -> Intent | None: ...

    async def write(self, record: Recordable, intent: Intent | None = None) -> object: ...

    async def flush(self) -> None: ...

    async def aclose(self) -> None: ...


class Auditor:
    """Group-committing writer over an :class:`AuditStore` built by ``store_factory`` in the writer thread."""

    def __init__(self, store_factory: Callable[[], AuditStore], *, max_batch: int = 512, inline: bool = False,
                 journal: bool = False, segment_bytes: int = SEGMENT_BYTES, intents: bool = True) -> None:
        """``inline``: commit on the event loop instead of the writer thread. Only for stores whose commit never
        waits on a disk flush or a network (SQLite with synchronous=NORMAL): it saves two thread hand-offs per
        commit, which cost milliseconds on a busy machine; with an fsync per commit it would stall the loop.

        ``journal``: make records durable in a journal next to the database before inserting them (the store must
        be a :class:`SqliteAuditStore`, normally opened with synchronous=NORMAL); ``segment_bytes``: its segment
        size. Dead writers' journals are replayed at start. ``intents``: lone requests journal intents
        (:meth:`begin`); off, ``begin`` always declines."""
        if journal and inline:
            raise ValueError("the journal waits on fdatasync: it cannot run inline")
        self._factory = store_factory
        self._max_batch = max_batch
        self._inline = inline
        self._use_journal = journal
        self._segment_bytes = segment_bytes
        self._journal: JournalAppender | None = None
        self._journal_executor = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fedinf-audit-journal")
                                  if journal else None)
        #: Queued store-thread inserts (journal on). Plain executor futures: the loop is not woken when one is done
        #: (only readers, back-pressure and close wait for them).
        self._inserts: deque[concurrent.futures.Future[None]] = deque()
        self._unhanded = 0  # journaled records not yet handed to the store thread
        self._insert_timer: asyncio.TimerHandle | None = None
        self._committing = False  # the writer task is between taking a batch and acknowledging it
        #: Whether other requests are being served right now (the gateway wires this to its backend pool's count of
        #: requests in flight). While they are, journal writes go to the journal thread, so that the loop keeps
        #: serving them during the fdatasync and the writes that queue up meanwhile share the next one; when the
        #: writer is alone, the write runs on the loop (see INLINE_SYNC_S).
        self.busy: Callable[[], bool] = _never
        self._use_intents = intents
        self._intents = 0  # intents journaled (their keys)
        self._sync_armed = False  # intents are due to be journaled and fdatasynced at the loop's next turn
        self._due: list[Intent] = []  # intents begun, to be journaled at the loop's next turn
        #: The task that journaled a record on the loop in this turn of it: a write from another task in the same
        #: turn means concurrent writers (whatever ``busy`` says), so it takes the queue and the writes of this turn
        #: share one commit. (One task writing in a loop keeps writing inline.)
        self._turn_writer: asyncio.Task[Any] | None = None
        self._outcome_timer: asyncio.TimerHandle | None = None  # checks that finals written behind become durable
        self._outcome_mark: Mark | None = None
        self._sync_avg = 0.0  # moving average of journal write durations (s)
        self._threaded_until = 0.0  # monotonic time until which journal writes go to the journal thread
        self._backoff_s = 0.0  # the last stall's back-off (see FIRST_BACKOFF_S)
        self.stalls = 0  # journal writes on the loop that took over SLOW_SYNC_S
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedinf-audit")
        self._store: AuditStore | None = None
        #: The event loop the writer runs on (set at start): its own calls on the request path use it rather than
        #: ``asyncio.get_running_loop()``, which costs a getpid() system call each on CPython 3.11.
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self._closing = False
        self._reader_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader: AuditStore | None = None
        self.batches = 0
        self.records = 0

    async def start(self) -> None:
        """Open the store (runs migrations) and start the writer task. Idempotent and safe to call concurrently."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._open())
        await asyncio.shield(self._starting)

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` where the store lives: the writer thread, or the loop itself when inline."""
        if self._inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._store = await self._in_writer(self._factory)
        if self._use_journal:
            self._journal = await self._in_writer(self._open_journal, self._store)
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="fedinf-audit-writer")

    def _open_journal(self, store: AuditStore) -> JournalAppender:
        if not isinstance(store, SqliteAuditStore):
            raise ConfigError("the audit journal needs a SQLite audit store")
        return JournalAppender(store, segment_bytes=self._segment_bytes)

    def begin(self, make: Callable[[], Recordable]) -> Intent | None:
        """Schedule ``make()`` (the record of a request as known before its upstream call: who, data class, eligible
        models and zones) to be journaled as an intent and fdatasynced at the loop's next turn, which comes once the
        caller has sent its upstream request and waits for the answer: building, writing and syncing the intent
        overlap the upstream call instead of delaying or following it. The caller passes the intent to
        :meth:`write` with the final record, which is then only written before the reply (and synced within
        :data:`OUTCOME_SYNC_S`). Only for a lone request (the inline rule of :meth:`write`) with the journal on;
        otherwise None, and the final record is made durable before the reply as usual."""
        journal = self._journal
        if (journal is None or not self._use_intents or self._queue is None or self._closing
                or not self._can_write_now(journal)):
            return None
        self._intents += 1
        intent = Intent(str(self._intents), make)
        self._due.append(intent)
        if not self._sync_armed:
            self._sync_armed = True
            self._loop.call_soon(self._sync_intents, journal)
        return intent

    def _journal_due(self, journal: JournalAppender) -> None:
        """Journal the intents begun since the last turn (not those whose final came first)."""
        due, self._due = [i for i in self._due if i.make is not None], []
        if not due or journal is not self._journal:
            return
        entries: Entries = []
        for intent in due:
            assert intent.make is not None
            record, intent.make = intent.make(), None
            entries.append((record.to_dict(), record.time, "i:" + intent.key))
        try:
            journal.put(entries)
        except Exception as exc:  # noqa: BLE001 - their finals are then made durable the usual way
            log.warning("audit journal: %d intent(s) not written (%s); their records are made durable after the "
                        "call", len(due), exc)
            return
        mark = journal.mark()
        for intent, (body, _, _) in zip(due, entries):
            intent.mark, intent.body = mark, body

    def _sync_intents(self, journal: JournalAppender) -> None:
        """On the loop, at the turn after :meth:`begin`: journal the intents due and fdatasync them. A failure is
        logged; the finals of those intents then find them not journaled or not durable and take the synchronous
        path, which fails closed if it must."""
        self._sync_armed = False
        self._journal_due(journal)
        if journal is not self._journal or journal.durable():
            return
        t0 = time.perf_counter()
        try:
            journal.sync()
        except Exception as exc:  # noqa: BLE001
            log.error("audit journal sync failed: %s", exc)
            return
        self._observe_sync(time.perf_counter() - t0, inline=True)

    async def write(self, record: Recordable, intent: Intent | None = None) -> Receipt:
        """Append ``record`` to the chain; return once it is durable (with a durable ``intent`` of the same request:
        once it is written, see :meth:`begin`). Raises ServiceUnavailable if it cannot be."""
        if intent is not None and not intent.journaled:  # the final came first: the intent is never journaled
            intent.make = None
            intent = None
        if self._queue is None:
            try:
                await self.start()
            except FedinfError:
                raise
            except Exception as exc:  # e.g. the journal directory cannot be written: fail closed
                log.error("audit writer failed to start: %s", exc)
                raise ServiceUnavailable("the audit trail is unavailable; request not completed",
                                         code="audit_unavailable") from exc
        assert self._queue is not None
        if self._closing or self._task is None or self._task.done():  # never queue behind a stopped writer: that would wait forever
            raise ServiceUnavailable("the audit writer is stopped; request not completed", code="audit_unavailable")
        tag = None if intent is None else "f:" + intent.key
        journal = self._journal
        if journal is not None and self._can_write_now(journal):
            durable = intent is not None and intent.mark is not None and journal.durable(intent.mark)
            return self._write_now(journal, record, tag, behind=durable)
        fut: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record.to_dict(), record.time, tag, fut))
        return await asyncio.shield(fut)

    def _can_write_now(self, journal: JournalAppender) -> bool:
        """Whether ``write`` may journal its record itself, on the loop: nothing queued or being committed (so the
        journal order stays the order of ``write`` calls), the disk fast, no catch-up or back-pressure wait due."""
        assert self._queue is not None
        return (not self._committing and self._queue.empty() and not journal.behind
                and (self._turn_writer is None or self._turn_writer is asyncio.current_task(self._loop))
                and len(self._inserts) < _MAX_QUEUED_INSERTS and self._inline_ok())

    def stats(self) -> AuditorStats:
        return AuditorStats(self.records, self.batches, self.stalls, self._sync_avg,
                            self._use_journal and not self._disk_fast())

    def _disk_fast(self) -> bool:
        """Journal writes are fast (moving average) and no stall's back-off is running."""
        return self._sync_avg <= INLINE_SYNC_S and time.monotonic() >= self._threaded_until

    def _inline_ok(self) -> bool:
        """Journal writes may run on the loop: the disk is fast and nothing else is being served."""
        return self._disk_fast() and not self.busy()

    def _arm_outcome_check(self, journal: JournalAppender, mark: Mark | None) -> None:
        self._outcome_mark = mark
        self._outcome_timer = self._loop.call_later(OUTCOME_SYNC_S / 2, self._check_outcomes, journal)

    def _check_outcomes(self, journal: JournalAppender) -> None:
        """Every OUTCOME_SYNC_S / 2 while finals are written behind: sync in the journal thread what was written
        by the previous check and is still not durable (at concurrency 1 the next intent's sync has covered it)."""
        self._outcome_timer = None
        if journal is not self._journal or self._journal_executor is None:
            return
        if self._outcome_mark is not None and not journal.durable(self._outcome_mark):
            self._journal_executor.submit(_sync_quietly, journal)
            return
        if not journal.durable():
            self._arm_outcome_check(journal, journal.mark())

    def _write_now(self, journal: JournalAppender, record: Recordable, tag: str | None = None, *,
                   behind: bool = False) -> Receipt:
        """The unloaded case of ``write``, with no hand-off to the writer task (it runs without an ``await``, so no
        other write can come in between): one durable journal write; with ``behind`` (the request's intent is
        durable) the record is only written, and synced within OUTCOME_SYNC_S."""
        entries = [(record.to_dict(), record.time, tag)]
        t0 = time.perf_counter()
        try:
            segment, offsets = journal.put(entries) if behind else journal.write(entries)
        except Exception as exc:  # not durable: no receipt (an intent of it is recorded as interrupted at close)
            log.error("audit journal write of 1 record failed: %s", exc)
            raise ServiceUnavailable("the audit trail is unavailable; request not completed",
                                     code="audit_unavailable") from exc
        if not behind:
            self._observe_sync(time.perf_counter() - t0, inline=True)
        elif self._outcome_timer is None:
            self._arm_outcome_check(journal, None)
        self.batches += 1
        self.records += 1
        self._hand_over_later(journal, 1)
        if self._turn_writer is None:
            self._turn_writer = asyncio.current_task(self._loop)
            self._loop.call_soon(self._turn_over)
        return Receipt(None, None, segment, offsets[0])

    def _turn_over(self) -> None:
        self._turn_writer = None

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            item = await self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._committing = True
            try:
                await self._commit(loop, batch)
            except Exception:  # a bug must not kill the writer and leave every later write waiting
                log.exception("audit writer: unexpected error")
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(ServiceUnavailable("the audit trail is unavailable",
                                                             code="audit_unavailable"))
            finally:
                self._committing = False

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        if self._journal is not None:
            return await self._commit_journaled(loop, self._journal, batch)
        try:
            rows = await self._in_writer(self._append, [(b, t) for b, t, _, _ in batch])
        except Exception as exc:  # the database failed: nobody gets a receipt
            log.error("audit commit of %d record(s) failed: %s", len(batch), exc)
            await self._in_writer(self._drop_store)
            _fail(batch)
            return
        self.batches += 1
        self.records += len(rows)
        _settle(batch, [Receipt(row.seq, row.hash) for row in rows])

    def _append(self, bodies: list[tuple[dict[str, Any], float]]) -> list[ChainedRow]:
        """In the writer thread: (re)open the store if a failure dropped it, then append."""
        if self._store is None:
            self._store = self._factory()
        return self._store.append(bodies)

    async def _commit_journaled(self, loop: asyncio.AbstractEventLoop, journal: JournalAppender,
                                batch: list[_Item]) -> None:
        """Journal the batch and acknowledge it; then make sure an insert into the store is gathering (the next
        batch does not wait for it, but waits while too many inserts are queued)."""
        entries = [(b, t, tag) for b, t, tag, _ in batch]
        try:
            if journal.behind:  # an insert failed: the store must have caught up before more is acknowledged
                await self._in_writer(self._catch_up, journal)
            while len(self._inserts) >= _MAX_QUEUED_INSERTS:
                await asyncio.wrap_future(self._inserts[0])
                self._inserts.popleft()
            segment, offsets = await self._journal_write(loop, journal, entries)
        except Exception as exc:  # not durable: nobody gets a receipt
            log.error("audit journal write of %d record(s) failed: %s", len(batch), exc)
            _fail(batch)
            return
        self.batches += 1
        self.records += len(batch)
        _settle(batch, [Receipt(None, None, segment, o) for o in offsets])
        self._hand_over_later(journal, len(batch))

    def _hand_over_later(self, journal: JournalAppender, n: int) -> None:
        """``n`` more records are journaled: hand what waits to the store thread once INSERT_BATCH wait, else
        INSERT_DELAY_S after the first."""
        self._unhanded += n
        if self._unhanded >= INSERT_BATCH:
            self._hand_over(journal)
        elif self._insert_timer is None:
            self._insert_timer = self._loop.call_later(INSERT_DELAY_S, self._hand_over, journal)

    def _hand_over(self, journal: JournalAppender) -> None:
        """Queue one store-thread insert of everything journaled and durable so far (what is not durable yet waits
        for the next one)."""
        if self._insert_timer is not None:
            self._insert_timer.cancel()
            self._insert_timer = None
        self._unhanded = 0
        if not journal.durable():
            self._hand_over_later(journal, 1)
        while self._inserts and self._inserts[0].done():
            self._inserts.popleft()
        self._inserts.append(self._executor.submit(self._insert, journal))

    async def _journal_write(self, loop: asyncio.AbstractEventLoop, journal: JournalAppender,
                             entries: Entries) -> tuple[str, list[int]]:
        """Journal ``entries`` on the loop while writes are fast (see :data:`INLINE_SYNC_S`), else in the journal
        thread. Either way exactly one write runs at a time (the writer task awaits each)."""
        if self._inline_ok():
            t0 = time.perf_counter()
            out = journal.write(entries)
            self._observe_sync(time.perf_counter() - t0, inline=True)
            return out
        assert self._journal_executor is not None
        out, took = await loop.run_in_executor(self._journal_executor, _timed, journal.write, entries)
        self._observe_sync(took, inline=False)
        return out

    def _observe_sync(self, took: float, *, inline: bool) -> None:
        """Feed the moving average; a stall of the loop itself (an inline write over SLOW_SYNC_S) also keeps writes
        off the loop for a back-off (see :meth:`_stalled`). A stall in the journal thread (under load: queued behind
        other I/O) only moves the average, which a few fast writes bring back down once the load is gone."""
        self._sync_avg = 0.8 * self._sync_avg + 0.2 * took
        if inline and took > SLOW_SYNC_S:
            self._stalled(took)

    def _stalled(self, took: float) -> None:
        """A journal write stalled the loop: keep writes in the journal thread for a back-off that doubles while
        stalls recur soon after it (see :data:`FIRST_BACKOFF_S`)."""
        now = time.monotonic()
        recurs = self.stalls and now - self._threaded_until < STALL_MEMORY_S
        self._backoff_s = min(SLOW_BACKOFF_S, self._backoff_s * 2) if recurs else FIRST_BACKOFF_S
        self._threaded_until = now + self._backoff_s
        self.stalls += 1
        log.warning("audit journal: a write took %.1f ms on the event loop; journal writes go to the journal thread "
                    "for %.1f s", took * 1000, self._backoff_s)

    async def flush(self) -> None:
        """Return once every record written so far is in the store, where other processes see it: make what is
        written durable, hand over what waits and wait for every queued insert. A caller whose loop stops between
        bursts of work (a batch worker: a Ray actor between batches) calls it at the end of each burst: the timers
        that sync and insert written records only run while the loop runs."""
        journal = self._journal
        if journal is not None and not journal.durable() and self._journal_executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._journal_executor, _sync_quietly, journal)
        if self._unhanded and journal is not None:
            self._hand_over(journal)
        if self._inserts:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in list(self._inserts)))

    def _insert(self, journal: JournalAppender) -> None:
        """Store thread: insert what the journal has queued. A failure is logged, not raised: the records are
        acknowledged and in the journal; the next batch first replays them (failing closed until it can)."""
        try:
            if self._store is None:
                self._store = self._factory()
            assert isinstance(self._store, SqliteAuditStore)
            journal.apply(self._store)
        except Exception as exc:  # noqa: BLE001
            log.error("audit insert failed (the records are in the journal and will be replayed): %s", exc)
            journal.behind = True
            self._drop_store()

    def _catch_up(self, journal: JournalAppender) -> None:
        if self._store is None:
            self._store = self._factory()
        assert isinstance(self._store, SqliteAuditStore)
        try:
            journal.catch_up(self._store)
        except BaseException:
            self._drop_store()
            raise

    def _close_journal(self, journal: JournalAppender) -> None:
        if self._store is None:
            try:
                self._store = self._factory()
            except Exception as exc:  # noqa: BLE001 - the journal stays on disk for the next start
                log.error("audit store unavailable at close: %s", exc)
        journal.close(self._store if isinstance(self._store, SqliteAuditStore) else None)

    def _drop_store(self) -> None:
        """After a failure the connection may be dead (database restarted): close it; the next batch reconnects.
        The failed batch is not retried, since its commit may or may not have happened."""
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - it is being discarded
                pass

    async def run(self, fn: Callable[[AuditStore], T]) -> T:
        """Run ``fn(store)`` in the writer thread (queries from the serving process; keep them short). The inserts
        queued when it is called run first (it sees every record acknowledged so far)."""
        if self._queue is None:
            await self.start()
        await self.flush()

        def call() -> T:
            if self._store is None:
                self._store = self._factory()
            return fn(self._store)
        return await self._in_writer(call)

    async def read(self, fn: Callable[[AuditStore], T]) -> T:
        """Run ``fn(store)`` on a second, read-only-use connection in its own thread, so queries, exports and
        verification never hold up the writer. With the journal, the inserts queued when it is called run first, so
        it sees every record this auditor has acknowledged (read your writes)."""
        await self.flush()
        loop = asyncio.get_running_loop()
        if self._reader_executor is None:
            self._reader_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fedinf-audit-read")

        def call() -> T:  # runs in the reader thread, so opening the reader once needs no lock
            if self._reader is None:
                self._reader = self._factory()
            try:
                return fn(self._reader)
            except Exception:  # the connection may be dead: reopen on the next call
                reader, self._reader = self._reader, None
                try:
                    reader.close()
                except Exception:  # noqa: BLE001 - it is being discarded
                    pass
                raise
        return await loop.run_in_executor(self._reader_executor, call)

    async def aclose(self) -> None:
        """Commit everything queued, stop the writer and close the store (with the journal: apply and remove it)."""
        self._closing = True
        if self._outcome_timer is not None:
            self._outcome_timer.cancel()
            self._outcome_timer = None
        if self._task is not None and self._queue is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        await self.flush()
        self._inserts.clear()
        if self._journal is not None:
            journal, self._journal = self._journal, None
            await self._in_writer(self._close_journal, journal)
        if self._journal_executor is not None:
            self._journal_executor.shutdown(wait=True)
        if self._store is not None:
            store, self._store = self._store, None
            await self._in_writer(store.close)
        self._executor.shutdown(wait=True)
        if self._reader_executor is not None:
            if self._reader is not None:
                reader, self._reader = self._reader, None
                await asyncio.get_running_loop().run_in_executor(self._reader_executor, reader.close)
            self._reader_executor.shutdown(wait=True)


def _never() -> bool:
    return False


def _sync_quietly(journal: JournalAppender) -> None:
    """Journal thread: fdatasync what is written; a failure is logged (what it held is in the page cache and is
    inserted from there; its intents, already durable, say where the requests went)."""
    try:
        journal.sync()
    except Exception as exc:  # noqa: BLE001
        log.error("audit journal sync failed: %s", exc)


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


def _settle(batch: list[_Item], receipts: list[Receipt]) -> None:
    for (*_, fut), receipt in zip(batch, receipts):
        if not fut.done():
            fut.set_result(receipt)


def _fail(batch: list[_Item]) -> None:
    for *_, fut in batch:
        if not fut.done():
            fut.set_exception(ServiceUnavailable("the audit trail is unavailable; request not completed",
                                                 code="audit_unavailable"))


class NullAuditor:
    """Audit off: ``write`` returns at once and stores nothing (benchmarks and explicit opt-out only)."""

    batches = 0
    records = 0

    async def start(self) -> None:
        return None

    def begin(self, make: Callable[[], Recordable]) -> Intent | None:
        return None

    async def write(self, record: Recordable, intent: Intent | None = None) -> Receipt:
        return Receipt(0, "")

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
