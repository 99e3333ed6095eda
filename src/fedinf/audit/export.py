"""Export audit records as JSONL (the full signed bodies plus hashes: re-verifiable) or CSV (flat, for
spreadsheets), and parse the time expressions the CLI and admin API accept."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import replace
from typing import Any, Iterator

from fedinf.audit.record import parse_time
from fedinf.audit.store import AuditQuery, AuditStore

CSV_COLUMNS = ("seq", "time", "request_id", "key_id", "tenant", "endpoint", "model_requested", "model", "zone",
               "data_class", "detected_class", "adjustment", "entities", "excluded", "attempts", "status",
               "error_code", "prompt_tokens", "completion_tokens", "latency_ms", "hash", "prev_hash")
_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: str | None, *, now: float | None = None) -> float | None:
    """``None``, ISO 8601, epoch seconds, or a relative age like ``15m``, ``2h``, ``7d`` (that long ago)."""
    if value is None or value == "":
        return None
    m = _REL.match(value.strip())
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(f"invalid time {value!r}: use ISO 8601 (2026-01-31T12:00:00Z), epoch seconds, "
                         "or an age like 15m, 2h, 7d") from None


def iter_records(store: AuditStore, q: AuditQuery, *, page: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record matching ``q`` (ascending ``seq``, ignoring ``q.limit``/``descending``), read page by page."""
    after = q.after_seq
    while True:
        rows = store.query(replace(q, after_seq=after, limit=page, descending=False))
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["seq"]


def jsonl_line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def csv_row(rec: dict[str, Any]) -> list[Any]:
    cls = rec.get("classification") or {}
    dec = rec.get("decision") or {}
    usage = rec.get("usage") or {}
    attempts = ";".join(f"{a.get('model')}@{a.get('zone')}:{a.get('error_code') or a.get('outcome')}"
                        for a in dec.get("attempts") or [])
    return [rec.get("seq"), rec.get("time"), rec.get("request_id"), rec.get("key_id"), rec.get("tenant"),
            rec.get("endpoint"), rec.get("model_requested"), dec.get("chosen_model") or rec.get("model_requested"),
            dec.get("chosen_zone"), cls.get("data_class"), cls.get("detected_class"), cls.get("adjustment"),
            ";".join(f"{k}={v}" for k, v in sorted((cls.get("entities") or {}).items())),
            ";".join(f"{k}={v}" for k, v in sorted((dec.get("excluded") or {}).items())), attempts,
            rec.get("status"), rec.get("error_code"), usage.get("prompt_tokens"), usage.get("completion_tokens"),
            rec.get("latency_ms"), rec.get("hash"), rec.get("prev_hash")]


def csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def export_lines(store: AuditStore, q: AuditQuery, fmt: str) -> Iterator[str]:
    """Lines of the export in ``fmt`` (``jsonl`` or ``csv``, with a header row)."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError("format must be jsonl or csv")
    if fmt == "csv":
        yield csv_line(list(CSV_COLUMNS))
    for rec in iter_records(store, q):
        yield jsonl_line(rec) if fmt == "jsonl" else csv_line(csv_row(rec))
