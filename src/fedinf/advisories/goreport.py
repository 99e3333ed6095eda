"""Go vulndb reports (the curated YAML of github.com/golang/vulndb ``data/reports``) to OSV records.

A report lists ``modules`` (``std`` = the standard library, ``cmd`` = the toolchain) with ``versions`` events,
packages and symbols, plus ``summary``, ``description``, ``cves``/``cve_metadata``, ``ghsas``, ``references``
(``{type: url}``) and ``credits``. The conversion is deterministic: each module becomes one ``affected`` entry with a
SEMVER range (an ``introduced: "0"`` is added when the first event is a fix, as vulndb's own converter does) and its
packages/symbols as ``ecosystem_specific.imports``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_MODULE_NAMES = {"std": "stdlib", "cmd": "toolchain"}
_REF_TYPES = {"fix": "FIX", "web": "WEB", "report": "REPORT", "advisory": "ADVISORY", "article": "ARTICLE",
              "package": "PACKAGE", "evidence": "EVIDENCE", "introduced": "INTRODUCED", "git": "GIT"}


def timestamp(value: Any) -> str:
    """An RFC 3339 UTC timestamp from a YAML datetime/date or a string."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return str(value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    return str(value).replace(" ", "T").replace("+00:00", "Z")


def is_go_report(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("modules"), list) and "summary" in data


def _events(versions: list[dict[str, Any]]) -> list[dict[str, str]]:
    evs = [{k: str(v).removeprefix("v")} for item in versions or [] for k, v in item.items()
           if k in ("introduced", "fixed")]
    if not evs or "introduced" not in evs[0]:
        evs.insert(0, {"introduced": "0"})
    return evs


def _affected(mod: dict[str, Any]) -> dict[str, Any]:
    name = _MODULE_NAMES.get(str(mod.get("module")), str(mod.get("module")))
    entry: dict[str, Any] = {"package": {"name": name, "ecosystem": "Go"},
                             "ranges": [{"type": "SEMVER", "events": _events(mod.get("versions") or [])}]}
    imports = []
    for p in mod.get("packages") or []:
        symbols = sorted({*(p.get("symbols") or []), *(p.get("derived_symbols") or [])})
        imports.append({"path": p.get("package"), **({"symbols": symbols} if symbols else {})})
    if imports:
        entry["ecosystem_specific"] = {"imports": imports}
    return entry


def to_osv(report: dict[str, Any], *, modified: str) -> dict[str, Any]:
    """One OSV record from one Go vulndb report."""
    meta = report.get("cve_metadata") or {}
    aliases = [*(report.get("cves") or []), *([meta["id"]] if meta.get("id") else []), *(report.get("ghsas") or [])]
    osv: dict[str, Any] = {"schema_version": "1.7.0", "id": str(report.get("id") or "x_FEDINF-go-report"),
                           "modified": modified}
    if report.get("published"):
        osv["published"] = timestamp(report["published"])
    if aliases:
        osv["aliases"] = list(dict.fromkeys(aliases))
    if report.get("summary"):
        osv["summary"] = str(report["summary"])
    if report.get("description") or meta.get("description"):
        osv["details"] = str(report.get("description") or meta.get("description"))
    osv["affected"] = [_affected(m) for m in report["modules"]]
    refs = [{"type": _REF_TYPES.get(k, "WEB"), "url": str(u)} for r in report.get("references") or []
            for k, u in r.items()]
    if refs:
        osv["references"] = refs
    credits = [{"name": str(c)} for c in report.get("credits") or []]
    if credits:
        osv["credits"] = credits
    if meta.get("cwe"):
        osv["database_specific"] = {"cwe_ids": [str(meta["cwe"]).split()[0]]}
    return osv
