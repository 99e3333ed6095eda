"""Several sources of one vulnerability (NVD text, a vendor page, a GitHub advisory, an OSV record) merged into one
OSV record, with every disagreement reported.

Records are grouped by shared identifiers (a record's id and aliases; CVE-2021-1 in one and as an alias in another
puts both in one group). Within a group:

- ``id``: the preferred id among all of them (PYSEC > GO > RUSTSEC > GHSA > PSF > OSV > CVE), the rest ``aliases``;
  private ``x_`` ids only when nothing else exists;
- ``affected``: one entry per (ecosystem, normalised package name); the ranges are the union of the sources'
  intervals (the conservative answer: a version any source calls affected stays affected, so the latest stated fix
  wins). Different fixed/last-affected versions for the same package are a **conflict**;
- ``severity``: one per CVSS type; different vectors are a conflict, the highest base score is kept;
- ``summary``/``details``: the first source's, other wording is not a conflict; ``references``, CWEs: union;
  ``published``: earliest; ``modified``: latest.

A conflict is ``{"field", "values": [{"source", "value"}], "resolution"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedinf.advisories.ids import ID_PREFERENCE, cvss_score
from fedinf.advisories.packages import normalize_name
from fedinf.advisories.versions import Interval, VersionKey, intervals_of, normalise, ranges

_SEMVER = {"Go", "npm", "crates.io"}


@dataclass(frozen=True)
class Sourced:
    source: str  # a document name or URL
    osv: dict[str, Any]


def _ids(rec: dict[str, Any]) -> set[str]:
    return {str(rec["id"]), *map(str, rec.get("aliases") or [])} - {""}


def group(records: list[Sourced]) -> list[list[Sourced]]:
    """Records sharing any id or alias (transitively), in input order; records with only private ids stay alone."""
    groups: list[tuple[set[str], list[Sourced]]] = []
    for r in records:
        ids = {i for i in _ids(r.osv) if not i.startswith("x_")}
        joined = [g for g in groups if ids & g[0]]
        if not joined:
            groups.append((set(ids), [r]))
            continue
        first = joined[0]
        first[0].update(ids)
        first[1].append(r)
        for other in joined[1:]:
            first[0].update(other[0])
            first[1].extend(other[1])
            groups.remove(other)
    return [g[1] for g in groups]


def _rank(i: str) -> tuple[int, str]:
    prefix = i.split("-", 1)[0]
    return (ID_PREFERENCE.index(prefix) if prefix in ID_PREFERENCE else len(ID_PREFERENCE), i)


def _merge_affected(group_: list[Sourced], conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_pkg: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for s in group_:
        for aff in s.osv.get("affected") or []:
            pkg = aff.get("package") or {}
            if not pkg.get("name") or not pkg.get("ecosystem"):
                continue
            key = (pkg["ecosystem"], normalize_name(pkg["name"], pkg["ecosystem"]))
            by_pkg.setdefault(key, []).append((s.source, aff))
    out = []
    for (eco, _), entries in by_pkg.items():
        ivs: list[Interval] = []
        stated: list[dict[str, Any]] = []
        for source, aff in entries:
            mine = [iv for r in aff.get("ranges") or [] if r.get("type") != "GIT"
                    for iv in intervals_of(r.get("events") or [])]
            ivs += mine
            uppers = sorted({iv.upper for iv in mine if iv.upper}, key=VersionKey)
            stated.append({"source": source, "value": uppers})
        distinct = {tuple(VersionKey(u) for u in s["value"]) for s in stated if s["value"]}
        merged = normalise(ivs)
        if len(distinct) > 1:
            conflicts.append({"field": f"affected[{entries[0][1]['package']['name']}].fixed_or_last_affected",
                              "values": stated, "resolution": "union of the sources' ranges (a version any source "
                              "calls affected stays affected)"})
        first = entries[0][1]
        entry: dict[str, Any] = {"package": dict(first["package"])}
        rngs = ranges(merged, range_type="SEMVER" if eco in _SEMVER else "ECOSYSTEM")
        git = [r for _, aff in entries for r in aff.get("ranges") or [] if r.get("type") == "GIT"]
        if rngs or git:
            entry["ranges"] = rngs + git
        versions = sorted({v for _, aff in entries for v in aff.get("versions") or []}, key=VersionKey)
        if versions:
            entry["versions"] = versions
        out.append(entry)
    return out


def _merge_severity(group_: list[Sourced], conflicts: list[dict[str, Any]]) -> list[dict[str, str]]:
    by_type: dict[str, list[tuple[str, str]]] = {}
    for s in group_:
        for sev in s.osv.get("severity") or []:
            by_type.setdefault(sev["type"], []).append((s.source, sev["score"]))
    out = []
    for kind, values in by_type.items():
        vectors = list(dict.fromkeys(v for _, v in values))
        best = max(vectors, key=lambda v: cvss_score(kind, v)[0] or -1.0)
        if len(vectors) > 1:
            conflicts.append({"field": f"severity[{kind}]", "values": [{"source": s, "value": v} for s, v in values],
                              "resolution": "kept the highest base score"})
        out.append({"type": kind, "score": best})
    return out


def merge_group(group_: list[Sourced], *, modified: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One OSV record and its conflicts from records of the same vulnerability."""
    conflicts: list[dict[str, Any]] = []
    all_ids = sorted({i for s in group_ for i in _ids(s.osv)}, key=_rank)
    public = [i for i in all_ids if not i.startswith("x_")]
    rid = (public or all_ids)[0]
    rec: dict[str, Any] = {"schema_version": "1.7.0", "id": rid, "modified": modified}
    aliases = [i for i in public if i != rid]
    if aliases:
        rec["aliases"] = aliases
    published = sorted(str(s.osv["published"]) for s in group_ if s.osv.get("published"))
    if published:
        rec["published"] = published[0]
    for key in ("summary", "details"):
        value = next((s.osv[key] for s in group_ if s.osv.get(key)), None)
        if value:
            rec[key] = value
    sev = _merge_severity(group_, conflicts)
    if sev:
        rec["severity"] = sev
    affected = _merge_affected(group_, conflicts)
    if affected:
        rec["affected"] = affected
    refs = list({r["url"]: r for s in group_ for r in s.osv.get("references") or [] if r.get("url")}.values())
    if refs:
        rec["references"] = refs
    cwes = sorted({c for s in group_ for c in (s.osv.get("database_specific") or {}).get("cwe_ids") or []})
    if cwes:
        rec["database_specific"] = {"cwe_ids": cwes, "sources": [s.source for s in group_]}
    else:
        rec["database_specific"] = {"sources": [s.source for s in group_]}
    return rec, conflicts


def merge_all(records: list[Sourced], *, modified: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return [merge_group(g, modified=modified) for g in group(records)]
