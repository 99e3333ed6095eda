"""Deterministic extraction: advisory text (or an OSV/JSON document) to an OSV record with per-field provenance.

    ex = extract_text(text)                       # prose: NVD/CVE description, vendor page text, GitHub advisory
    ex = extract_document(doc)                    # a fedinf Document: text, HTML (already text), JSON
    ex.osv, ex.fields, ex.warnings, ex.severity, ex.cwes

JSON documents may be an OSV record (taken as given, checked against the schema), or an object with the prose in
``details``/``description``/``text`` plus optional hints ``package``, ``ecosystem`` and ``id``/``aliases``; hints win
over what is read from the prose (and disagreements are reported).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from fedinf.advisories import ids as idx
from fedinf.advisories import packages as pk
from fedinf.advisories import versions as vs
from fedinf.advisories.goreport import timestamp
from fedinf.advisories.schema import ECOSYSTEM_NAMES, OSV_SCHEMA_VERSION, osv_errors

MAX_DETAILS = 20_000
SEMVER_ECOSYSTEMS = {"Go", "npm", "crates.io"}
_PURL = {"PyPI": "pypi", "npm": "npm", "Go": "golang", "crates.io": "cargo", "RubyGems": "gem", "NuGet": "nuget",
         "Packagist": "composer", "Hex": "hex", "Pub": "pub", "Hackage": "hackage", "CRAN": "cran", "Maven": "maven"}


@dataclass
class FieldNote:
    """Provenance of one extracted value (content-bearing: never logged)."""

    value: Any
    source: str  # extractor | hint | model | none | input
    span: tuple[int, int] | None = None
    evidence: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.span:
            out["span"] = {"start": self.span[0], "end": self.span[1]}
        if self.evidence:
            out["evidence"] = self.evidence
        if self.score is not None:
            out["score"] = self.score
        return out


@dataclass
class Extraction:
    osv: dict[str, Any]
    fields: dict[str, FieldNote]
    severity: dict[str, Any] | None
    cwes: list[str]
    warnings: list[str] = field(default_factory=list)
    intervals: list[vs.Interval] = field(default_factory=list)
    text: str = ""

    @property
    def package(self) -> str | None:
        return self.fields["package"].value if "package" in self.fields else None

    @property
    def ecosystem(self) -> str | None:
        return self.fields["ecosystem"].value if "ecosystem" in self.fields else None


def now_timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def purl(ecosystem: str, name: str) -> str | None:
    kind = _PURL.get(ecosystem)
    if kind is None:
        return None
    if kind == "maven" and ":" in name:
        group, artifact = name.split(":", 1)
        return f"pkg:maven/{group}/{artifact}"
    if kind == "npm" and name.startswith("@"):
        return "pkg:npm/%40" + name[1:]
    return f"pkg:{kind}/{name}"


def _single_versions(text: str, name: pk.NameCandidate | None) -> list[str]:
    """``MoinMoin 1.9.8 allows ...``: one affected version named right after the package (no range phrase)."""
    if name is None:
        return []
    m = re.compile(rf"{re.escape(name.name)}\s+(?:version\s+)?({vs.VERSION})\s+(?:allows|has|is|are|contains|"
                   r"does|suffers|could|can|may|might|uses|lacks|fails|permits|enables|before|mishandles|"
                   r"incorrectly|improperly)\b", re.I).search(text)
    if m and re.search(r"\d\.\d", m.group(1)):
        return [vs.clean(m.group(1))]
    return []


def _ecosystem_choice(text: str, cands: list[pk.NameCandidate], hint: str | None,
                      fields: dict[str, FieldNote], warnings: list[str]) -> str | None:
    eco, conf, _ = pk.ecosystem(text, cands)
    if hint:
        if eco and eco != hint:
            warnings.append(f"ecosystem: the text suggests {eco}, the hint says {hint} (kept the hint)")
        fields["ecosystem"] = FieldNote(hint, "hint")
        return hint
    if eco:
        fields["ecosystem"] = FieldNote(eco, "extractor", evidence="cues", score=conf)
        return eco
    fields["ecosystem"] = FieldNote(None, "none")
    return None


def _package_choice(text: str, mentions: list[vs.Mention], eco: str | None, hint: str | None,
                    fields: dict[str, FieldNote], warnings: list[str]) -> tuple[str | None, pk.NameCandidate | None]:
    cands = pk.name_candidates(text, mentions)
    best = pk.best_name(text, cands, eco)
    if eco == "Go" or (eco is None and best is None):
        mod = pk.go_module(text)
        if mod and (eco == "Go" or "/" in mod[0]):
            best = pk.NameCandidate(mod[0], "Go", 5.0, mod[1], mod[2], "go-module")
    if hint:
        if best and pk.normalize_name(best.name, eco) != pk.normalize_name(hint, eco):
            warnings.append(f"package: the text names {best.name!r}, the hint says {hint!r} (kept the hint)")
        fields["package"] = FieldNote(pk.normalize_name(hint, eco), "hint")
        return fields["package"].value, best
    if best is None:
        fields["package"] = FieldNote(None, "none")
        return None, None
    name = pk.normalize_name(best.name, eco)
    fields["package"] = FieldNote(name, "extractor", (best.start, best.end), best.evidence, best.score)
    return name, best


def _about(text: str, mentions: list[vs.Mention], name: str | None,
           cands: list[pk.NameCandidate]) -> list[vs.Mention]:
    """Drop constraint phrases that belong to another product named in the same text ("Pillow through 8.2.0 and
    PIL through 1.1.7": the PIL phrase is not about pillow)."""
    if name is None:
        return mentions
    own = pk.normalize_name(name, "PyPI")
    others = {pk.normalize_name(c.name, "PyPI") for c in cands if c.score >= 2.0} - {own}
    out = []
    for m in mentions:
        before = pk.before_name(text, m.name_end) if m.kind != "fix" else None
        other = pk.normalize_name(before[0], "PyPI") if before else ""
        if other in others and not (own.endswith(other) or other.startswith(own) or own.startswith(other)):
            continue
        out.append(m)
    return out


def extract_text(text: str, *, hints: dict[str, Any] | None = None, modified: str | None = None,
                 details: bool = True) -> Extraction:
    """Read an OSV record out of advisory prose (see the module docstring)."""
    hints = hints or {}
    warnings: list[str] = []
    fields: dict[str, FieldNote] = {}
    found_ids = idx.find_ids(text)
    given_id = hints.get("id")
    primary, aliases = idx.primary_id(found_ids)
    if given_id:
        aliases = [a for a in ([primary] if primary else []) + aliases if a and a != given_id]
        primary = str(given_id)
    aliases = sorted(set(aliases) | set(hints.get("aliases") or []) - {primary}, key=lambda a: (a[:3], a))
    if primary is None:
        primary = "x_FEDINF-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        warnings.append("id: the text names no CVE/GHSA/PYSEC/GO id; a private x_FEDINF id was assigned")
    fields["id"] = FieldNote(primary, "hint" if given_id else ("extractor" if not primary.startswith("x_") else
                                                                 "generated"))
    mentions = vs.find_mentions(text)
    cands = pk.name_candidates(text, mentions)
    eco = _ecosystem_choice(text, cands, hints.get("ecosystem"), fields, warnings)
    name, best = _package_choice(text, mentions, eco, hints.get("package"), fields, warnings)
    if eco is None and best is not None and best.ecosystem:
        eco = best.ecosystem
        fields["ecosystem"] = FieldNote(eco, "extractor", evidence=best.evidence)
    intervals = vs.intervals_from(_about(text, mentions, name, cands))
    if eco == "Go" and name in ("stdlib", "toolchain"):
        # Go releases: a branch opens at its first pre-release ("1.22.0-0"), as the Go vulndb writes it
        intervals = [vs.Interval(i.introduced + "-0" if re.fullmatch(r"\d+\.\d+\.0", i.introduced) else i.introduced,
                                 i.fixed, i.last_affected, i.start, i.end) for i in intervals]
    single = [] if intervals else _single_versions(text, best)
    fields["ranges"] = FieldNote([{"introduced": i.introduced, "fixed": i.fixed, "last_affected": i.last_affected}
                                  for i in intervals], "extractor" if intervals else "none",
                                 (intervals[0].start, intervals[-1].end) if intervals else None)
    severity = idx.find_severity(text)
    sev_summary = idx.severity_summary(severity, text)
    cwes = [h.value for h in idx.find_cwes(text)]
    osv = _assemble(primary, aliases, text, details, severity, cwes, sev_summary,
                    _affected(name, eco, intervals, single, warnings), modified)
    return Extraction(osv=osv, fields=fields, severity=sev_summary, cwes=cwes, warnings=warnings,
                      intervals=intervals, text=text)


def _assemble(primary: str, aliases: list[str], text: str, details: bool, severity: list[idx.Severity], cwes: list[str],
              sev_summary: dict[str, Any] | None, affected: dict[str, Any] | None,
              modified: str | None) -> dict[str, Any]:
    """The OSV record from the extracted parts (optional fields only when found)."""
    osv: dict[str, Any] = {"schema_version": OSV_SCHEMA_VERSION, "id": primary,
                           "modified": modified or now_timestamp()}
    if aliases:
        osv["aliases"] = aliases
    if details:
        osv["details"] = text.strip()[:MAX_DETAILS]
    if severity:
        osv["severity"] = [s.osv() for s in severity]
    if affected:
        osv["affected"] = [affected]
    refs = idx.find_references(text)
    if refs:
        osv["references"] = refs
    specific: dict[str, Any] = {}
    if cwes:
        specific["cwe_ids"] = cwes
    if sev_summary and sev_summary.get("rating"):
        specific["severity"] = sev_summary["rating"]
    if specific:
        osv["database_specific"] = specific
    return osv


def _affected(name: str | None, eco: str | None, intervals: list[vs.Interval], single: list[str],
              warnings: list[str]) -> dict[str, Any] | None:
    if name is None:
        warnings.append("affected: no package name found in the text")
        return None
    if eco is None:
        warnings.append("affected: the text states no ecosystem (PyPI, npm, Go, ...); the package is left out of "
                        "the OSV record - send the ecosystem as a hint to keep it")
        return None
    pkg: dict[str, Any] = {"ecosystem": eco, "name": name}
    p = purl(eco, name)
    if p:
        pkg["purl"] = p
    entry: dict[str, Any] = {"package": pkg}
    rtype = "SEMVER" if eco in SEMVER_ECOSYSTEMS else "ECOSYSTEM"
    rngs = vs.ranges(intervals, range_type=rtype)
    if rngs:
        entry["ranges"] = rngs
    if single:
        entry["versions"] = single
    if not rngs and not single:
        warnings.append("affected: no affected or fixed versions found in the text")
    return entry


def _json_hints(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = next((str(data[k]) for k in ("details", "description", "text", "summary") if data.get(k)), "")
    hints = {k: data[k] for k in ("package", "ecosystem", "id", "aliases") if data.get(k)}
    if hints.get("ecosystem") and hints["ecosystem"] not in ECOSYSTEM_NAMES:
        hints.pop("ecosystem")
    return text, hints


def is_osv(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("id"), str) and (
        "affected" in data or "modified" in data) and ("details" in data or "summary" in data or "affected" in data)


def _yaml_value(text: str) -> Any:
    """A YAML mapping when the text is one (OSV-YAML records, Go vulndb reports), else None."""
    head = text.lstrip()[:200]
    if not re.match(r"^[a-z_]+:\s", head):
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, dict) else None


def extract_document(text: str, data: Any = None, *, modified: str | None = None) -> Extraction:
    """Extract from a document's text, or from its JSON/YAML value when it is an OSV record, a Go vulndb report,
    or an object carrying hints."""
    from fedinf.advisories import ghsa, goreport

    if data is None:
        data = _yaml_value(text)
    if goreport.is_go_report(data):
        return from_osv(goreport.to_osv(data, modified=modified or now_timestamp()))
    if ghsa.is_ghsa(data):
        return from_osv(ghsa.to_osv(data, modified=modified or now_timestamp()))
    if is_osv(data):
        return from_osv(data)
    if isinstance(data, dict):
        prose, hints = _json_hints(data)
        if prose:
            return extract_text(prose, hints=hints, modified=modified)
    return extract_text(text, modified=modified)


def from_osv(record: dict[str, Any]) -> Extraction:
    """An OSV record given as input: kept as is (an invalid one is reported, not repaired)."""
    rec = dict(record)
    rec.setdefault("modified", now_timestamp())
    for key in ("modified", "published", "withdrawn"):  # YAML gives datetimes; OSV wants RFC 3339 strings
        if isinstance(rec.get(key), (dt.datetime, dt.date)):
            rec[key] = timestamp(rec[key])
    errors = osv_errors(rec)
    warnings = [f"input OSV record: {e}" for e in errors[:10]]
    aff = (rec.get("affected") or [{}])[0]
    pkg = aff.get("package") or {}
    text = str(rec.get("details") or rec.get("summary") or "")
    sev = idx.find_severity(" ".join(s.get("score", "") for s in rec.get("severity") or []))
    cwes = list((rec.get("database_specific") or {}).get("cwe_ids") or []) or [h.value for h in idx.find_cwes(text)]
    fields = {"id": FieldNote(rec["id"], "input"), "package": FieldNote(pkg.get("name"), "input"),
              "ecosystem": FieldNote(pkg.get("ecosystem"), "input")}
    intervals = [iv for r in aff.get("ranges") or [] if r.get("type") != "GIT"
                 for iv in vs.intervals_of(r.get("events") or [])]
    return Extraction(osv=rec, fields=fields, severity=idx.severity_summary(sev, text), cwes=cwes,
                      warnings=warnings, intervals=intervals, text=text)
