"""The ``advisory`` task's record builder: document -> deterministic OSV extraction -> model prose (constrained to
:data:`~fedinf.advisories.schema.REMEDIATION_MODEL_SCHEMA`) -> remediation -> validated record.

The result's ``record`` is ``{"osv": <OSV record>, "remediation": {...}, "severity": {...}, "cwes": [...],
"conflicts": []}``; ``fields`` gives the provenance of the package, ecosystem, id, ranges and each prose field
(``extractor`` with offsets, ``model``, ``hint``, ``rejected`` or ``none``); ``metadata.osv_valid`` says whether the
OSV part validates against the OSV schema (it always should: an invalid one is reported as a warning, never
hidden).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fedinf.advisories.extract import Extraction, extract_document
from fedinf.advisories.remediation import merge_prose, model_facts, section
from fedinf.advisories.schema import REMEDIATION_MODEL_SCHEMA, osv_errors, record_errors
from fedinf.documents import Document
from fedinf.tasks.runner import TaskResult
from fedinf.tasks.spec import TaskSpec

MODEL_PROMPT = ("Read this security advisory. Write a one-line summary of the vulnerability, the workaround it "
                "gives (null if none) and the impact, using only what the advisory says.\n"
                "Known facts: {facts}\n\nAdvisory:\n{document}")


def record(ex: Extraction, remediation: dict[str, Any], conflicts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    osv = dict(ex.osv)
    if remediation.get("summary") and "summary" not in osv:
        osv["summary"] = str(remediation["summary"])[:200]
    return {"osv": osv, "remediation": remediation, "severity": ex.severity, "cwes": list(ex.cwes),
            "conflicts": conflicts or []}


async def run(runner: Any, spec: TaskSpec, doc: Document) -> TaskResult:
    """Run the advisory task on one loaded document (see the module docstring)."""
    started = time.monotonic()
    ex = await asyncio.to_thread(extract_document, doc.text, doc.data)
    warnings = list(doc.warnings) + ex.warnings
    meta: dict[str, Any] = {"route": spec.route, "data_class": spec.policy.min_data_class.label,
                            "models": [], "zones": [], "model_calls": 0, "usage": {}}
    model_record = None
    if spec.use_model and ex.text.strip():
        model_spec = spec.model_copy(update={
            "output_schema": REMEDIATION_MODEL_SCHEMA,
            "prompt": MODEL_PROMPT.replace("{facts}", model_facts(ex) or "none extracted"),
            "builder": None})
        prose_doc = doc if doc.kind != "json" else Document.from_pages(
            [ex.text], name=doc.name, kind="text", sha256=doc.sha256, size_bytes=doc.size_bytes)
        model_record = await runner.ask_model(model_spec, prose_doc, meta, warnings)
    prose = merge_prose(ex, model_record, warnings)
    remediation = section(ex, prose)
    rec = record(ex, remediation)
    osv_problems = osv_errors(rec["osv"])
    problems = record_errors(rec)
    warnings += [f"OSV record invalid: {m}" for m in osv_problems]
    warnings += [f"record does not match the output schema: {m}" for m in problems if m not in osv_problems]
    fields = {k: v.to_dict() for k, v in ex.fields.items()}
    fields.update({f"remediation.{k}": v.to_dict() for k, v in prose.items()})
    meta.update(schema_valid=not problems, osv_valid=not osv_problems,
                latency_ms=round((time.monotonic() - started) * 1000, 1),
                model=meta["models"][0] if meta["models"] else None,
                zone=meta["zones"][0] if meta["zones"] else None)
    return TaskResult(task=spec.name, document=doc.summary(), record=rec, fields=fields, checks=[],
                      warnings=warnings, metadata=meta)
