"""``fedinf ingest`` and ``fedinf ask`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedinf.cli import app

runner = CliRunner()

CONFIG = """
server: {{state_dir: "{state}"}}
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: local-a, backend: fake, zone: onprem, license: Apache-2.0, options: {{reply: "Upgrade to 2.4.1 [1]."}}}}
  - {{id: cloud-b, backend: fake, zone: cloud, license: proprietary-api, options: {{reply: "I do not know."}}}}
routes:
  auto: [local-a]
  cloudonly: [cloud-b]
retrieval: {{embedder: hashing}}
"""
OSV = {"id": "PYSEC-2099-3", "details": "demo-lib before 2.4.1 lets attackers read files.", "affected": [
    {"package": {"name": "demo-lib", "ecosystem": "PyPI"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.4.1"}]}]}]}


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "PYSEC-2099-3.json").write_text(json.dumps(OSV))
    (docs / "sub" / "notes.md").write_text("# Notes\n\nWe run demo-lib 2.3 on the build farm.")
    (docs / "sub" / "image.png").write_bytes(b"\x89PNG not indexed")
    (docs / "empty.txt").write_text("   ")
    return cfg, docs


def test_ingest_a_folder_then_ask(setup: tuple[Path, Path]) -> None:
    cfg, docs = setup
    r = runner.invoke(app, ["ingest", "adv", str(docs), "-c", str(cfg)])
    assert r.exit_code == 1, r.output  # the empty file failed, the rest went in
    assert "created collection adv" in r.output and "2 added, 0 already present, 1 failed" in r.output
    r = runner.invoke(app, ["ingest", "adv", str(docs / "PYSEC-2099-3.json"), "-c", str(cfg)])
    assert r.exit_code == 0 and "0 added, 1 already present" in r.output
    r = runner.invoke(app, ["ask", "adv", "which demo-lib version is fixed?", "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "Upgrade to 2.4.1 [1]." in r.output and "PYSEC-2099-3.json" in r.output
    r = runner.invoke(app, ["ask", "adv", "which demo-lib version is fixed?", "--model", "cloudonly", "--json",
                            "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["fedinf"]["cited"] is False and body["fedinf"]["sources"]


def test_ask_unknown_collection_and_missing_files(setup: tuple[Path, Path]) -> None:
    cfg, docs = setup
    r = runner.invoke(app, ["ask", "nothing", "q?", "-c", str(cfg)])
    assert r.exit_code == 1 and "collection_not_found" in r.output
    r = runner.invoke(app, ["ingest", "adv", str(docs / "nope.txt"), "-c", str(cfg)])
    assert r.exit_code == 2 and "no such file" in r.output
