import pytest

from fedinf.config import Governance, default_config
from fedinf.licenses import LICENSES, license_report, license_verdict, lookup


@pytest.mark.parametrize("given,canonical", [
    ("Apache-2.0", "Apache-2.0"), ("apache 2.0", "Apache-2.0"), ("MIT", "MIT"), ("mit", "MIT"),
    ("Llama-3.1", "llama3.1"), ("LLAMA 3.2", "llama3.2"), ("llama3_3", "llama3.3"), ("Gemma", "gemma"),
    ("CC-BY-NC-4.0", "CC-BY-NC-4.0"), ("creativeml-openrail-m", "openrail-m"), ("MNPL-0.1", "mnpl"),
    ("OpenAI", "proprietary-api"), ("bigscience-bloom-rail-1.0", "bigscience-rail-1.0"), ("Qwen", "qwen"),
])
def test_lookup_aliases_case_insensitive(given, canonical):
    lic = lookup(given)
    assert lic is not None and lic.id == canonical


def test_registry_ids_unique_and_statuses_valid():
    ids = [lic.id.lower() for lic in LICENSES]
    assert len(ids) == len(set(ids))
    for lic in LICENSES:
        assert {lic.commercial, lic.research, lic.personal} <= {"allowed", "conditional", "forbidden"}
        if lic.commercial != "allowed":
            assert lic.condition, lic.id


def test_commercial_verdicts():
    g = Governance()
    assert license_verdict("Apache-2.0", g).allowed
    assert license_verdict("proprietary-api", g).allowed
    v = license_verdict("CC-BY-NC-4.0", g)
    assert (v.allowed, v.status) == (False, "forbidden") and "non-commercial" in v.reason
    v = license_verdict("llama3.1", g)
    assert (v.allowed, v.status) == (False, "conditional") and "700 million" in v.reason
    assert "accept_conditional_licenses" in v.reason
    assert license_verdict("llama3.1", Governance(accept_conditional_licenses=True)).allowed
    assert not license_verdict("mnpl", Governance(accept_conditional_licenses=True)).allowed


def test_research_and_government_use():
    assert license_verdict("CC-BY-NC-4.0", Governance(use="research")).allowed
    assert license_verdict("mnpl", Governance(use="research")).allowed
    assert not license_verdict("mnpl", Governance(use="government")).allowed


def test_unknown_license():
    v = license_verdict("my-own-license", Governance())
    assert (v.allowed, v.status) == (False, "unknown") and "accept_unknown_licenses" in v.reason
    v = license_verdict("my-own-license", Governance(accept_unknown_licenses=True))
    assert (v.allowed, v.status) == (True, "unknown")


def test_license_report_rows():
    rows = license_report(default_config())
    assert rows == [{
        "model": "smollm2-135m", "zone": "onprem", "license": "Apache-2.0", "license_id": "Apache-2.0",
        "name": "Apache License 2.0", "use": "commercial", "status": "allowed", "allowed": True,
        "reason": rows[0]["reason"],
    }]
    assert rows[0]["reason"].startswith("Apache License 2.0 (Apache-2.0), commercial use is allowed")
