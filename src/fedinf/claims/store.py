"""The rule store: derived rules, their evidence and review state. SQLite (default, ``claims.db`` in
``server.state_dir``) or PostgreSQL (``claims.store``), same interface, same SQL (the access store's pattern).

A rule row holds the rule as JSON (``body``) plus the columns queries filter on. ``upsert`` merges: a re-derived
rule (same content id) keeps its review state and gains the new evidence, so mining the same rejections twice never
duplicates a rule or resets an approval.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fedinf.audit.db import check_ident, pg_connect, pg_migrate, sqlite_connect, sqlite_migrate, sqlite_tx
from fedinf.claims.rules import Rule
from fedinf.errors import NotFound, RequestError
from fedinf.stores import StoreUrl

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE {t}claim_rules (id TEXT PRIMARY KEY, status TEXT NOT NULL, source TEXT NOT NULL,
            template TEXT NOT NULL, body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX {i}claim_rules_status ON {t}claim_rules (status)",
    ]),
]
_TRANSITIONS = {"approve": "approved", "reject": "rejected", "retire": "retired"}
_MAX_EVIDENCE = 200


class _SqlRuleStore:
    """Shared implementation; subclasses provide ``_conn``, ``_prefix``, ``_ph`` and ``_tx``."""

    _prefix = ""
    _ph = "?"
    _conn: Any

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

    def upsert(self, rules: list[Rule]) -> tuple[int, int]:
        """Add new rules as candidates; merge evidence into known ones. Returns ``(added, updated)``."""
        added = updated = 0
        now = time.time()
        with self._tx():
            for rule in rules:
                row = self._x("SELECT body FROM {t}claim_rules WHERE id = ?", (rule.id,)).fetchone()
                if row is None:
                    rule = rule.model_copy(update={"status": "candidate", "evidence": rule.evidence[:_MAX_EVIDENCE]})
                    self._x("INSERT INTO {t}claim_rules VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (rule.id, rule.status, rule.source, rule.template, rule.model_dump_json(), now, now))
                    added += 1
                    continue
                old = Rule.model_validate_json(row[0])
                seen = {(e.source, e.codes, e.claim_ref, e.document) for e in old.evidence}
                extra = [e for e in rule.evidence if (e.source, e.codes, e.claim_ref, e.document) not in seen]
                if extra:
                    merged = old.model_copy(update={"evidence": (old.evidence + extra)[:_MAX_EVIDENCE]})
                    self._x("UPDATE {t}claim_rules SET body = ?, updated_at = ? WHERE id = ?",
                            (merged.model_dump_json(), now, rule.id))
                    updated += 1
        return added, updated

    def get(self, rule_id: str) -> Rule:
        rows = self._all("SELECT body FROM {t}claim_rules WHERE id = ?", (rule_id,))
        if not rows:
            raise NotFound(f"no claim rule {rule_id!r}: see `fedinf claims rules list`", code="rule_not_found")
        return Rule.model_validate_json(rows[0][0])

    def rules(self, *, status: str | None = None) -> list[Rule]:
        """Rules (optionally only one status), oldest first."""
        if status:
            rows = self._all("SELECT body FROM {t}claim_rules WHERE status = ? ORDER BY created_at, id", (status,))
        else:
            rows = self._all("SELECT body FROM {t}claim_rules ORDER BY created_at, id")
        return [Rule.model_validate_json(r[0]) for r in rows]

    def approved(self) -> list[Rule]:
        return self.rules(status="approved")

    def review(self, rule_id: str, action: str, *, by: str | None, note: str = "",
               expression: str | None = None, description: str | None = None) -> Rule:
        """``approve`` / ``reject`` / ``retire`` a rule, optionally editing its expression or description first
        (an edited expression must compile; the id stays, so its evidence stays attached)."""
        if action not in _TRANSITIONS:
            raise RequestError(f"unknown review action {action!r}: use approve, reject or retire",
                               code="invalid_action")
        with self._tx():
            rule = self.get(rule_id)
            update: dict[str, Any] = {"status": _TRANSITIONS[action], "reviewed_by": by,
                                      "reviewed_at": time.time(), "note": note or rule.note}
            if expression is not None:
                from fedinf.claims.rules import Compiler

                Compiler().check(expression)
                update["expression"] = expression
            if description is not None:
                update["description"] = description
            rule = rule.model_copy(update=update)
            self._x("UPDATE {t}claim_rules SET status = ?, body = ?, updated_at = ? WHERE id = ?",
                    (rule.status, rule.model_dump_json(), time.time(), rule.id))
        return rule

    def set_description(self, rule_id: str, description: str) -> None:
        with self._tx():
            rule = self.get(rule_id).model_copy(update={"description": description})
            self._x("UPDATE {t}claim_rules SET body = ?, updated_at = ? WHERE id = ?",
                    (rule.model_dump_json(), time.time(), rule_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteRuleStore(_SqlRuleStore):
    """Rules in a SQLite file (WAL, 0600)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._conn: Any = sqlite_connect(self.path, check_same_thread=False)
        sqlite_migrate(self._conn, [(v, [s.replace("{t}", "").replace("{i}", "") for s in stmts])
                                    for v, stmts in MIGRATIONS])

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, sqlite_tx(self._conn):
            yield


class PostgresRuleStore(_SqlRuleStore):
    """Rules in PostgreSQL, schema ``schema``."""

    _ph = "%s"

    def __init__(self, dsn: str, *, schema: str = "fedinf") -> None:
        super().__init__()
        self.schema = check_ident(schema)
        self._prefix = f"{self.schema}."
        self._dsn = dsn
        self._conn = pg_connect(dsn)
        pg_migrate(self._conn, self.schema, [(v, [s.replace("{t}", "{s}.").replace("{i}", "") for s in stmts])
                                             for v, stmts in MIGRATIONS], lock_id=0x6665_6472)

    def _alive(self) -> None:
        if self._conn.closed or self._conn.broken:
            self._conn = pg_connect(self._dsn)

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._alive()
            return list(self._conn.execute(self._sql(sql), args).fetchall())

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock:
            self._alive()
            with self._conn.transaction():
                yield


RuleStore = SqliteRuleStore | PostgresRuleStore

def open_sqlite(url: StoreUrl, **_: Any) -> SqliteRuleStore:
    """The ``sqlite`` engine's rule-store opener (see :mod:`fedinf.stores`)."""
    assert url.path is not None
    return SqliteRuleStore(url.path)


def open_postgres(url: StoreUrl, *, schema: str = "fedinf", **_: Any) -> PostgresRuleStore:
    """The ``postgresql`` engine's rule-store opener (see :mod:`fedinf.stores`)."""
    assert url.dsn is not None
    return PostgresRuleStore(url.dsn, schema=schema)


def open_rule_store(url: str | None, *, state_dir: str | Path = ".fedinf", schema: str = "fedinf") -> RuleStore:
    """Open (and migrate) the rule store at ``url`` (default: ``state_dir/claims.db``), through the store registry
    (:mod:`fedinf.stores`)."""
    from fedinf.stores import open_store

    store: RuleStore = open_store("claims", url or "sqlite:///claims.db", base_dir=state_dir, schema=schema)
    return store


def rules_digest(rules: list[Rule]) -> str:
    """A digest of the approved rule set (ids + expressions): batch resume re-checks documents when it changes."""
    import hashlib

    body = json.dumps(sorted((r.id, r.expression, r.severity, r.per) for r in rules))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


__all__ = ["open_rule_store", "RuleStore", "SqliteRuleStore", "PostgresRuleStore", "rules_digest"]
