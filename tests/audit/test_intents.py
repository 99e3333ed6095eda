"""Audit intents (write-ahead records of requests in flight): a lone request's record as known before its upstream
call is journaled and fdatasynced at the loop's next turn, while the call is under way, and the final record (that
body completed with the outcome) is written before the reply and synced within OUTCOME_SYNC_S. A writer that dies mid-request leaves a durable intent, which recovery records as
``interrupted``. Real files, real SQLite, real process deaths (SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fedinf.audit import AuditQuery, Auditor, AuditRecord, SqliteAuditStore, open_audit_store
from fedinf.audit import journal as journal_mod
from fedinf.audit import writer as writer_mod
from fedinf.audit.journal import INTERRUPTED, JournalAppender, decode, iter_entries, journal_dir, recover
from fedinf.audit.record import DecisionSummary
from fedinf.config import default_config

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _normal(path: Path) -> SqliteAuditStore:
    return SqliteAuditStore(path, synchronous="NORMAL")


def _rows(store: SqliteAuditStore) -> list[dict[str, Any]]:
    return store.query(AuditQuery(limit=100_000))


def _intent(request_id: str) -> AuditRecord:
    """A record as the pipeline knows it before the upstream call: where the request may go, no outcome yet."""
    return AuditRecord(request_id=request_id, key_id="k1", model_requested="m",
                       decision=DecisionSummary(eligible=["local-a", "cloud-b"], strategy="ordered"))


def _final(request_id: str) -> AuditRecord:
    return AuditRecord(request_id=request_id, key_id="k1", model_requested="m",
                       decision=DecisionSummary(eligible=["local-a", "cloud-b"], strategy="ordered",
                                                chosen_model="local-a", chosen_zone="onprem"))


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the journal's fdatasync calls."""
    calls: list[int] = []
    real = journal_mod._fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)
    monkeypatch.setattr(journal_mod, "_fdatasync", counting)
    return calls


async def test_the_intent_is_journaled_at_the_next_turn_and_the_final_follows_without_waiting(tmp_path,
                                                                                             syncs) -> None:
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    journal = auditor._journal
    assert journal is not None
    made: list[str] = []

    def make() -> AuditRecord:
        made.append("r1")
        return _intent("r1")
    before = journal.mark()
    intent = auditor.begin(make)
    assert intent is not None and not intent.journaled and made == [] and syncs == []
    assert journal.mark() == before  # nothing built or written before the caller sends its upstream request
    await asyncio.sleep(0)  # the loop's next turn: the caller is waiting on its upstream call
    assert made == ["r1"] and intent.mark is not None and journal.durable(intent.mark) and len(syncs) == 1
    assert intent.body == _intent("r1").to_dict() | {"time": intent.body["time"]}
    receipt = await auditor.write(_final("r1"), intent)
    assert receipt.journal is not None and len(syncs) == 1  # the reply did not wait for an fdatasync
    assert not journal.durable()  # the final is written, in the page cache
    await asyncio.sleep(writer_mod.OUTCOME_SYNC_S * 3)
    assert journal.durable() and len(syncs) == 2  # synced (in the journal thread) within OUTCOME_SYNC_S
    rows = await auditor.read(_rows)
    assert [(r["request_id"], r["status"], r["decision"]["chosen_model"]) for r in rows] == [("r1", 200, "local-a")]
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    assert store.count() == 1 and store.verify().ok


async def test_back_to_back_requests_share_the_intent_syncs(tmp_path, syncs) -> None:
    """At concurrency 1 each intent's sync also covers the previous request's final record: one fdatasync per
    request, none of them waited for after the upstream call."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    for i in range(20):
        intent = auditor.begin(lambda: _intent(f"r{i}"))
        assert intent is not None
        await asyncio.sleep(0)
        await auditor.write(_final(f"r{i}"), intent)
    assert len(syncs) == 20
    await asyncio.sleep(writer_mod.OUTCOME_SYNC_S * 3)
    assert len(syncs) == 21 and auditor._journal is not None and auditor._journal.durable()
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    assert Counter(r["request_id"] for r in _rows(store)) == Counter(f"r{i}" for i in range(20))
    assert all(r["status"] == 200 for r in _rows(store)) and store.verify().ok


async def test_a_final_that_comes_before_its_intent_cancels_it_and_is_synced_before_it_returns(tmp_path,
                                                                                              syncs) -> None:
    """No loop turn between ``begin`` and the final (the call failed before anything was sent): the intent is
    never journaled and the final record is durable before ``write`` returns."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    intent = auditor.begin(lambda: _intent("fast"))
    assert intent is not None
    await auditor.write(_final("fast"), intent)
    assert auditor._journal is not None and auditor._journal.durable() and len(syncs) == 1
    assert not intent.journaled and intent.make is None
    await asyncio.sleep(0)  # the turn the intent was due at: nothing to journal, nothing to sync
    assert len(syncs) == 1 and not auditor._journal.open
    await auditor.aclose()
    rows = _rows(_normal(tmp_path / "audit.db"))
    assert [(r["request_id"], r["status"]) for r in rows] == [("fast", 200)]


