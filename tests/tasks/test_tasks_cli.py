import json

from typer.testing import CliRunner

import pdfgen
from fedinf.cli import app

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


def test_fedinf_run_records_errors_continues_and_resumes(tmp_path):
    (tmp_path / "fedinf.yaml").write_text(CONFIG.replace("STATE", str(tmp_path / "state")))
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"inv{i}.pdf").write_bytes(pdfgen.text_pdf([[f"ACME {i} Ltd.", f"Invoice number: A-{i}1",
                                                             f"Total {i}1.00 EUR"]]))
    (docs / "scan.pdf").write_bytes(pdfgen.corrupt_pdf())
    (docs / ".hidden").write_text("skip me")
    out = tmp_path / "results.jsonl"
    args = ["run", "invoice", str(docs), "--out", str(out), "--config", str(tmp_path / "fedinf.yaml"),
            "--no-progress", "-j", "2"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 1, first.output  # one document failed; the others have records
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == 4
    by_name = {r["name"]: r for r in records}
    assert by_name["scan.pdf"]["error"]["code"] == "invalid_document"
    assert by_name["inv2.pdf"]["result"]["record"]["total_amount"] == 21.0
    assert by_name["inv2.pdf"]["result"]["record"]["invoice_number"] == "A-21"
    assert "docs per minute" in first.output and "invalid_document" in first.output

    second = CliRunner().invoke(app, args)
    assert "skipped" in second.output and len(out.read_text().splitlines()) == 4


def test_fedinf_run_unknown_task(tmp_path):
    (tmp_path / "fedinf.yaml").write_text(CONFIG.replace("STATE", str(tmp_path / "state")))
    result = CliRunner().invoke(app, ["run", "nope", str(tmp_path), "--out", str(tmp_path / "o.jsonl"),
                                      "--config", str(tmp_path / "fedinf.yaml")])
    assert result.exit_code == 2 and "unknown task" in result.output
