"""`fedinf claims` end to end in-process (typer runner): validate (table and batch with resume), derive, review."""

import json

from typer.testing import CliRunner

from x12gen import BAD_NPI, Claim837, status277
from fedinf.cli import app


def write_config(tmp_path):
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(f"""
zones: {{onprem: {{kind: onprem, clearance: restricted}}}}
models: [{{id: fake, backend: fake, zone: onprem, license: MIT}}]
server: {{state_dir: {tmp_path / 'state'}}}
""")
    return str(cfg)


def test_cli_cycle_with_batch_resume(tmp_path):
    runner = CliRunner()
    cfg = write_config(tmp_path)
    good, bad, junk = tmp_path / "good.837", tmp_path / "bad.837", tmp_path / "junk.txt"
    good.write_text(Claim837().x12())
    bad.write_text(Claim837(claim_id="CLM2", billing_npi=BAD_NPI).x12())
    junk.write_text("not x12 at all")
    res = runner.invoke(app, ["claims", "validate", str(good), "-c", cfg])
    assert res.exit_code == 0, res.output
    (tmp_path / "r.277").write_text(status277("CLM2", "A7:562:85"))
    res = runner.invoke(app, ["claims", "derive", str(tmp_path / "r.277"), "-c", cfg])
    assert res.exit_code == 0 and "1 new" in res.output, res.output
    res = runner.invoke(app, ["claims", "rules", "list", "-c", cfg])
    rule_id = next(w for w in res.output.split() if w.startswith("R") and len(w) == 11)
    assert runner.invoke(app, ["claims", "rules", "approve", rule_id, "-c", cfg]).exit_code == 0
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["claims", "validate", str(good), str(bad), str(junk), "--out", str(out),
                              "--no-progress", "-c", cfg])
    assert res.exit_code == 1, res.output
    recs = {r["name"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["good.837"]["result"]["accepted"] and not recs["bad.837"]["result"]["accepted"]
    assert recs["bad.837"]["result"]["rules_applied"] == [rule_id]
    assert recs["junk.txt"]["status"] == "error" and recs["junk.txt"]["error"]["code"] == "invalid_x12"
    res = runner.invoke(app, ["claims", "validate", str(good), str(bad), "--out", str(out), "--no-progress",
                              "-c", cfg])
    assert "skipped" in res.output and len(out.read_text().splitlines()) == 3  # resumed: nothing re-checked
    assert runner.invoke(app, ["claims", "rules", "retire", rule_id, "-c", cfg]).exit_code == 0
    runner.invoke(app, ["claims", "validate", str(good), str(bad), "--out", str(out), "--no-progress", "-c", cfg])
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert next(r for r in recs if r["name"] == "bad.837")["result"]["accepted"]  # rule set changed: re-checked
    res = runner.invoke(app, ["audit", "verify", "-c", cfg])
    assert res.exit_code == 0, res.output
