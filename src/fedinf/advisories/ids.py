"""Identifiers, weaknesses, references and severity in advisory text: CVE/GHSA/PYSEC/GO/RUSTSEC/OSV ids, CWE ids,
URLs (typed as OSV reference types) and CVSS vectors (scored with the ``cvss`` package)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs

ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "CVE": re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.I),
    "GHSA": re.compile(r"\bGHSA(?:-[23456789cfghjmpqrvwx]{4}){3}\b", re.I),
    "PYSEC": re.compile(r"\bPYSEC-\d{4}-\d+\b"),
    "GO": re.compile(r"\bGO-\d{4}-\d{4,}\b"),
    "RUSTSEC": re.compile(r"\bRUSTSEC-\d{4}-\d{4}\b"),
    "OSV": re.compile(r"\bOSV-\d{4}-\d+\b"),
    "PSF": re.compile(r"\bPSF-\d{4}-\d+\b"),
}
# which id becomes the record's own id when several are given (the others are aliases)
ID_PREFERENCE = ("PYSEC", "GO", "RUSTSEC", "GHSA", "PSF", "OSV", "CVE")
_CWE = re.compile(r"\bCWE-(\d{1,4})\b", re.I)
_URL = re.compile(r"https?://[^\s<>\"'`)\]]+", re.I)
_CVSS3 = re.compile(r"CVSS:3\.[01]/(?:[A-Z]{1,3}:[A-Z]/)*[A-Z]{1,3}:[A-Z]")
_CVSS4 = re.compile(r"CVSS:4\.0/(?:[A-Z]{1,3}:[A-Z]/)*[A-Z]{1,3}:[A-Z]")
_CVSS2 = re.compile(r"(?<![\w:/])\(?(?:AV:[LAN]/AC:[HML]/Au:[MSN]/C:[NPC]/I:[NPC]/A:[NPC])")
_SCORE = re.compile(r"\b(?:CVSS(?:\s*v?[234](?:\.[01])?)?\s*(?:base\s+)?score(?:\s+of)?|base\s+score)\s*[:=]?\s*"
                    r"(\d{1,2}\.\d)\b", re.I)
_SEVERITY_WORD = re.compile(r"\b(?:severity|rated|rating)\s*[:=]?\s*(?:of\s+|as\s+)?(critical|high|moderate|medium|low)\b"
                            r"|\b(critical|high|moderate|medium|low)\s+severity\b", re.I)


@dataclass(frozen=True)
class Hit:
    value: str
    start: int
    end: int


def find_ids(text: str) -> dict[str, list[Hit]]:
    """Every advisory id, by family, in order of appearance, upper-cased (GHSA ids lower-case their body)."""
    out: dict[str, list[Hit]] = {}
    for family, pat in ID_PATTERNS.items():
        seen: set[str] = set()
        for m in pat.finditer(text):
            v = m.group(0).upper() if family != "GHSA" else "GHSA-" + m.group(0)[5:].lower()
            if v not in seen:
                seen.add(v)
                out.setdefault(family, []).append(Hit(v, m.start(), m.end()))
    return out


def primary_id(ids: dict[str, list[Hit]]) -> tuple[str | None, list[str]]:
    """``(id, aliases)``: the preferred family's first id, every other id an alias."""
    all_ids = [h.value for fam in ID_PREFERENCE for h in ids.get(fam, [])]
    if not all_ids:
        return None, []
    return all_ids[0], all_ids[1:]


def find_cwes(text: str) -> list[Hit]:
    seen: set[str] = set()
    out = []
    for m in _CWE.finditer(text):
        v = f"CWE-{int(m.group(1))}"
        if v not in seen:
            seen.add(v)
            out.append(Hit(v, m.start(), m.end()))
    return out


def reference_type(url: str) -> str:
    """The OSV reference type a URL most likely is."""
    u = url.lower()
    if re.search(r"/commit/|/commits/|/pull/\d+|/merge_requests/|/compare/|gerrit|go-review|/changeset", u):
        return "FIX"
    if re.search(r"/security/advisories/|/advisories/|/advisory|security-advisor|/ghsa-|osv\.dev/vulnerability|"
                 r"nvd\.nist\.gov|cve\.org|cve\.mitre\.org|/security/|/vuln/|pkg\.go\.dev/vuln|rustsec\.org|"
                 r"/cve-\d{4}-|/dsa-|/usn-|access\.redhat\.com/errata|/bulletin", u):
        return "ADVISORY"
    if re.search(r"/issues/\d+|bugzilla|/bugs?/|/tracker|jira|hackerone\.com/reports|huntr\.(?:dev|com)", u):
        return "REPORT"
    if re.search(r"pypi\.org/project|npmjs\.com/package|crates\.io/crates|rubygems\.org/gems|pkg\.go\.dev/|"
                 r"packagist\.org|nuget\.org/packages", u):
        return "PACKAGE"
    if re.search(r"lists\.|mailman|/pipermail/|groups\.google|openwall\.com|seclists|/discussions/", u):
        return "DISCUSSION"
    if re.search(r"exploit-db|packetstorm|/poc|proof-of-concept", u):
        return "EVIDENCE"
    if re.search(r"blog|medium\.com|/news/|/article", u):
        return "ARTICLE"
    if re.search(r"^https?://(?:github\.com|gitlab\.com|bitbucket\.org)/[^/]+/[^/]+/?$", u):
        return "PACKAGE"
    return "WEB"


