"""The hash chain: canonical JSON, record hashes and linking a batch of bodies onto the chain head.

Each stored record's body contains ``seq`` (1, 2, 3, ... without gaps) and ``prev_hash`` (the previous record's
hash; 64 zeros for the first). Its hash is ``sha256(canonical_json(body))`` — or HMAC-SHA256 with a secret key when
one is configured, so that someone with write access to the database but not the key cannot forge a consistent
chain. Canonical JSON: keys sorted, no whitespace, UTF-8, non-ASCII kept as is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json_stdlib(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


try:  # orjson, when installed, writes the same canonical form about 10x faster (the hot path of every append)
    import orjson as _orjson

    def canonical_bytes(obj: Any) -> bytes:
        """Keys sorted, no whitespace, UTF-8 (non-ASCII kept). Verification hashes the stored text, so the
        serializer only has to be deterministic, not identical across versions."""
        return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS)
except ImportError:  # pragma: no cover - depends on the environment
    def canonical_bytes(obj: Any) -> bytes:
        return canonical_json_stdlib(obj).encode("utf-8")


def canonical_json(obj: Any) -> str:
    """:func:`canonical_bytes` as text."""
    return canonical_bytes(obj).decode("utf-8")


class Hasher:
    """Computes record hashes: plain SHA-256, or HMAC-SHA256 when ``key`` is given."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def digest(self, body_text: str) -> str:
        return self.digest_bytes(body_text.encode("utf-8"))

    def digest_bytes(self, data: bytes) -> str:
        """The hex hash of the UTF-8 body ``data``."""
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.digest(self._key, data, "sha256").hex()


@dataclass(frozen=True, slots=True)
class ChainedRow:
    """A record as stored: chain fields, the exact hashed body text and the columns indexed for queries."""

    seq: int
    prev_hash: str
    hash: str
    ts: float
    request_id: str | None
    key_id: str | None
    tenant: str | None
    model_requested: str | None
    model: str | None
    zone: str | None
    data_class: str | None
    status: int | None
    error_code: str | None
    tokens: int | None
    body: str

    def columns(self) -> tuple[Any, ...]:
        return (self.seq, self.prev_hash, self.hash, self.ts, self.request_id, self.key_id, self.tenant,
                self.model_requested, self.model, self.zone, self.data_class, self.status, self.error_code,
                self.tokens, self.body)

    def record_dict(self) -> dict[str, Any]:
        """The body parsed, with ``hash`` added."""
        d = json.loads(self.body)
        d["hash"] = self.hash
        return d


COLUMNS = ("seq", "prev_hash", "hash", "ts", "request_id", "key_id", "tenant", "model_requested", "model", "zone",
           "data_class", "status", "error_code", "tokens", "body")


_INDEXED = COLUMNS[3:-1]  # ts .. tokens
IndexValues = tuple[float, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]


def index_values(body: dict[str, Any], ts: float) -> IndexValues:
    """The indexed column values derived from a body, in :data:`COLUMNS` order (``ts`` .. ``tokens``)."""
    get = body.get
    dec = get("decision") or {}
    return (ts, get("request_id"), get("key_id"), get("tenant"), get("model_requested"),
            dec.get("chosen_model") or get("model_requested"), dec.get("chosen_zone"),
            (get("classification") or {}).get("data_class"), get("status"), get("error_code"),
            (get("usage") or {}).get("total_tokens"))


def index_columns(body: dict[str, Any], ts: float) -> dict[str, Any]:
    """The indexed column values derived from a body (verify checks stored columns against these)."""
    return dict(zip(_INDEXED, index_values(body, ts)))


def link(bodies: list[tuple[dict[str, Any], float]], head_seq: int, head_hash: str, hasher: Hasher) -> list[ChainedRow]:
    """Chain ``(body, epoch_ts)`` pairs after the head ``(head_seq, head_hash)``; bodies get ``seq``/``prev_hash``."""
    rows = []
    seq, prev = head_seq, head_hash
    digest = hasher.digest_bytes
    for body, ts in bodies:
        seq += 1
        full = dict(body, seq=seq, prev_hash=prev)
        raw = canonical_bytes(full)
        h = digest(raw)
        rows.append(ChainedRow(seq, prev, h, *index_values(full, ts), raw.decode("utf-8")))
        prev = h
    return rows
