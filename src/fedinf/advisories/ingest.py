"""Advisories into a retrieval collection: OSV records as they are, prose through the ``advisory`` task.

Prose (text, HTML, PDF, JSON with ``details``) is turned into an OSV record first - extractors only by default,
with the model when asked - and the *record* is ingested (retrieval renders it as text with its details, affected
packages and ranges, so answers cite the record and, through its details, the advisory's words). The source
document's name and hash go into the document metadata. OSV JSON/YAML and Go vulndb reports are converted without a
model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fedinf.advisories.extract import extract_document, is_osv
from fedinf.advisories.merge import Sourced, merge_all
from fedinf.documents import load_bytes
from fedinf.errors import NotFound
from fedinf.tasks.builtin import ADVISORY


async def to_osv(data: bytes, *, name: str, runner: Any = None, use_model: bool = False) -> tuple[dict[str, Any], list[str]]:
    """One document to ``(osv_record, warnings)``; the model runs only with ``use_model`` and a runner."""
    if runner is not None and use_model:
        res = await runner.run_bytes(ADVISORY, data, name=name)
        return res.record["osv"], res.warnings
    doc = load_bytes(data, name=name, filename=name, limits=_limits())
    ex = extract_document(doc.text, doc.data)
    return ex.osv, ex.warnings


def _limits() -> Any:
    from fedinf.documents import DocumentLimits

    return DocumentLimits(max_bytes=ADVISORY.limits.max_document_bytes, max_pages=ADVISORY.limits.max_pages)


def _osv_value(data: bytes, name: str) -> dict[str, Any] | None:
    """The OSV record in ``data`` when it is one (JSON or YAML), else None."""
    if not name.lower().endswith((".json", ".yaml", ".yml")):
        return None
    try:
        if name.lower().endswith(".json"):
            value = json.loads(data)
        else:
            import yaml

            value = yaml.safe_load(data)
    except Exception:  # noqa: BLE001 - not parseable: treated as prose
        return None
    return value if is_osv(value) else None


def affected_index(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Each affected entry with the offsets of its ``affected package`` block in the text retrieval indexes for the
    record (:func:`fedinf.retrieval.sources.render_osv`), kept in the document's metadata so answers can find every
    advisory of a package without depending on search ranking."""
    from fedinf.retrieval.sources import render_osv

    text = render_osv(record)
    out, pos = [], 0
    for aff in record.get("affected") or []:
        pkg = aff.get("package") or {}
        head = f"affected package: {pkg.get('name', '?')} (ecosystem {pkg.get('ecosystem', '?')})"
        start = text.find(head, pos)
        end = text.find("\n\n", start) if start >= 0 else -1
        if start >= 0:
            pos = start + len(head)
        out.append({"name": pkg.get("name"), "ecosystem": pkg.get("ecosystem"),
                    "ranges": [r for r in aff.get("ranges") or [] if r.get("type") != "GIT"],
                    "versions": list(aff.get("versions") or []),
                    "start": start if start >= 0 else None, "end": (end if end >= 0 else len(text)) if start >= 0
                    else None})
    return out


async def ingest(retrieval: Any, collection: str, files: list[tuple[str, bytes]], *, runner: Any = None,
                 use_model: bool = False, data_class: str | None = None) -> list[dict[str, Any]]:
    """Add each ``(name, bytes)`` to ``collection`` (created as ``public`` if missing); returns one line per file:
    ``{"name", "document_id", "created", "osv_id", "warnings"}``."""
    try:
        await retrieval.get_collection(collection)
    except NotFound:
        await retrieval.create_collection(collection, data_class="public",
                                          description="security advisories (OSV records)")
    out = []
    for name, data in files:
        meta: dict[str, Any] = {}
        warnings: list[str] = []
        given = _osv_value(data, name)
        if given is not None:
            payload, doc_name, osv = data, name, given
        else:
            osv, warnings = await to_osv(data, name=name, runner=runner, use_model=use_model)
            payload = json.dumps(osv, ensure_ascii=False, indent=1).encode()
            doc_name = f"{Path(name).stem}.osv.json"
            meta = {"source_document": name, "source_sha256": hashlib.sha256(data).hexdigest()}
        meta["osv_affected"] = affected_index(json.loads(json.dumps(osv, default=str)))
        added = await retrieval.add(collection, payload, name=doc_name, data_class=data_class, metadata=meta)
        out.append({"name": name, "document_id": added.document.id, "created": added.created,
                    "osv_id": (added.document.metadata or {}).get("osv_id"), "data_class":
                    added.document.data_class.label, "warnings": warnings})
    return out


async def merge_files(files: list[tuple[str, bytes]], *, modified: str, runner: Any = None,
                      use_model: bool = False) -> list[dict[str, Any]]:
    """Several advisories (any mix of prose and OSV) to one merged record per vulnerability, with conflicts."""
    sourced = []
    for name, data in files:
        osv, _ = await to_osv(data, name=name, runner=runner, use_model=use_model)
        sourced.append(Sourced(name, osv))
    return [{"osv": rec, "conflicts": conflicts, "sources": rec.get("database_specific", {}).get("sources", [])}
            for rec, conflicts in merge_all(sourced, modified=modified)]