@lru_cache(maxsize=1)
def _uri_validator() -> Any:
    return jsonschema_rs.Draft202012Validator({"type": "string", "format": "uri"}, validate_formats=True)


def _valid_url(url: str) -> bool:
    """A URL the OSV schema accepts (``format: uri``) with a host: quoted example URLs in prose
    (``http://login?next=\\\\evil``) are left out rather than making the record invalid."""
    try:
        parts = urlsplit(url)
        ok = bool(parts.netloc) and "\\" not in url and (parts.port is None or parts.port > 0)
    except ValueError:
        return False
    return ok and bool(_uri_validator().is_valid(url))


def find_references(text: str) -> list[dict[str, str]]:
    """Every URL in the text, de-duplicated, typed; trailing punctuation stripped."""
    seen: set[str] = set()
    out = []
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?")
        if url not in seen and len(url) > 10 and _valid_url(url):
            seen.add(url)
            out.append({"type": reference_type(url), "url": url})
    return out


@dataclass(frozen=True)
class Severity:
    type: str  # CVSS_V2 | CVSS_V3 | CVSS_V4
    vector: str
    score: float | None
    rating: str | None
    start: int
    end: int

    def osv(self) -> dict[str, str]:
        return {"type": self.type, "score": self.vector}


def cvss_score(kind: str, vector: str) -> tuple[float | None, str | None]:
    """Base score and qualitative rating of a CVSS vector (``cvss`` package); ``(None, None)`` when invalid."""
    import cvss  # light, pure Python (LGPL-3.0+); imported lazily

    try:
        if kind == "CVSS_V4":
            c4 = cvss.CVSS4(vector)
            return float(c4.base_score), str(c4.severity)
        if kind == "CVSS_V3":
            c3 = cvss.CVSS3(vector)
            return float(c3.base_score), str(c3.severities()[0])
        c2 = cvss.CVSS2(vector)
        score = float(c2.base_score)
        return score, ("High" if score >= 7 else "Medium" if score >= 4 else "Low")
    except Exception:  # noqa: BLE001 - the cvss package raises its own CVSSError and ValueError/KeyError variants
        return None, None


def find_severity(text: str) -> list[Severity]:
    """CVSS vectors in the text, each with its computed base score (invalid vectors are dropped)."""
    out: list[Severity] = []
    for kind, pat in (("CVSS_V4", _CVSS4), ("CVSS_V3", _CVSS3), ("CVSS_V2", _CVSS2)):
        for m in pat.finditer(text):
            vector = m.group(0).lstrip("(")
            score, rating = cvss_score(kind, vector)
            if score is not None and not any(s.vector == vector for s in out):
                out.append(Severity(kind, vector, score, rating, m.start(), m.end()))
    return out


def stated_score(text: str) -> tuple[float | None, str | None]:
    """A base score or severity word stated in prose ("CVSS score 9.8", "High severity") when no vector is given."""
    m = _SCORE.search(text)
    score = float(m.group(1)) if m and 0 <= float(m.group(1)) <= 10 else None
    w = _SEVERITY_WORD.search(text)
    word = (w.group(1) or w.group(2)).upper() if w else None
    if word == "MEDIUM":
        word = "MODERATE"
    return score, word


def severity_summary(found: list[Severity], text: str) -> dict[str, Any] | None:
    """What the record's ``database_specific.severity`` says: the highest-version vector's score and rating, else
    a stated score/word."""
    if found:
        s = found[0]
        return {"cvss_type": s.type, "vector": s.vector, "base_score": s.score,
                "rating": (s.rating or "").upper() or None, "source": "vector"}
    score, word = stated_score(text)
    if score is None and word is None:
        return None
    return {"cvss_type": None, "vector": None, "base_score": score, "rating": word, "source": "stated"}
