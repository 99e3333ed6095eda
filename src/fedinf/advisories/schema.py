"""The schemas: OSV records, the remediation section, and the ``advisory`` task's result record.

:data:`OSV_SCHEMA` is written here from the OSV specification (https://ossf.github.io/osv-schema/, version 1.7):
the required ``id``/``modified``, id prefixes of the known home databases (plus ``x_`` for private ones), RFC 3339
UTC timestamps, ecosystems, range types and events (an ``introduced`` in every range; ``fixed`` and
``last_affected`` never mixed in one range; full-length commit hashes in GIT ranges), CVSS vector shapes, and the
reference and credit types. The evaluation additionally validates against the official schema file from the
osv-schema repository when that is available (``bench/advisory_eval``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jsonschema_rs

OSV_SCHEMA_VERSION = "1.7.0"

ID_PREFIXES = (
    "ASB-A", "PUB-A", "ALPINE", "ALSA", "ALBA", "ALEA", "AZL", "BELL", "BIT", "CGA", "CURL", "CVE", "DEBIAN", "DRUPAL",
    "DSA", "DLA", "ELA", "DTSA", "ECHO", "EEF", "FreeBSD", "GHSA", "GO", "GSD", "HSEC", "JLSEC", "KUBE", "LBSEC",
    "LSN", "MAL", "MGASA", "OESA", "OSV", "openSUSE-SU", "PHSA", "PSF", "PYSEC", "RHBA", "RHEA", "RHSA", "RLSA",
    "RSEC", "RUSTSEC", "SUSE-SU", "SUSE-RU", "SUSE-FU", "SUSE-OU", "UBUNTU", "USN", "V8",
)
ECOSYSTEM_NAMES = (
    "AlmaLinux", "Alpaquita", "Alpine", "Android", "Bioconductor", "Bitnami", "Chainguard", "ConanCenter", "CRAN",
    "crates.io", "Debian", "GHC", "GitHub Actions", "Go", "Hackage", "Hex", "Kubernetes", "Linux", "Mageia", "Maven",
    "MinimOS", "npm", "NuGet", "openEuler", "openSUSE", "OSS-Fuzz", "Packagist", "Photon OS", "Pub", "PyPI",
    "Red Hat", "Rocky Linux", "RubyGems", "SUSE", "SwiftURL", "Ubuntu", "Wolfi",
)
REFERENCE_TYPES = ("ADVISORY", "ARTICLE", "DETECTION", "DISCUSSION", "REPORT", "FIX", "INTRODUCED", "GIT", "PACKAGE",
                   "EVIDENCE", "WEB")
_TIMESTAMP = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"}
_COMMIT = r"^(0|[a-f0-9]{40}|[a-f0-9]{64})$"
_CVSS3 = (r"^CVSS:3[.][01]/((AV|AC|PR|UI|S|C|I|A|E|RL|RC|CR|IR|AR|MAV|MAC|MPR|MUI|MS|MC|MI|MA):[A-Z]/)*"
          r"(AV|AC|PR|UI|S|C|I|A|E|RL|RC|CR|IR|AR|MAV|MAC|MPR|MUI|MS|MC|MI|MA):[A-Z]$")
_CVSS4 = r"^CVSS:4[.]0/AV:[NALP]/AC:[LH]/AT:[NP]/PR:[NLH]/UI:[NPA]/VC:[HLN]/VI:[HLN]/VA:[HLN]/SC:[HLN]/SI:[HLN]/SA:[HLN]"
_CVSS2 = r"^((AV|AC|Au|C|I|A|E|RL|RC|CDP|TD|CR|IR|AR):[A-Z]{1,3}/)*(AV|AC|Au|C|I|A|E|RL|RC|CDP|TD|CR|IR|AR):[A-Z]{1,3}$"


def _event(kind: str, pattern: str | None = None) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "string", "minLength": 1}
    if pattern:
        prop["pattern"] = pattern
    return {"type": "object", "properties": {kind: prop}, "required": [kind]}


def _events(pattern: str | None = None) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "contains": {"required": ["introduced"]},
            "items": {"oneOf": [_event(k, pattern) for k in ("introduced", "fixed", "last_affected", "limit")]}}


_SEVERITY = {
    "type": ["array", "null"],
    "items": {
        "type": "object",
        "properties": {"type": {"enum": ["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"]}, "score": {"type": "string"}},
        "required": ["type", "score"],
        "allOf": [
            {"if": {"properties": {"type": {"const": "CVSS_V2"}}}, "then": {"properties": {"score": {"pattern": _CVSS2}}}},
            {"if": {"properties": {"type": {"const": "CVSS_V3"}}}, "then": {"properties": {"score": {"pattern": _CVSS3}}}},
            {"if": {"properties": {"type": {"const": "CVSS_V4"}}}, "then": {"properties": {"score": {"pattern": _CVSS4}}}},
        ],
    },
}
_RANGE = {
    "type": "object",
    "properties": {"type": {"enum": ["GIT", "SEMVER", "ECOSYSTEM"]}, "repo": {"type": "string"},
                   "events": _events(), "database_specific": {"type": "object"}},
    "required": ["type", "events"],
    "allOf": [
        {"if": {"properties": {"type": {"const": "GIT"}}},
         "then": {"required": ["repo"], "properties": {"repo": {"type": "string"}, "events": _events(_COMMIT)}}},
        {"if": {"properties": {"events": {"contains": {"required": ["last_affected"]}}}},
         "then": {"not": {"properties": {"events": {"contains": {"required": ["fixed"]}}}}}},
    ],
}
_ECOSYSTEM = {"type": "string", "pattern": "^(" + "|".join(e.replace(".", r"\.") for e in ECOSYSTEM_NAMES) + ")(:.+)?$"}

OSV_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OSV record (fedinf's rendering of the OSV specification)",
    "type": "object",
    "properties": {
        "schema_version": {"type": "string"},
        "id": {"type": "string", "pattern": "^(x_|(" + "|".join(ID_PREFIXES) + ")-)"},
        "modified": _TIMESTAMP, "published": _TIMESTAMP, "withdrawn": _TIMESTAMP,
        "aliases": {"type": ["array", "null"], "items": {"type": "string"}},
        "related": {"type": "array", "items": {"type": "string"}},
        "upstream": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": "string"},
        "details": {"type": "string"},
        "severity": _SEVERITY,
        "affected": {"type": ["array", "null"], "items": {
            "type": "object",
            "properties": {
                "package": {"type": "object", "properties": {"ecosystem": _ECOSYSTEM, "name": {"type": "string"},
                                                             "purl": {"type": "string"}},
                            "required": ["ecosystem", "name"]},
                "severity": _SEVERITY,
                "ranges": {"type": "array", "items": _RANGE},
                "versions": {"type": "array", "items": {"type": "string"}},
                "ecosystem_specific": {"type": "object"},
                "database_specific": {"type": "object"},
            }}},
        "references": {"type": ["array", "null"], "items": {
            "type": "object", "properties": {"type": {"enum": list(REFERENCE_TYPES)},
                                             "url": {"type": "string", "format": "uri"}},
            "required": ["type", "url"]}},
        "credits": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "contact": {"type": "array", "items": {"type": "string"}},
            "type": {"enum": ["FINDER", "REPORTER", "ANALYST", "COORDINATOR", "REMEDIATION_DEVELOPER",
                              "REMEDIATION_REVIEWER", "REMEDIATION_VERIFIER", "TOOL", "SPONSOR", "OTHER"]}},
            "required": ["name"]}},
        "database_specific": {"type": "object"},
    },
    "required": ["id", "modified"],
    "allOf": [{"if": {"required": ["severity"]},
               "then": {"properties": {"affected": {"items": {"properties": {"severity": {"type": "null"}}}}}}}],
}

_TEXT = {"type": ["string", "null"], "maxLength": 600}

# what the model writes (prose only; facts come from the extractors)
REMEDIATION_MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 8, "maxLength": 160,
                    "description": "One line: what the vulnerability is and what it affects."},
        "workaround": {"type": ["string", "null"], "maxLength": 300,
                       "description": "What to do when upgrading is not possible; null if the advisory says nothing."},
        "impact": {"type": ["string", "null"], "maxLength": 300, "description": "What an attacker can do."},
    },
    "required": ["summary", "workaround", "impact"],
    "additionalProperties": False,
}

REMEDIATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "upgrade_to": {"type": "array", "maxItems": 20, "items": {
            "type": "object",
            "properties": {"package": {"type": "string"}, "ecosystem": {"type": ["string", "null"]},
                           "version": {"type": "string"},
                           "for_versions": {"type": ["string", "null"],
                                            "description": "The affected line this fix is for, e.g. >=2.6.0,<2.6.3"}},
            "required": ["package", "ecosystem", "version", "for_versions"], "additionalProperties": False}},
        "no_fix_available": {"type": "boolean"},
        "workaround": _TEXT,
        "impact": _TEXT,
        "detection": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 400}},
        "summary": {"type": ["string", "null"], "maxLength": 200},
    },
    "required": ["upgrade_to", "no_fix_available", "workaround", "impact", "detection", "summary"],
    "additionalProperties": False,
}

ADVISORY_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "osv": OSV_SCHEMA,
        "remediation": REMEDIATION_SCHEMA,
        "severity": {"type": ["object", "null"], "properties": {
            "cvss_type": {"type": ["string", "null"]}, "vector": {"type": ["string", "null"]},
            "base_score": {"type": ["number", "null"], "minimum": 0, "maximum": 10},
            "rating": {"type": ["string", "null"]}, "source": {"enum": ["vector", "stated"]}}},
        "cwes": {"type": "array", "items": {"type": "string", "pattern": r"^CWE-\d+$"}},
        "conflicts": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["osv", "remediation", "severity", "cwes", "conflicts"],
}


@lru_cache(maxsize=4)
def _validator(key: str) -> Any:
    schema = {"osv": OSV_SCHEMA, "record": ADVISORY_RECORD_SCHEMA}[key]
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def osv_errors(record: dict[str, Any]) -> list[str]:
    """Why ``record`` is not a valid OSV record (empty list: valid)."""
    return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
            for e in _validator("osv").iter_errors(record)]


def record_errors(record: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
            for e in _validator("record").iter_errors(record)]
