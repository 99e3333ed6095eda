"""Task definitions: schema mistakes caught at load time, references checked against the config, task files found
next to the config, and batch resume keyed on the definition's hash."""

import asyncio
import json
import os
import stat

import pytest
from typer.testing import CliRunner

from fedinf.cli import app
from fedinf.config import load_config
from fedinf.documents import load_bytes
from fedinf.errors import ConfigError
from fedinf.tasks import TaskRegistry, TaskRunner, TaskSpec, run_batch
from fedinf.tasks.merge import merge
from scripted_client import ScriptedClient

BASE = {"name": "po", "prompt": "Extract {fields}\n{document}",
        "output_schema": {"type": "object", "properties": {"po": {"type": ["string", "null"]},
                                                            "tags": {"type": ["array", "null"],
                                                                     "items": {"type": "string"}}},
                          "required": ["po", "tags"]}}
CONFIG = """
zones:
  onprem: {kind: onprem, clearance: restricted}
models:
  - {id: fake-onprem, backend: fake, zone: onprem, license: MIT, capabilities: [json_schema],
     options: {reply: '{"po": "7", "tags": null}'}}
routes:
  auto: [fake-onprem]
access: {require_keys: false}
server: {state_dir: STATE}
tasks:
  - {file: tasks/po.yaml}
"""


def _spec(**over):
    return TaskSpec.model_validate({**BASE, **over})


def test_type_lists_with_null_merge_without_crashing():
    spec = _spec()
    doc = load_bytes(b"PO 7", name="a.txt")
    merged = merge(spec, doc, None, {})
    assert merged.record == {"po": None, "tags": None}


def test_required_naming_a_missing_property_is_an_error():
    schema = {**BASE["output_schema"], "required": ["po", "total"]}
    with pytest.raises(ValueError, match=r"required names \['total'\]"):
        _spec(output_schema=schema)


def test_invalid_pattern_regex_is_an_error():
    schema = {"type": "object", "properties": {"po": {"type": "string", "pattern": "([A-Z"}}}
    with pytest.raises(ValueError, match="not a valid JSON Schema.*properties.po.pattern"):
        _spec(output_schema=schema)


def _write_config(tmp_path, task_yaml, config=CONFIG):
    (tmp_path / "conf" / "tasks").mkdir(parents=True)
    (tmp_path / "conf" / "tasks" / "po.yaml").write_text(task_yaml)
    path = tmp_path / "conf" / "fedinf.yaml"
    path.write_text(config.replace("STATE", str(tmp_path / "state")))
    return path


TASK_YAML = """
name: po
prompt: "Extract {fields}\\n{document}"
output_schema:
  type: object
  properties: {po: {type: [string, "null"]}, tags: {type: [array, "null"], items: {type: string}}}
  required: [po, tags]
"""


@pytest.mark.parametrize("extra, message", [
    ("route: nowhere\n", "route 'nowhere' is neither a route"),
    ("policy: {allowed_zones: [mars]}\n", "zone 'mars'"),
    ("output_schema: {type: object, properties: {po: {type: string, pattern: '(['}}}\n", "pattern"),
    ("output_schema: {type: object, properties: {po: {type: string}}, required: [po, x]}\n", "required names"),
])
def test_config_check_reports_task_mistakes(tmp_path, extra, message):
    lines = [l for l in TASK_YAML.splitlines() if not (extra.startswith("output_schema") and
                                                       (l.startswith(("output_schema", "  "))))]
    path = _write_config(tmp_path, "\n".join(lines) + "\n" + extra)
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert message in result.output.replace("\n", " ")


def test_task_files_resolve_against_the_config_file_from_any_directory(tmp_path, monkeypatch):
    path = _write_config(tmp_path, TASK_YAML)
    monkeypatch.chdir(tmp_path)  # not the config's folder
    cfg = load_config("conf/fedinf.yaml")
    reg = TaskRegistry.from_config(cfg)  # no base_dir: the paths were resolved when the config was read
    assert "po" in reg.names()
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output


