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


def _is_osv_bytes(data: bytes, name: str) -> bool:
    if not name.lower().endswith((".json", ".yaml", ".yml")):
        return False
    try:
        if name.lower().endswith(".json"):
            value = json.loads(data)
        else:
            import yaml

            value = yaml.safe_load(data)
    except Exception:  # noqa: BLE001 - not parseable: treated as prose
        return False
    return is_osv(value)


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
        if _is_osv_bytes(data, name):
            payload, doc_name = data, name
        else:
            osv, warnings = await to_osv(data, name=name, runner=runner, use_model=use_model)
            payload = json.dumps(osv, ensure_ascii=False, indent=1).encode()
            doc_name = f"{Path(name).stem}.osv.json"
            meta = {"source_document": name, "source_sha256": hashlib.sha256(data).hexdigest()}
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