async def test_a_failed_intent_sync_makes_the_final_take_the_synchronous_path(tmp_path, monkeypatch) -> None:
    real = journal_mod._fdatasync
    failures = {"left": 1}

    def flaky(fd: int) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(5, "Input/output error")
        real(fd)
    monkeypatch.setattr(journal_mod, "_fdatasync", flaky)
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    intent = auditor.begin(lambda: _intent("r1"))
    assert intent is not None
    await asyncio.sleep(0)  # the sync fails (logged); the segment is abandoned
    assert auditor._journal is not None and not auditor._journal.durable(intent.mark)
    receipt = await auditor.write(_final("r1"), intent)  # durable in a new segment before it returns
    assert receipt.journal is not None and auditor._journal.durable()
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    assert [(r["request_id"], r["status"]) for r in _rows(store)] == [("r1", 200)], "closed by its final: no orphan"


async def test_under_load_no_intent_is_journaled(tmp_path) -> None:
    """While other requests are served, writes share group commits in the journal thread; intents would double the
    journal's work there, so ``begin`` declines and the final record is durable before the reply."""
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    auditor.busy = lambda: True
    await auditor.start()
    assert auditor.begin(lambda: _intent("r1")) is None
    await auditor.write(_final("r1"), None)
    assert auditor._journal is not None and auditor._journal.durable()
    await auditor.aclose()


async def test_an_intent_left_open_at_close_is_recorded_as_interrupted(tmp_path) -> None:
    auditor = Auditor(lambda: _normal(tmp_path / "audit.db"), journal=True)
    await auditor.start()
    done = auditor.begin(lambda: _intent("done"))
    await asyncio.sleep(0)
    await auditor.write(_final("done"), done)
    assert auditor.begin(lambda: _intent("abandoned")) is not None  # its request never finished
    await asyncio.sleep(0)  # journaled: its upstream call is under way
    await auditor.aclose()
    store = _normal(tmp_path / "audit.db")
    got = {r["request_id"]: (r["status"], r["error_code"]) for r in _rows(store)}
    assert got == {"done": (200, None), "abandoned": (503, INTERRUPTED)}
    assert store.verify().ok and not any(journal_dir(tmp_path / "audit.db").glob("*.seg"))


def test_open_intents_are_carried_into_the_next_segment(tmp_path) -> None:
    """A segment is retired once full and applied; an intent still open in it is written again at the start of the
    next segment first, so the writer's death after the retirement still leaves it on disk."""
    db = tmp_path / "audit.db"
    store = _normal(db)
    appender = JournalAppender(store, segment_bytes=2048)
    long = _intent("long")
    body = long.to_dict()
    appender.write([(body, long.time, "i:1")])
    first = appender.journal.current
    for i in range(6):  # fills segment 1 (rotated), then goes on in segment 2
        r = _final(f"r{i}")
        appender.write([(r.to_dict(), r.time, None)])
    assert appender.journal.current != first and first in appender.journal.sealed
    appender.apply(store)
    appender._retire_sealed(store)
    assert not (appender.journal.dir / first).exists()
    carried = [decode(p) for _, p in iter_entries(appender.journal.dir / appender.journal.current)]
    assert carried[0] == (body, long.time, "i:1")
    _die(appender)
    assert recover(store) == 1
    got = {r["request_id"]: r["status"] for r in _rows(store)}
    assert got == {**{f"r{i}": 200 for i in range(6)}, "long": 503} and store.verify().ok