def test_resume_reruns_documents_after_the_task_definition_changes(tmp_path):
    docs = []
    for i in range(2):
        p = tmp_path / f"d{i}.txt"
        p.write_text(f"PO {i}")
        docs.append(p)
    out = tmp_path / "out.jsonl"
    client = ScriptedClient(lambda body: {"po": "1", "tags": None})
    first = asyncio.run(run_batch(TaskRunner(client), _spec(), docs, out))
    assert first.ok == 2
    mode = stat.S_IMODE(os.stat(out).st_mode)
    assert mode == 0o600, oct(mode)
    same = asyncio.run(run_batch(TaskRunner(client), _spec(), docs, out))
    assert same.skipped == 2 and same.ok == 0
    edited = _spec(prompt="Extract {fields} carefully\n{document}")
    again = asyncio.run(run_batch(TaskRunner(client), edited, docs, out))
    assert again.redefined == 2 and again.ok == 2 and again.skipped == 0
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == 2 and {r["task_hash"] for r in records} == {edited.definition_hash()}


def test_sqlite_stores_are_created_owner_only(tmp_path):
    from fedinf.audit.db import sqlite_connect

    conn = sqlite_connect(tmp_path / "state" / "keys.db")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "keys.db").st_mode) == 0o600


def test_a_model_timeout_keeps_the_extractor_values_and_names_the_setting():
    from fedinf.errors import BackendTimeout
    from fedinf.tasks import INVOICE

    client = ScriptedClient(fail=BackendTimeout("the local model did not finish before the request deadline"))
    spec = INVOICE.model_copy(update={"timeout_s": 30.0})
    result = asyncio.run(TaskRunner(client).run_bytes(spec, b"ACME Ltd.\nInvoice date: 2024-03-01\nTotal: 12.50 EUR",
                                                      name="a.txt"))
    assert result.record["total_amount"] == 12.5 and result.metadata["model_timeout"] is True
    assert any("timed out" in w and "30 s" in w and "--timeout" in w for w in result.warnings)


def test_run_concurrency_defaults_to_the_local_slots():
    from fedinf.cli.run import default_concurrency
    from fedinf.config import parse_config

    cfg = parse_config("""
zones: {onprem: {kind: onprem, clearance: restricted}}
models:
  - {id: small, backend: local, zone: onprem, license: Apache-2.0, options: {parallel: 3}}
  - {id: remote, backend: fake, zone: onprem, license: MIT}
routes: {auto: [small], far: [remote]}
""")
    assert default_concurrency(cfg, "auto") == 3
    assert default_concurrency(cfg, "far") == 4


def test_the_model_is_asked_only_about_unsettled_fields_from_snippets():
    from fedinf.tasks import UTILITY_BILL

    filler = "\n".join(f"Conservation tip number {i}: turn the lights off." for i in range(200))
    text = ("Acme Power Company\nAccount Number: 55-1234-9\nStatement Date: 01/20/2026\nPayment Due Date: "
            f"02/10/2026\nAmount Due: $88.10\n{filler}\n")
    client = ScriptedClient(lambda body: {k: None for k in
                                          body["response_format"]["json_schema"]["schema"]["properties"]})
    result = asyncio.run(TaskRunner(client).run_bytes(UTILITY_BILL, text.encode(), name="bill.txt"))
    body = client.bodies[0]
    asked = set(body["response_format"]["json_schema"]["schema"]["properties"])
    assert "amount_due" not in asked and "due_date" not in asked  # settled by labels
    assert {"account_holder", "usage_lines"} <= asked
    prompt = body["messages"][-1]["content"]
    assert "Amount Due: $88.10" in prompt and len(prompt) < 3000 and "tip number 150" not in prompt
    assert result.record["amount_due"] == 88.1 and result.metadata["model_fields"] == sorted(asked, key=list(
        UTILITY_BILL.output_schema["properties"]).index)
