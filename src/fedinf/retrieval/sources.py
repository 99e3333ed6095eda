"""Sources: raw bytes of one input to the text that is chunked, embedded and cited.

Plain text, Markdown, HTML and PDF go through :mod:`fedinf.documents` (page numbers and offsets kept). OSV
vulnerability records (JSON or YAML; recognised by their ``id`` plus ``affected``/``details``/``schema_version``)
are rendered as readable text - id, aliases, summary, details, each affected package with its ranges and fixed
versions, severity, CWEs, references - so that a question such as "what is the fixed version of X" finds the chunk
that states it, and a citation's offsets point into that rendered text. The parsed record is kept in
``Source.record`` (``metadata`` carries its id, aliases and packages). Other JSON and YAML are indexed as their
pretty-printed text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from fedinf.documents import DocumentLimits, load_bytes
from fedinf.documents.loader import decode_text, sha256_hex
from fedinf.errors import InvalidDocument, PayloadTooLarge

_YAML_EXT = (".yaml", ".yml")
_YAML_MEDIA = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@dataclass(frozen=True, slots=True)
class Source:
    """Text to index and where it came from. ``pages`` are ``(number, start, end)`` offsets into ``text``."""

    name: str
    kind: str  # text | html | pdf | json | yaml | osv
    text: str
    pages: tuple[tuple[int, int, int], ...]
    sha256: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    record: Any = None


def is_osv(value: Any) -> bool:
    """True for a mapping that looks like an OSV record."""
    return (isinstance(value, dict) and isinstance(value.get("id"), str)
            and any(k in value for k in ("affected", "details", "schema_version", "summary")))


def _line(label: str, value: Any) -> str:
    return f"{label}: {value}\n" if value not in (None, "", [], {}) else ""


def _ranges(affected: dict[str, Any]) -> list[str]:
    out = []
    for r in affected.get("ranges") or []:
        events = []
        for ev in r.get("events") or []:
            events += [f"{k} {v}" for k, v in ev.items()]
        out.append(f"  range ({r.get('type', '?')}): " + ", ".join(events))
    return out


def render_osv(record: dict[str, Any]) -> str:
    """An OSV record as text, in a fixed order (see the module docstring)."""
    parts = [_line("id", record.get("id")), _line("aliases", ", ".join(record.get("aliases") or [])),
             _line("summary", record.get("summary")), _line("published", record.get("published")),
             _line("modified", record.get("modified"))]
    if record.get("details"):
        parts.append("\n" + str(record["details"]).strip() + "\n\n")
    for aff in record.get("affected") or []:
        pkg = aff.get("package") or {}
        fixed = [str(ev["fixed"]) for r in aff.get("ranges") or [] for ev in r.get("events") or [] if "fixed" in ev]
        lines = [f"affected package: {pkg.get('name', '?')} (ecosystem {pkg.get('ecosystem', '?')})"]
        lines += _ranges(aff)
        if fixed:
            lines.append("  fixed versions: " + ", ".join(fixed))
        versions = aff.get("versions") or []
        if versions:
            lines.append(f"  affected versions ({len(versions)}): " + ", ".join(map(str, versions[:50]))
                         + (" ..." if len(versions) > 50 else ""))
        parts.append("\n".join(lines) + "\n")
    for sev in record.get("severity") or []:
        parts.append(_line(f"severity {sev.get('type', '')}".strip(), sev.get("score")))
    cwes = (record.get("database_specific") or {}).get("cwe_ids") or []
    parts.append(_line("CWE", ", ".join(map(str, cwes))))
    refs = [f"  {r.get('type', 'WEB')} {r.get('url')}" for r in record.get("references") or [] if r.get("url")]
    if refs:
        parts.append("references:\n" + "\n".join(refs) + "\n")
    return "".join(parts).strip() + "\n"


def _osv_metadata(record: dict[str, Any]) -> dict[str, Any]:
    pkgs = [{"name": (a.get("package") or {}).get("name"), "ecosystem": (a.get("package") or {}).get("ecosystem")}
            for a in record.get("affected") or []]
    return {"osv_id": record.get("id"), "aliases": list(record.get("aliases") or []), "packages": pkgs}


def _structured(data: bytes, name: str, media_type: str | None) -> tuple[str, Any] | None:
    """(kind, parsed value) for JSON or YAML input, else None."""
    ext = os.path.splitext(name)[1].lower()
    media = (media_type or "").split(";", 1)[0].strip().lower()
    if ext in _YAML_EXT or media in _YAML_MEDIA:
        try:
            return "yaml", yaml.safe_load(decode_text(data))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InvalidDocument(f"{name}: the YAML document does not parse{where}") from None
    if ext == ".json" or media == "application/json" or data[:1024].lstrip()[:1] in (b"{", b"["):
        try:
            return "json", json.loads(decode_text(data))
        except ValueError:
            if ext == ".json" or media == "application/json":
                raise InvalidDocument(f"{name}: the JSON document does not parse") from None
    return None


def load_source(data: bytes, *, name: str, media_type: str | None = None,
                limits: DocumentLimits = DocumentLimits()) -> Source:
    """Parse one input; raise :class:`~fedinf.errors.RequestError` subclasses on bad input (never a 500)."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"{name} is {len(data)} bytes; the limit is {limits.max_bytes}",
                              details={"bytes": len(data), "limit": limits.max_bytes})
    if not data.strip():
        raise InvalidDocument(f"{name}: the document is empty")
    parsed = _structured(data, name, media_type) if not data.lstrip().startswith(b"%PDF-") else None
    if parsed is not None:
        kind, value = parsed
        common: dict[str, Any] = {"name": name, "sha256": sha256_hex(data), "size_bytes": len(data)}
        if is_osv(value):
            text = render_osv(value)
            return Source(kind="osv", text=text, pages=((1, 0, len(text)),), metadata=_osv_metadata(value),
                          record=value, **common)
        text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True) if kind == "yaml" else \
            json.dumps(value, indent=2, ensure_ascii=False)
        if not text.strip() or value is None:
            raise InvalidDocument(f"{name}: the document has no content")
        return Source(kind=kind, text=text, pages=((1, 0, len(text)),), record=value, **common)
    doc = load_bytes(data, name=name, filename=name, media_type=media_type, limits=limits)
    pages = tuple((p.number, p.start, p.end) for p in doc.pages)
    return Source(name=name, kind=doc.kind, text=doc.text, pages=pages, sha256=doc.sha256,
                  size_bytes=doc.size_bytes, metadata={"warnings": list(doc.warnings)} if doc.warnings else {})


def text_source(text: str, *, name: str) -> Source:
    """A source from text already in memory (no parsing)."""
    data = text.encode("utf-8")
    if not text.strip():
        raise InvalidDocument(f"{name}: the document is empty")
    return Source(name=name, kind="text", text=text, pages=((1, 0, len(text)),), sha256=sha256_hex(data),
                  size_bytes=len(data))