def test_recovery_records_each_unfinished_intent_once(tmp_path) -> None:
    db = tmp_path / "audit.db"
    store = _normal(db)
    appender = JournalAppender(store)
    a, b, b_final = _intent("a"), _intent("b"), _final("b")
    appender.write([(a.to_dict(), a.time, "i:1")])
    appender.write([(b.to_dict(), b.time, "i:2")])
    appender.put([(b_final.to_dict(), b_final.time, "f:2")])  # written, never synced: a process crash keeps it
    _die(appender)
    assert recover(store) == 2 and recover(store) == 0
    rows = _rows(store)
    assert [(r["request_id"], r["status"], r["error_code"]) for r in rows] == [("b", 200, None),
                                                                             ("a", 503, INTERRUPTED)]
    assert rows[1]["decision"]["eligible"] == ["local-a", "cloud-b"] and rows[1]["latency_ms"] is None
    assert store.verify().ok and list(journal_dir(db).iterdir()) == [journal_dir(db) / "recover.lock"]


def _die(appender: JournalAppender) -> None:
    """The writer's process is gone: its journal lock is released, nothing is cleaned up."""
    j = appender.journal
    if j._fd is not None:
        os.close(j._fd)
        j._fd = None
    assert j._lock is not None
    os.close(j._lock)
    j._lock = None


