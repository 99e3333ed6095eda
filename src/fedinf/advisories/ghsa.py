"""GitHub security advisories (the GraphQL ``securityAdvisory`` shape and the REST ``/advisories`` shape) to OSV.

GraphQL: ``ghsaId``, ``identifiers[{value}]``, ``summary``, ``description``, ``cvss{vectorString}``,
``cwes{nodes[{cweId}]}``, ``references[{url}]``, ``publishedAt``/``updatedAt``/``withdrawnAt`` and
``vulnerabilities{nodes[{package{ecosystem,name}, vulnerableVersionRange, firstPatchedVersion{identifier}}]}``.
REST: ``ghsa_id``, ``cve_id``, ``identifiers[{type,value}]``, ``vulnerabilities[{package{ecosystem,name},
vulnerable_version_range, first_patched_version}]``, ``cvss{vector_string}``, ``cwes[{cwe_id}]``, ``references``
(URL strings), ``published_at``/``updated_at``/``withdrawn_at``.

A ``vulnerableVersionRange`` (``>= 2.5.0, < 2.5.16``, ``<= 1.2``, ``= 1.0.3``, ``< 4``) becomes one interval:
``<`` is ``fixed``, ``<=`` is ``last_affected``, ``=`` is a single affected version; the first patched version is
the fix when the range gives no upper bound.
"""

from __future__ import annotations

import re
from typing import Any

from fedinf.advisories.ids import cvss_score, reference_type
from fedinf.advisories.packages import normalize_name

ECOSYSTEMS = {"PIP": "PyPI", "NPM": "npm", "MAVEN": "Maven", "GO": "Go", "RUST": "crates.io", "RUBYGEMS": "RubyGems",
              "COMPOSER": "Packagist", "NUGET": "NuGet", "PUB": "Pub", "ERLANG": "Hex", "SWIFT": "SwiftURL",
              "ACTIONS": "GitHub Actions"}
_SEMVER = {"npm", "Go", "crates.io"}
_BOUND = re.compile(r"(>=|<=|>|<|=)\s*v?([^\s,]+)")


def is_ghsa(data: Any) -> bool:
    return isinstance(data, dict) and bool(data.get("ghsaId") or data.get("ghsa_id")) and \
        ("vulnerabilities" in data)


def _next(v: str, semver: bool) -> str:
    """The smallest version above ``v`` (OSV has no exclusive lower bound): ``2.1.0`` -> ``2.1.1`` (``2.1.1-0`` for
    SemVer ecosystems, so its pre-releases count), ``11.6`` -> ``11.6.1``."""
    parts = v.split(".")
    if len(parts) >= 3 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) + 1)
        out = ".".join(parts[:3])
    else:
        out = v + ".1"
    return out + "-0" if semver else out


def _events(rng: str, patched: str | None, *, semver: bool = False) -> tuple[list[dict[str, str]], list[str]]:
    introduced, upper, kind, exact = "0", None, None, []
    for op, v in _BOUND.findall(rng or ""):
        if op == ">=":
            introduced = v
        elif op == ">":
            introduced = _next(v, semver)
        elif op == "<":
            upper, kind = v, "fixed"
        elif op == "<=":
            upper, kind = v, "last_affected"
        elif op == "=":
            exact.append(v)
    if exact and upper is None:
        if not patched:
            return [], exact
        introduced = exact[0]
    if patched and (upper is None or kind == "last_affected"):
        upper, kind = patched, "fixed"  # the first patched version is the precise end
    events = [{"introduced": introduced}]
    if upper is not None and kind is not None:
        events.append({kind: upper})
    return events, []


def to_osv(adv: dict[str, Any], *, modified: str) -> dict[str, Any]:
    rest = "ghsa_id" in adv
    gid = str(adv.get("ghsa_id") or adv.get("ghsaId"))
    idents = ([i.get("value") for i in adv.get("identifiers") or []] + [adv.get("cve_id")])
    aliases = [str(i) for i in dict.fromkeys(idents) if i and i != gid]
    osv: dict[str, Any] = {"schema_version": "1.7.0", "id": gid,
                           "modified": str(adv.get("updated_at" if rest else "updatedAt") or modified)}
    for key, src in (("published", "published_at" if rest else "publishedAt"),
                     ("withdrawn", "withdrawn_at" if rest else "withdrawnAt")):
        if adv.get(src):
            osv[key] = str(adv[src])
    if aliases:
        osv["aliases"] = aliases
    for key in ("summary", "description"):
        if adv.get(key):
            osv["summary" if key == "summary" else "details"] = str(adv[key])
    vector = (adv.get("cvss") or {}).get("vector_string" if rest else "vectorString")
    if vector and cvss_score("CVSS_V4" if vector.startswith("CVSS:4") else "CVSS_V3", vector)[0] is not None:
        osv["severity"] = [{"type": "CVSS_V4" if vector.startswith("CVSS:4") else "CVSS_V3", "score": vector}]
    nodes = adv["vulnerabilities"] if rest else (adv.get("vulnerabilities") or {}).get("nodes") or []
    by_pkg: dict[tuple[str, str], dict[str, Any]] = {}
    for n in nodes:
        pkg = n.get("package") or {}
        eco = ECOSYSTEMS.get(str(pkg.get("ecosystem", "")).upper(), str(pkg.get("ecosystem", "")))
        name = normalize_name(str(pkg.get("name")), eco) if eco == "PyPI" else str(pkg.get("name"))
        patched = n.get("first_patched_version") if rest else (n.get("firstPatchedVersion") or {}).get("identifier")
        if isinstance(patched, dict):
            patched = patched.get("identifier")
        events, exact = _events(n.get("vulnerable_version_range" if rest else "vulnerableVersionRange") or "",
                                patched, semver=eco in _SEMVER)
        entry = by_pkg.setdefault((eco, name), {"package": {"ecosystem": eco, "name": name}})
        if events:  # one range per package, the nodes' events in order (as GitHub's own OSV export does)
            rngs = entry.setdefault("ranges", [{"type": "SEMVER" if eco in _SEMVER else "ECOSYSTEM", "events": []}])
            rngs[0]["events"] += events
        if exact:
            entry.setdefault("versions", []).extend(exact)
    if by_pkg:
        osv["affected"] = list(by_pkg.values())
    urls = [r if isinstance(r, str) else r.get("url") for r in adv.get("references") or []]
    refs = [{"type": reference_type(u), "url": u} for u in dict.fromkeys(u for u in urls if u)]
    if refs:
        osv["references"] = refs
    cwes = [c.get("cwe_id") or c.get("cweId") for c in (adv.get("cwes") if rest else
                                                         (adv.get("cwes") or {}).get("nodes")) or []]
    specific: dict[str, Any] = {}
    if any(cwes):
        specific["cwe_ids"] = [c for c in cwes if c]
    if adv.get("severity"):
        specific["severity"] = str(adv["severity"]).upper()
    if specific:
        osv["database_specific"] = specific
    return osv
