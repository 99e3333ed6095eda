"""Verify a stored chain: find edited, inserted, deleted and truncated records and say where.

The walk reads rows in ``seq`` order and checks, per record: its hash against its body (edited), the chain columns
and indexed columns against the signed body (edited behind the body's back), ``seq`` continuity (deleted or
inserted), and ``prev_hash`` against the previous stored hash (a record replaced, inserted or deleted before it).
At the end the chain head row (updated in the same transaction as every append) must point at the last record, which
exposes a cut-off tail. Without an HMAC key, someone who can rewrite the whole database can rebuild a consistent
chain; anchor the reported head hash elsewhere (or configure ``audit.hmac_key_env``) to rule that out.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

from fedinf.audit.chain import COLUMNS, GENESIS, Hasher, index_columns
from fedinf.audit.record import parse_time

MAX_PROBLEMS = 1000
_RECENT = 256


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``kind`` is ``edited``, ``inserted``, ``deleted``, ``truncated``, ``chain_break`` or
    ``rewritten`` (differs from an anchor)."""

    seq: int
    kind: str
    message: str


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    head_seq: int = 0
    head_hash: str = GENESIS
    keyed: bool = False
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    def add(self, seq: int, kind: str, message: str) -> None:
        self.problems_total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, kind, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "records": self.records, "first_seq": self.first_seq, "last_seq": self.last_seq,
            "last_hash": self.last_hash, "head_seq": self.head_seq, "head_hash": self.head_hash, "keyed": self.keyed,
            "problems_total": self.problems_total,
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in self.problems],
        }


def _check_body(report: VerifyReport, row: dict[str, Any], hasher: Hasher) -> None:
    seq = row["seq"]
    if hasher.digest(row["body"]) != row["hash"]:
        report.add(seq, "edited", f"record {seq}: content does not match its hash (changed after it was written)")
        return
    try:
        body = json.loads(row["body"])
    except ValueError:
        report.add(seq, "edited", f"record {seq}: body is not valid JSON")
        return
    if body.get("seq") != seq or body.get("prev_hash") != row["prev_hash"]:
        report.add(seq, "edited", f"record {seq}: seq/prev_hash columns differ from the signed body "
                                  f"(body says seq {body.get('seq')})")
        return
    try:
        ts = parse_time(body["time"])
    except (KeyError, ValueError):
        report.add(seq, "edited", f"record {seq}: body has no valid time")
        return
    expected = index_columns(body, ts)
    for col, want in expected.items():
        have = row[col]
        if col == "ts":
            if have is None or abs(float(have) - want) > 1e-3:
                report.add(seq, "edited", f"record {seq}: column ts differs from the signed body")
        elif have != want:
            report.add(seq, "edited", f"record {seq}: column {col} differs from the signed body")


def verify_rows(rows: Iterable[tuple[Any, ...]], head: tuple[int, str], hasher: Hasher,
                anchors: dict[int, str] | None = None, start: tuple[int, str] | None = None) -> VerifyReport:
    """Walk ``rows`` (tuples in :data:`COLUMNS` order, ascending ``seq``) against the chain ``head``.

    ``anchors`` maps seq -> hash values recorded elsewhere earlier (e.g. the head hash printed by a previous
    ``fedinf audit verify``): a record whose hash differs, or that is gone, was rewritten since — this catches even a
    consistently rebuilt chain without an HMAC key.

    ``start`` = (seq, hash): an incremental check. Records before ``seq`` are trusted (verified earlier), ``rows``
    must begin at ``seq``, and that record must still carry ``hash``.
    """
    report = VerifyReport(head_seq=head[0], head_hash=head[1], keyed=hasher.keyed)
    pending = dict(anchors or {})
    expected_seq, prev_hash = 1, GENESIS
    if start is not None:
        pending[start[0]] = start[1]
        expected_seq, prev_hash = start[0], None  # type: ignore[assignment]
    recent: OrderedDict[str, int] = OrderedDict({GENESIS: 0})
    for tup in rows:
        row = dict(zip(COLUMNS, tup))
        seq = row["seq"]
        report.records += 1
        if report.first_seq is None:
            report.first_seq = seq
        _check_body(report, row, hasher)
        if seq > expected_seq:
            first = expected_seq
            report.add(first, "deleted", f"records {first}..{seq - 1} are missing (deleted) before record {seq}"
                       if seq - 1 > first else f"record {first} is missing (deleted) before record {seq}")
        elif seq < expected_seq:
            report.add(seq, "inserted", f"record {seq} appears again after record {expected_seq - 1} (inserted)")
        elif prev_hash is not None and row["prev_hash"] != prev_hash:
            back = recent.get(row["prev_hash"])
            if back is not None and back < seq - 1:
                report.add(back + 1, "inserted", f"records {back + 1}..{seq - 1} were inserted: record {seq} links "
                                                 f"to record {back}")
            else:
                report.add(seq, "chain_break", f"record {seq} does not link to record {seq - 1}: record {seq - 1} "
                                               "was replaced or re-hashed, or a record was inserted or deleted there")
        want = pending.pop(seq, None)
        if want is not None and want != row["hash"]:
            report.add(seq, "rewritten", f"record {seq}: hash differs from the anchor recorded earlier "
                                         f"({want[:16]}…): the chain was rewritten from here or before")
        expected_seq, prev_hash = seq + 1, row["hash"]
        report.last_seq, report.last_hash = seq, row["hash"]
        recent[row["hash"]] = seq
        if len(recent) > _RECENT:
            recent.popitem(last=False)
    for seq in sorted(pending):
        report.add(seq, "rewritten", f"record {seq}, anchored earlier, is no longer in the chain")
    _check_head(report)
    return report


def _check_head(report: VerifyReport) -> None:
    last, head = report.last_seq, report.head_seq
    if last < head:
        report.add(last + 1, "truncated", f"records {last + 1}..{head} are missing: the chain head says {head} "
                                          f"records were written but the last stored one is {last} (tail deleted)")
    elif last > head:
        report.add(head + 1, "inserted", f"records {head + 1}..{last} were added after the chain head ({head}) "
                                         "without going through the writer")
    elif report.last_hash != report.head_hash:
        report.add(last, "edited", f"record {last}: hash differs from the chain head's (replaced or re-hashed)")