KILLED_CHILD = r"""
import asyncio, os, signal, sys
from fedinf.audit import Auditor, AuditRecord, SqliteAuditStore
from fedinf.audit.record import DecisionSummary

db, where = sys.argv[1], sys.argv[2]
dec = DecisionSummary(eligible=["local-a"], strategy="ordered")

async def main():
    a = Auditor(lambda: SqliteAuditStore(db, synchronous="NORMAL"), journal=True)
    await a.start()
    for i in range(3):  # finished requests
        intent = a.begin(lambda: AuditRecord(request_id=f"ok{i}", decision=dec))
        await asyncio.sleep(0)
        await a.write(AuditRecord(request_id=f"ok{i}", decision=dec), intent)
    intent = a.begin(lambda: AuditRecord(request_id="in-flight", decision=dec))
    await asyncio.sleep(0)  # durable: the upstream call is under way
    print("intent durable", flush=True)
    if where == "after-final":
        await a.write(AuditRecord(request_id="in-flight", decision=dec), intent)
        print("replied", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""


@pytest.mark.parametrize("where", ["during-call", "after-final"])
def test_a_writer_killed_mid_request_leaves_a_record_of_it(tmp_path, where: str) -> None:
    db = tmp_path / "audit.db"
    proc = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(db), where], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "intent durable" in proc.stdout
    store = open_audit_store(default_config().audit.model_copy(update={"store": f"sqlite:///{db}"}),
                             state_dir=tmp_path)  # recovers the dead writer's journal, as `fedinf audit verify` does
    try:
        got = {r["request_id"]: (r["status"], r["error_code"]) for r in _rows(store)}
        flight = (503, INTERRUPTED) if where == "during-call" else (200, None)
        assert got == {"ok0": (200, None), "ok1": (200, None), "ok2": (200, None), "in-flight": flight}
        assert store.verify().ok
    finally:
        store.close()


async def test_the_pipeline_journals_an_intent_before_the_upstream_call(tmp_path, syncs) -> None:
    """Through the gateway (in-process fake backend, default durable audit): each lone request's intent is synced
    while its backend call runs, its final record carries the outcome, and nothing is recorded twice."""
    from fedinf.config import Config
    from fedinf.gateway import Gateway

    cfg = Config.model_validate({
        "server": {"state_dir": str(tmp_path / "state")}, "zones": {"cloud": {"kind": "cloud", "clearance": "public"}},
        "models": [{"id": "m", "backend": "fake", "zone": "cloud", "license": "proprietary-api",
                    "options": {"reply": "fine"}}]})
    gw = Gateway.assemble(cfg, access=None)
    seen: list[Any] = []
    begin = gw.auditor.begin

    def spy(make: Any) -> Any:
        record = make()
        body = record.to_dict()
        seen.append((body["request_id"], body["decision"]["eligible"], body["decision"]["chosen_model"]))
        return begin(lambda: record)
    gw.auditor.begin = spy  # type: ignore[method-assign]
    async with gw:
        for i in range(5):
            reply = await gw.pipeline.chat({"model": "m", "messages": [{"role": "user", "content": f"hi {i}"}]},
                                           request_id=f"req{i}")
            assert reply.status == 200
        assert [s[1:] for s in seen] == [(["m"], None)] * 5  # before the call: eligible known, nothing chosen yet
        assert len(syncs) == 5  # one fdatasync per request, each while the backend call was under way
    store = open_audit_store(cfg.audit, state_dir=cfg.server.state_dir)
    try:
        rows = _rows(store)
        assert [(r["request_id"], r["status"], r["decision"]["chosen_model"]) for r in rows] == [
            (f"req{i}", 200, "m") for i in range(5)]
        assert store.verify().ok
    finally:
        store.close()


async def test_intents_off_makes_every_final_durable_before_it_returns(tmp_path) -> None:
    from fedinf.audit import build_auditor

    from fedinf.config import Config

    cfg = Config.model_validate({
        "server": {"state_dir": str(tmp_path)}, "audit": {"intents": False},
        "zones": {"cloud": {"kind": "cloud", "clearance": "public"}},
        "models": [{"id": "m", "backend": "fake", "zone": "cloud", "license": "proprietary-api"}]})
    auditor = build_auditor(cfg)
    assert isinstance(auditor, Auditor)
    await auditor.start()
    assert auditor.begin(lambda: _intent("r1")) is None
    await auditor.write(_final("r1"))
    assert auditor._journal is not None and auditor._journal.durable()
    await auditor.aclose()


@pytest.mark.parametrize("case", ["served", "fallback", "all-failed"])
async def test_a_final_completed_from_its_intent_equals_the_record_built_from_the_trace(tmp_path, case: str) -> None:
    """The final record of a request with a journaled intent is that intent's body with the outcome put in
    (:func:`fedinf.audit.from_trace.completion`); it must say exactly what the record built from the whole trace
    says (but for when it was made), whatever the outcome: served, served after a fallback, every target failed."""
    from fedinf.audit.record import AuditRecord, Completion
    from fedinf.config import Config
    from fedinf.gateway import Gateway

    good = {"id": "good", "backend": "fake", "zone": "cloud", "license": "proprietary-api",
            "options": {"reply": "fine"}}
    bad = {"id": "bad", "backend": "fake", "zone": "cloud", "license": "proprietary-api",
           "options": {"fail": "unavailable"}}
    models = {"served": [good], "fallback": [bad, good], "all-failed": [bad]}[case]
    cfg = Config.model_validate({
        "server": {"state_dir": str(tmp_path / "state")}, "zones": {"cloud": {"kind": "cloud", "clearance": "public"}},
        "models": models, "routes": {"auto": [m["id"] for m in models]}})
    gw = Gateway.assemble(cfg, access=None)
    finals: list[tuple[Any, dict[str, Any]]] = []
    real = gw.pipeline._final

    def spy(trace: Any) -> Any:
        final = real(trace)
        finals.append((final, gw.pipeline._record(trace).to_dict()))  # built from the trace alone
        return final
    gw.pipeline._final = spy  # type: ignore[method-assign]
    async with gw:
        reply = await gw.pipeline.chat({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert (reply.status >= 500) if case == "all-failed" else (reply.status == 200)
    assert (reply.status, reply.error is None) == (finals[0][1]["status"], case != "all-failed")
    [(final, whole)] = finals
    assert isinstance(final, Completion)  # the intent was journaled: the final was completed from it
    got = final.to_dict()
    assert set(got) == set(whole)
    for body in (got, whole):  # both are the record schema's body: they read back as the same record
        assert AuditRecord.from_dict(body).to_dict() == body
    assert {k: v for k, v in got.items() if k not in ("time", "latency_ms")} == \
        {k: v for k, v in whole.items() if k not in ("time", "latency_ms")}
    chosen = {"served": "good", "fallback": "good", "all-failed": None}[case]
    assert got["decision"]["chosen_model"] == chosen and len(got["decision"]["attempts"]) >= len(models)
    store = open_audit_store(cfg.audit, state_dir=cfg.server.state_dir)
    try:
        [row] = _rows(store)
        assert row["decision"] == got["decision"] and row["status"] == got["status"] and store.verify().ok
    finally:
        store.close()
