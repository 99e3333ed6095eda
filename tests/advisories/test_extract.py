"""Advisory prose (and OSV / Go report documents) to OSV records that always validate."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fedinf.advisories import goreport
from fedinf.advisories.extract import extract_document, extract_text
from fedinf.advisories.ids import cvss_score, find_ids, find_references, find_severity
from fedinf.advisories.packages import normalize_name
from fedinf.advisories.schema import osv_errors

NVD = ("CVE-2021-21416: django-registration is a user registration package for Django. In django-registration "
       "prior to 3.1.2, the base user-account registration view did not properly apply filters to sensitive data "
       "(CWE-209). CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N. Users unable to upgrade can disable emailed error "
       "reports. See https://github.com/ubernostrum/django-registration/security/advisories/GHSA-58c7-px5v-82hh "
       "and https://github.com/ubernostrum/django-registration/commit/" + "a" * 40 + " (pip install "
       "django-registration)")


def test_nvd_style_text_to_osv():
    ex = extract_text(NVD, modified="2026-01-01T00:00:00Z")
    osv = ex.osv
    assert osv_errors(osv) == []
    assert osv["id"] == "GHSA-58c7-px5v-82hh" and osv["aliases"] == ["CVE-2021-21416"]
    aff = osv["affected"][0]
    assert aff["package"] == {"ecosystem": "PyPI", "name": "django-registration",
                              "purl": "pkg:pypi/django-registration"}
    assert aff["ranges"] == [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.2"}]}]
    assert osv["severity"] == [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]
    assert ex.severity["base_score"] == 7.5 and ex.severity["rating"] == "HIGH"
    assert ex.cwes == ["CWE-209"] and osv["database_specific"]["cwe_ids"] == ["CWE-209"]
    types = {r["url"].rsplit("/", 1)[-1][:4]: r["type"] for r in osv["references"]}
    assert types == {"GHSA": "ADVISORY", "aaaa": "FIX"}
    span = ex.fields["package"].span
    assert NVD[span[0]:span[1]] == "django-registration"


def test_ids_cvss_and_urls():
    ids = find_ids("see cve-2020-1234, GHSA-AAAA-bbbb-cccc (bad), GHSA-jfp7-4j67-8r3q and PYSEC-2021-11")
    assert [h.value for h in ids["CVE"]] == ["CVE-2020-1234"]
    assert [h.value for h in ids["GHSA"]] == ["GHSA-jfp7-4j67-8r3q"]
    assert cvss_score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == (9.8, "Critical")
    assert cvss_score("CVSS_V3", "CVSS:3.1/AV:X") == (None, None)
    assert find_severity("AV:N/AC:L/Au:N/C:P/I:P/A:P")[0].score == 7.5
    assert find_severity("vector CVSS:3.1/AV:Q/AC:L") == []  # invalid vectors are dropped, not guessed
    assert [r["url"] for r in find_references("at http://[::1 and https://example.org/a.")] == \
        ["https://example.org/a"]


def test_go_module_and_stdlib():
    go = extract_text("Improper path handling in golang.org/x/net/html before v0.7.0 allows XSS. See go.dev/issue/1",
                      hints={"ecosystem": "Go"}, modified="2026-01-01T00:00:00Z")
    assert go.osv["affected"][0]["package"]["name"] == "golang.org/x/net"
    assert go.osv["affected"][0]["ranges"][0]["type"] == "SEMVER"
    std = extract_text("Infinite loop in net/textproto\n\nThe Go standard library before Go 1.21.11 and 1.22.x "
                       "before 1.22.4 loops.", modified="2026-01-01T00:00:00Z")
    aff = std.osv["affected"][0]
    assert aff["package"] == {"ecosystem": "Go", "name": "stdlib", "purl": "pkg:golang/stdlib"}
    assert aff["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "1.21.11"}, {"introduced": "1.22.0-0"},
                                          {"fixed": "1.22.4"}]


def test_no_ecosystem_keeps_record_valid_and_says_so():
    ex = extract_text("Foobar before 1.2.3 allows remote attackers to crash the server.",
                      modified="2026-01-01T00:00:00Z")
    assert osv_errors(ex.osv) == []
    assert ex.osv["id"].startswith("x_FEDINF-")
    assert "affected" not in ex.osv and ex.package == "Foobar"
    assert any("no ecosystem" in w or "states no ecosystem" in w for w in ex.warnings)


def test_json_hints_and_osv_and_go_report_inputs():
    hinted = extract_document("", {"details": "Foobar before 1.2.3 crashes.", "ecosystem": "npm",
                                   "package": "@scope/foobar"}, modified="2026-01-01T00:00:00Z")
    assert hinted.osv["affected"][0]["package"]["purl"] == "pkg:npm/%40scope/foobar"
    osv = {"id": "PYSEC-2021-11", "modified": "2021-04-06T18:40:00Z", "details": "x",
           "affected": [{"package": {"name": "a", "ecosystem": "PyPI"}}]}
    assert extract_document(json.dumps(osv), osv).osv == osv
    bad = extract_document("", {"id": "NOPE-1", "modified": "yesterday", "affected": []})
    assert any("input OSV record" in w for w in bad.warnings)
    report = ("id: GO-2020-0001\nmodules:\n  - module: github.com/gin-gonic/gin\n    versions:\n      - fixed: 1.6.0\n"
              "    packages:\n      - package: github.com/gin-gonic/gin\n        symbols: [LoggerWithConfig]\n"
              "summary: Arbitrary log line injection in github.com/gin-gonic/gin\npublished: 2021-04-14T20:04:52Z\n"
              "cves: [CVE-2020-36567]\nreferences:\n  - fix: https://github.com/gin-gonic/gin/pull/2237\n")
    ex = extract_document(report, None, modified="2026-01-01T00:00:00Z")
    assert osv_errors(ex.osv) == []
    assert ex.osv["id"] == "GO-2020-0001" and ex.osv["published"] == "2021-04-14T20:04:52Z"
    assert ex.osv["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "1.6.0"}]
    assert goreport.is_go_report({"modules": [], "summary": "x"})


def test_normalize_name():
    assert normalize_name("Django_Registration", "PyPI") == "django-registration"
    assert normalize_name("Foo", "Go") == "Foo"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("abcXY 0123456789.-<>=,:/vx\n") + [
    "before ", "through ", "prior to ", "fixed in ", "CVE-2021-1234 ", "GHSA-jfp7-4j67-8r3q ", "PyPI ", "npm ",
    "golang.org/x/net ", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H ", "https://x.org/a ", "CWE-79 ", "1.2.3 ",
    "2.0.0rc1 ", ".x ", "and ", "to "]), max_size=120).map("".join))
def test_any_text_gives_a_valid_osv_record(text):
    ex = extract_text(text, modified="2026-01-01T00:00:00Z")
    assert osv_errors(ex.osv) == [], (text, ex.osv)


def test_github_advisory_json_graphql_and_rest():
    gql = {"ghsaId": "GHSA-jfp7-4j67-8r3q", "identifiers": [{"value": "GHSA-jfp7-4j67-8r3q"},
                                                           {"value": "CVE-2021-29529"}],
           "summary": "Heap overflow", "description": "details", "publishedAt": "2021-05-14T20:15:00Z",
           "updatedAt": "2021-06-01T00:00:00Z", "cvss": {"vectorString": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"},
           "cwes": {"nodes": [{"cweId": "CWE-131"}]}, "references": [{"url": "https://github.com/t/t/commit/abc"}],
           "vulnerabilities": {"nodes": [
               {"package": {"ecosystem": "PIP", "name": "Tensor_Flow"}, "vulnerableVersionRange": "< 2.1.4",
                "firstPatchedVersion": {"identifier": "2.1.4"}},
               {"package": {"ecosystem": "PIP", "name": "Tensor_Flow"}, "vulnerableVersionRange": ">= 2.2.0, < 2.2.3",
                "firstPatchedVersion": {"identifier": "2.2.3"}},
               {"package": {"ecosystem": "NPM", "name": "x"}, "vulnerableVersionRange": "> 2.1.0, <= 2.4.0",
                "firstPatchedVersion": None},
               {"package": {"ecosystem": "RUBYGEMS", "name": "y"}, "vulnerableVersionRange": "= 1.1.6",
                "firstPatchedVersion": None}]}}
    ex = extract_document(json.dumps(gql), gql, modified="2026-01-01T00:00:00Z")
    osv = ex.osv
    assert osv_errors(osv) == [] and osv["id"] == "GHSA-jfp7-4j67-8r3q" and osv["aliases"] == ["CVE-2021-29529"]
    tf, npm, gem = osv["affected"]
    assert tf["package"] == {"ecosystem": "PyPI", "name": "tensor-flow"}
    assert tf["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "2.1.4"}, {"introduced": "2.2.0"},
                                         {"fixed": "2.2.3"}]
    assert npm["ranges"] == [{"type": "SEMVER", "events": [{"introduced": "2.1.1-0"}, {"last_affected": "2.4.0"}]}]
    assert gem["versions"] == ["1.1.6"] and "ranges" not in gem
    assert osv["database_specific"]["cwe_ids"] == ["CWE-131"] and osv["references"][0]["type"] == "FIX"
    rest = {"ghsa_id": "GHSA-jfp7-4j67-8r3q", "cve_id": "CVE-2021-29529", "updated_at": "2021-06-01T00:00:00Z",
            "vulnerabilities": [{"package": {"ecosystem": "pip", "name": "foo"}, "vulnerable_version_range": "< 1.0",
                                 "first_patched_version": "1.0"}], "cwes": [{"cwe_id": "CWE-79"}],
            "references": ["https://example.org/a"]}
    r = extract_document(json.dumps(rest), rest).osv
    assert osv_errors(r) == [] and r["affected"][0]["ranges"][0]["events"][-1] == {"fixed": "1.0"}


GITHUB_PAGE = """Arbitrary code execution in foolib
Critical severity GitHub Reviewed Published Jan 2, 2024 to the GitHub Advisory Database
Package
pip foolib
Affected versions
>= 2.0.0, < 2.4.1
Patched versions
2.4.1
Description
An attacker can execute code via crafted YAML.
CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H
CVE ID
CVE-2024-1234
GHSA ID
GHSA-jfp7-4j67-8r3q"""

NVD_PAGE = """CVE-2024-5555 Detail
Description
A path traversal in Barkit allows remote attackers to read files.
Known Affected Software Configurations
cpe:2.3:a:barvendor:barkit:*:*:*:*:*:python:*:* Up to (excluding) 3.1.4
cpe:2.3:a:barvendor:barkit:*:*:*:*:*:python:*:* From (including) 4.0.0 Up to (excluding) 4.0.2
CWE-22 Improper Limitation of a Pathname"""


def test_page_layouts_github_and_nvd():
    gh = extract_text(GITHUB_PAGE, modified="2026-01-01T00:00:00Z").osv
    assert gh["id"] == "GHSA-jfp7-4j67-8r3q" and gh["aliases"] == ["CVE-2024-1234"]
    assert gh["affected"][0]["package"]["name"] == "foolib"
    assert gh["affected"][0]["ranges"][0]["events"] == [{"introduced": "2.0.0"}, {"fixed": "2.4.1"}]
    nvd = extract_text(NVD_PAGE, modified="2026-01-01T00:00:00Z").osv
    assert nvd["affected"][0]["package"] == {"ecosystem": "PyPI", "name": "barkit", "purl": "pkg:pypi/barkit"}
    assert nvd["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "3.1.4"},
                                                         {"introduced": "4.0.0"}, {"fixed": "4.0.2"}]
    assert nvd["database_specific"]["cwe_ids"] == ["CWE-22"]
