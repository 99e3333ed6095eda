"""``fedinf advisories`` end to end: ingest, affected (exit status 1 when affected), fixed, extract, merge."""

import json

import yaml
from typer.testing import CliRunner

from fedinf.cli import app

OSV = {"id": "PYSEC-2021-11", "modified": "2021-04-06T18:40:00Z", "aliases": ["CVE-2021-21416"],
       "affected": [{"package": {"name": "django-registration", "ecosystem": "PyPI"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.2"}]}]}]}


def test_cli_flow(tmp_path):
    cfg = tmp_path / "fedinf.yaml"
    cfg.write_text(yaml.safe_dump({
        "zones": {"onprem": {"kind": "onprem", "clearance": "restricted"}},
        "models": [{"id": "fake", "backend": "fake", "zone": "onprem", "license": "MIT"}],
        "routes": {"auto": ["fake"]}, "retrieval": {"embedder": "hashing"},
        "server": {"state_dir": str(tmp_path / "state")}}))
    (tmp_path / "PYSEC-2021-11.json").write_text(json.dumps(OSV))
    (tmp_path / "foolib.html").write_text("<html><body><p>CVE-2023-1111: the foolib npm package before 2.4.1 "
                                          "leaks tokens.</p></body></html>")
    (tmp_path / "req.txt").write_text("django-registration==3.1.1\nrequests==2.31.0\n")
    runner = CliRunner()
    base = ["--config", str(cfg)]
    r = runner.invoke(app, ["advisories", "ingest", "adv", str(tmp_path / "PYSEC-2021-11.json"),
                            str(tmp_path / "foolib.html"), *base])
    assert r.exit_code == 0, r.output
    assert "PYSEC-2021-11" in r.output and "CVE-2023-1111" in r.output
    r = runner.invoke(app, ["advisories", "affected", "adv", str(tmp_path / "req.txt"), "--json", *base])
    assert r.exit_code == 1, r.output
    answer = json.loads(r.stdout)
    assert answer["affected"] == ["django-registration"]
    assert [a["cited"] for a in answer["answers"]] == [True, False]
    r = runner.invoke(app, ["advisories", "fixed", "adv", "foolib", *base])
    assert r.exit_code == 0 and json.loads(r.stdout)["upgrade_to"] == "2.4.1"
    r = runner.invoke(app, ["advisories", "extract", str(tmp_path / "foolib.html"), *base])
    assert r.exit_code == 0 and json.loads(r.stdout)["record"]["osv"]["affected"][0]["package"]["name"] == "foolib"
    r = runner.invoke(app, ["advisories", "merge", str(tmp_path / "foolib.html"), str(tmp_path / "PYSEC-2021-11.json"),
                            *base])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 2
    (tmp_path / "bad.txt").write_text("!!! nope")
    r = runner.invoke(app, ["advisories", "affected", "adv", str(tmp_path / "bad.txt"), *base])
    assert r.exit_code == 2
