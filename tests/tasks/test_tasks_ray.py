"""`fedinf run --engine ray` on a local Ray (2 CPUs) gives the records of the local runner, resumes the same way,
and audits every model call like it. One test: starting Ray takes 10-20 s."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import pdfgen
from fedinf.cli import app

pytestmark = pytest.mark.ray

ANSWER = {"issuer": None, "invoice_number": None, "invoice_date": None, "due_date": None, "currency": "EUR",
          "net_amount": None, "tax_amount": None, "total_amount": None, "line_items": []}
CONFIG = f"""
zones:
  onprem: {{kind: onprem, clearance: restricted}}
models:
  - id: fake-onprem
    backend: fake
    zone: onprem
    license: MIT
    capabilities: [json_schema]
    options: {{reply: '{json.dumps(ANSWER)}'}}
routes:
  auto: [fake-onprem]
access: {{require_keys: false}}
server: {{state_dir: STATE}}
"""


def comparable(out: Path) -> list[dict[str, Any]]:
    """Records without what differs between any two runs (timings), in name order."""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for rec in records:
        if rec["status"] == "ok":
            rec["result"]["metadata"].pop("latency_ms", None)
    return sorted(records, key=lambda r: r["name"])


def audit_rows(state: Path) -> list[tuple[Any, ...]]:
    from fedinf.audit import SqliteAuditStore
    from fedinf.audit.chain import COLUMNS

    store = SqliteAuditStore(state / "audit.db")
    try:
        assert store.verify().ok
        cols = [COLUMNS.index(c) for c in ("model", "zone", "data_class", "status")]
        return sorted(tuple(row[i] for i in cols) for row in store.iter_rows())
    finally:
        store.close()


def test_ray_engine_matches_the_local_runner_and_resumes(tmp_path: Path) -> None:
    try:
        import ray
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("ray is not installed (pip install 'fedinf[ray]')")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"inv{i}.pdf").write_bytes(pdfgen.text_pdf([[f"ACME {i} Ltd.", f"Invoice number: A-{i}1",
                                                             f"Total {i}1.00 EUR"]]))
    (docs / "scan.pdf").write_bytes(pdfgen.corrupt_pdf())
    shutil.copy(docs / "inv0.pdf", docs / "copy-of-inv0.pdf")
    runs = {}
    try:
        for engine in ("local", "ray"):
            (tmp_path / f"{engine}.yaml").write_text(CONFIG.replace("STATE", str(tmp_path / f"state-{engine}")))
            out = tmp_path / f"{engine}.jsonl"
            args = ["run", "invoice", str(docs), "--out", str(out), "--config", str(tmp_path / f"{engine}.yaml"),
                    "--no-progress", "-j", "2", "--engine", engine]
            first = CliRunner().invoke(app, args)
            assert first.exit_code == 1, first.output  # scan.pdf fails, the others have records
            assert "docs per minute" in first.output and "invalid_document" in first.output
            before = out.read_text()
            second = CliRunner().invoke(app, args)  # resume: everything is done, nothing re-runs
            assert "skipped" in second.output and out.read_text() == before, second.output
            runs[engine] = (comparable(out), audit_rows(tmp_path / f"state-{engine}"))
    finally:
        ray.shutdown()
    (local, local_audit), (on_ray, ray_audit) = runs["local"], runs["ray"]
    assert len(local) == 5 and {r["status"] for r in local} == {"ok", "error"}
    assert on_ray == local
    assert ray_audit == local_audit and len(ray_audit) == 4  # one audited model call per readable document
