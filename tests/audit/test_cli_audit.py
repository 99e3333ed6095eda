"""``fedinf audit`` end to end on a SQLite audit store."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from fedinf.audit import SqliteAuditStore
from fedinf.cli import app

from .test_chain import fill

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


def test_audit_commands(tmp_path) -> None:
    path = tmp_path / "audit.db"
    fill(SqliteAuditStore(path), 30)
    store = f"sqlite:///{path}"

    code, out = run("audit", "verify", "--store", store)
    assert code == 0 and "OK" in out and "30 record(s)" in out

    code, out = run("audit", "tail", "-n", "3", "--json", "--store", store)
    assert code == 0 and [json.loads(x)["seq"] for x in out.splitlines()] == [28, 29, 30]

    code, out = run("audit", "query", "--tenant", "acme", "--outcome", "error", "--json", "--store", store)
    assert code == 0 and [json.loads(x)["seq"] for x in out.splitlines()] == [7, 21]

    code, out = run("audit", "query", "--model", "cloud", "--store", store)
    assert code == 0 and "6 audit record(s)" in out

    code, out = run("audit", "query", "--since", "not-a-time", "--store", store)
    assert code == 2

    out_file = tmp_path / "a.csv"
    code, out = run("audit", "export", "--format", "csv", "--out", str(out_file), "--class", "confidential",
                    "--store", store)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert len(rows) == 7 and {r["data_class"] for r in rows} == {"confidential"}
    assert rows[0]["entities"] == "EMAIL=1;PERSON=1"

    code, out = run("audit", "export", "--store", store)
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 30 and all("hash" in x for x in lines)

    code, out = run("audit", "verify", "--json", "--store", store)
    head = json.loads(out)
    code, out = run("audit", "verify", "--from", f"{head['head_seq']}:{head['head_hash']}", "--store", store)
    assert code == 0 and "1 record(s)" in out
    code, out = run("audit", "verify", "--from", "nonsense", "--store", store)
    assert code == 2

    SqliteAuditStore(path).execute("UPDATE audit_records SET tenant = 'x' WHERE seq = 4")
    code, out = run("audit", "verify", "--json", "--store", store)
    assert code == 1
    report = json.loads(out)
    assert report["problems"][0]["seq"] == 4 and report["problems"][0]["kind"] == "edited"
