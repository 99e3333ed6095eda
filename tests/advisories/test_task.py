"""The built-in ``advisory`` task through the task runner (scripted model) and over HTTP."""

import json

import pytest

from fedinf.advisories.remediation import grounded
from fedinf.errors import ConfigError
from fedinf.tasks import TaskRegistry, TaskRunner
from fedinf.tasks.builtin import ADVISORY
from tests.tasks.scripted_client import ScriptedClient

TEXT = ("CVE-2023-1111: Foolib is a parsing library for Python. Foolib before 2.4.1 and 3.x before 3.0.2 allows "
        "remote attackers to execute arbitrary code via crafted YAML. Workaround: users unable to upgrade should "
        "disable the yaml loader. Fixed in https://github.com/foo/foolib/commit/" + "b" * 40 + ".")


async def test_advisory_task_extractors_model_and_grounding():
    client = ScriptedClient(lambda body: {
        "summary": "Foolib parsing allows remote code execution via crafted YAML",
        "workaround": "Rotate all cloud credentials immediately and reinstall the operating system",
        "impact": None})
    res = (await TaskRunner(client).run_bytes(ADVISORY, TEXT.encode(), name="a.txt")).to_dict()
    rec = res["record"]
    assert res["metadata"]["osv_valid"] and res["metadata"]["schema_valid"]
    assert rec["osv"]["id"] == "CVE-2023-1111"
    assert rec["osv"]["affected"][0]["ranges"][0]["events"] == [
        {"introduced": "0"}, {"fixed": "2.4.1"}, {"introduced": "3.0.0"}, {"fixed": "3.0.2"}]
    assert [u["version"] for u in rec["remediation"]["upgrade_to"]] == ["2.4.1", "3.0.2"]
    assert rec["remediation"]["upgrade_to"][1]["for_versions"] == ">=3.0.0,<3.0.2"
    assert rec["remediation"]["no_fix_available"] is False
    # the grounded model summary is used; the invented workaround is rejected for the advisory's own sentence
    assert res["fields"]["remediation.summary"]["source"].startswith("model")
    assert rec["remediation"]["workaround"].startswith("Workaround: users unable to upgrade")
    assert res["fields"]["remediation.workaround"]["source"] == "extractor"
    assert any("workaround" in w and "not grounded" in w for w in res["warnings"])
    assert any("python -m pip show foolib" == d for d in rec["remediation"]["detection"])
    # one constrained model call, declared public (advisory text is public data)
    body = client.bodies[0]
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["summary", "workaround", "impact"]
    assert body["fedinf"]["data_class"] == "public"
    assert "fixed in: 2.4.1, 3.0.2" in body["messages"][-1]["content"]


async def test_advisory_task_without_model_and_bad_model_output():
    spec = ADVISORY.model_copy(update={"use_model": False})
    res = (await TaskRunner(ScriptedClient()).run_bytes(spec, TEXT.encode(), name="a.txt")).to_dict()
    assert res["metadata"]["model_calls"] == 0 and res["metadata"]["osv_valid"]
    assert res["record"]["remediation"]["summary"].startswith("Foolib before 2.4.1")
    res2 = (await TaskRunner(ScriptedClient(lambda b: "not json")).run_bytes(ADVISORY, TEXT.encode(),
                                                                             name="a.txt")).to_dict()
    assert res2["metadata"]["osv_valid"] and any("not JSON" in w for w in res2["warnings"])


async def test_html_page_and_nothing_found():
    html = (b"<html><head><title>Advisory</title><script>var x='before 9.9.9';</script></head><body><h1>GHSA-jfp7-4j67-"
            b"8r3q</h1><p>The <code>barpkg</code> npm package before 1.0.5 leaks tokens.</p></body></html>")
    spec = ADVISORY.model_copy(update={"use_model": False})
    res = (await TaskRunner(ScriptedClient()).run_bytes(spec, html, name="page.html")).to_dict()
    aff = res["record"]["osv"]["affected"][0]
    assert aff["package"]["ecosystem"] == "npm" and aff["package"]["name"] == "barpkg"
    assert aff["ranges"][0]["events"][-1] == {"fixed": "1.0.5"}
    empty = (await TaskRunner(ScriptedClient()).run_bytes(spec, b"Nothing to see.", name="n.txt")).to_dict()
    assert empty["metadata"]["osv_valid"] and empty["record"]["remediation"]["upgrade_to"] == []
    assert empty["record"]["remediation"]["no_fix_available"] is False  # no package: nothing to say


def test_registry_and_builder_validation():
    assert "advisory" in TaskRegistry.from_entries([]).names()
    with pytest.raises(ConfigError) as exc:
        TaskRegistry.from_entries([{"name": "x", "output_schema": {"type": "object", "properties": {"a": {}}},
                                    "builder": "nope"}])
    assert "unknown builder" in exc.value.message


def test_grounding():
    assert grounded("Foolib allows remote code execution", TEXT + " code execution")
    assert not grounded("Reinstall Windows and rotate passwords", TEXT)
    assert not grounded("", TEXT)
    assert json.dumps(ADVISORY.describe())  # the task list shows it
