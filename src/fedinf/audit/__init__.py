"""The tamper-evident audit trail: records, the hash chain, stores (SQLite, PostgreSQL), the writer, verify.

Typical use (the app factory)::

    auditor = build_auditor(config)          # Auditor, or NullAuditor when audit.enabled is false
    await auditor.start()
    receipt = await auditor.write(record)    # durable when it returns (SQLite default: in the journal)
    await auditor.aclose()

Readers (CLI, admin API) open their own store with :func:`open_audit_store`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fedinf.audit.chain import GENESIS, Hasher, canonical_json
from fedinf.audit.journal import recover
from fedinf.audit.record import Attempt, AuditRecord, ClassificationSummary, DecisionSummary, Usage
from fedinf.audit.store import AuditQuery, AuditStore, SqliteAuditStore
from fedinf.audit.verify import Problem, VerifyReport
from fedinf.audit.writer import AuditSink, Auditor, NullAuditor, Receipt
from fedinf.errors import ConfigError

if TYPE_CHECKING:
    from fedinf.config import AuditSettings, Config

__all__ = [
    "GENESIS", "Attempt", "AuditQuery", "AuditRecord", "AuditSink", "AuditStore", "Auditor", "ClassificationSummary",
    "DecisionSummary", "Hasher", "NullAuditor", "Problem", "Receipt", "SqliteAuditStore", "Usage", "VerifyReport",
    "build_auditor", "canonical_json", "open_audit_store",
]


DEFAULT_STORE = "sqlite:///audit.db"
log = logging.getLogger(__name__)


def hasher_for(settings: "AuditSettings") -> Hasher:
    """SHA-256, or HMAC-SHA256 keyed by the environment variable ``settings.hmac_key_env``."""
    if not settings.hmac_key_env:
        return Hasher()
    secret = os.environ.get(settings.hmac_key_env)
    if not secret:
        raise ConfigError(f"audit.hmac_key_env: environment variable {settings.hmac_key_env} is not set")
    return Hasher(secret.encode("utf-8"))


def open_audit_store(settings: "AuditSettings", *, state_dir: str | Path = ".fedinf",
                     check_same_thread: bool = True, writer: bool = False) -> AuditStore:
    """Open (and migrate) the store named by ``settings.store`` (default: ``state_dir/audit.db``).
    ``writer``: the long-lived appending store (SQLite: WAL checkpoints move to a background thread)."""
    from fedinf.stores import open_store

    store: AuditStore = open_store("audit", settings.store or DEFAULT_STORE, base_dir=state_dir,
                                   hasher=hasher_for(settings), schema=settings.schema_name,
                                   synchronous="normal" if journaled(settings) else settings.sqlite_synchronous,
                                   check_same_thread=check_same_thread, background_checkpoint=writer)
    if isinstance(store, SqliteAuditStore):  # records acknowledged by writers that died must be visible here too
        try:
            recover(store)
        except Exception as exc:  # noqa: BLE001 - they stay on disk; the next opener or writer retries
            log.error("audit journal recovery failed: %s", exc)
    return store


def journaled(settings: "AuditSettings") -> bool:
    """Whether appends go through the journal (SQLite, synchronous full, sqlite_journal on): the SQLite connection
    then commits with synchronous=NORMAL, durability coming from the journal (see :mod:`fedinf.audit.journal`)."""
    from fedinf.stores import engine_for

    return (engine_for(settings.store or DEFAULT_STORE).name == "sqlite" and settings.sqlite_synchronous == "full"
            and settings.sqlite_journal)


def build_auditor(config: "Config") -> Auditor | NullAuditor:
    """The auditor for ``config`` (not started)."""
    settings = config.audit
    if not settings.enabled:
        return NullAuditor()
    hasher_for(settings)  # fail at startup, not at the first request, when the key is missing
    state_dir = config.server.state_dir
    from fedinf.stores import engine_for

    # SQLite with synchronous=NORMAL commits in microseconds: the event loop commits inline (no thread hand-off)
    inline = engine_for(settings.store or DEFAULT_STORE).name == "sqlite" and settings.sqlite_synchronous == "normal"
    return Auditor(lambda: open_audit_store(settings, state_dir=state_dir, writer=True), max_batch=settings.max_batch,
                   inline=inline, journal=journaled(settings), segment_bytes=settings.journal_segment_mb << 20,
                   intents=settings.intents)
