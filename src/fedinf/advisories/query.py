"""Answers over ingested advisories: "which of my packages are affected?" and "what is the fixed version of X?".

Thin over :mod:`fedinf.retrieval`: the facts are read from OSV records ingested into a collection (retrieval
renders each record as text with ``affected package: NAME (ecosystem E)`` followed by its ``range (TYPE): ...``
lines). For each package asked about, a keyword search finds the chunks naming it and the affected blocks in them
are parsed (records added by any ingest path); records added through :func:`fedinf.advisories.ingest.ingest` also
carry their affected entries in the document metadata, which are listed exhaustively, so a package with more
advisories than one search returns loses none. The version checks are done with :mod:`packaging`
(:func:`fedinf.advisories.versions.affected_by`) - no model decides whether a version is affected. Every advisory in an answer carries a citation (collection, document,
chunk, character offsets of its ``affected package`` block); an answer with no citation says so (``cited: false``
and a ``note``), and the result carries the highest data class retrieved.

Requirements are read from requirements.txt / ``pip freeze`` lines (``name==1.2.3``; other specifiers make the
package ``unpinned``: its advisories are listed without a verdict) or ``name version`` / ``name@version`` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from fedinf.advisories.packages import normalize_name
from fedinf.advisories.versions import VersionKey, affected_by, clean, fixed_versions
from fedinf.data_class import DataClass
from fedinf.errors import RequestError

_BLOCK = re.compile(r"^affected package: (?P<name>.+?) \(ecosystem (?P<eco>[^)]*)\)\n(?P<body>(?:[ \t]+.*\n?)*)", re.M)
_RANGE = re.compile(r"^\s+range \((?P<type>[A-Z]+)\): (?P<events>.*)$", re.M)
_VERSIONS = re.compile(r"^\s+affected versions \(\d+\): (?P<list>.*)$", re.M)
_EVENT = re.compile(r"(introduced|fixed|last_affected|limit) (\S+?)(?:,|$)")
_ID = re.compile(r"^id: (\S+)", re.M)
MAX_PACKAGES = 500


@dataclass(frozen=True)
class Wanted:
    name: str  # as written
    version: str | None  # pinned version, or None
    specifier: str = ""
    line: int = 0


@dataclass
class Fact:
    """One advisory's affected entry for one package, with where it was read."""

    osv_id: str
    aliases: list[str]
    package: str
    ecosystem: str
    affected: dict[str, Any]
    citation: dict[str, Any]
    data_class: DataClass = DataClass.PUBLIC

    def fixed(self) -> list[str]:
        return fixed_versions(self.affected)


@dataclass
class Answer:
    package: str
    version: str | None
    status: str  # affected | not_affected | unpinned | no_advisories
    advisories: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    @property
    def cited(self) -> bool:
        return any(a.get("citation") for a in self.advisories)

    def to_dict(self) -> dict[str, Any]:
        out = {"package": self.package, "version": self.version, "status": self.status,
               "advisories": self.advisories, "cited": self.cited}
        if not self.cited:
            out["note"] = self.note or "no ingested advisory names this package: nothing to cite"
        elif self.note:
            out["note"] = self.note
        return out


def parse_requirements(text: str) -> list[Wanted]:
    """requirements.txt / pip freeze / ``name version`` lines; comments, options and blank lines are skipped.
    Raises RequestError (400) naming the first line that is none of these."""
    out: list[Wanted] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        simple = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\s+|@)v?(\d[\w.+!-]*)", line)
        if simple:
            out.append(Wanted(simple.group(1), clean(simple.group(2)), line=n))
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            raise RequestError(f"requirements line {n} is not a requirement (name==version, name version)",
                               param="requirements", code="invalid_requirements") from None
        pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        out.append(Wanted(req.name, pins[0] if len(pins) == 1 else None, str(req.specifier), n))
        if len(out) > MAX_PACKAGES:
            raise RequestError(f"at most {MAX_PACKAGES} packages per question", param="requirements",
                               code="too_many_packages")
    return out


def parse_blocks(text: str) -> list[tuple[str, str, dict[str, Any], int, int]]:
    """``(name, ecosystem, affected entry, start, end)`` for every ``affected package`` block in a chunk of a
    rendered OSV record (offsets relative to the chunk)."""
    out = []
    for m in _BLOCK.finditer(text):
        ranges = []
        for r in _RANGE.finditer(m.group("body")):
            events = [{k: v} for k, v in _EVENT.findall(r.group("events"))]
            if events:
                ranges.append({"type": r.group("type"), "events": events})
        entry: dict[str, Any] = {"package": {"name": m.group("name"), "ecosystem": m.group("eco")}, "ranges": ranges}
        vm = _VERSIONS.search(m.group("body"))
        if vm and not vm.group("list").endswith("..."):
            entry["versions"] = [v.strip() for v in vm.group("list").split(",") if v.strip()]
        out.append((m.group("name"), m.group("eco"), entry, m.start(), m.end()))
    return out


Index = dict[str, list[Fact]]


async def build_index(retrieval: Any, collections: list[str]) -> Index:
    """Facts from the ``osv_affected`` metadata that :func:`fedinf.advisories.ingest.ingest` stores with each record,
    by normalised package name: every document is listed (pages of 100), so no advisory is missed when a package has
    more advisories than one search returns. Citations carry the document and the block's offsets (``chunk`` None)."""
    index: Index = {}
    for name in collections:
        info = await retrieval.get_collection(name)
        after = None
        while True:
            docs = await retrieval.list_documents(name, limit=100, after=after)
            for d in docs:
                meta = d.metadata or {}
                for entry in meta.get("osv_affected") or []:
                    if not entry.get("name"):
                        continue
                    citation = {"collection": info.name, "document_id": d.id, "document": d.name, "chunk": None,
                                "start": entry.get("start"), "end": entry.get("end"), "page": 1,
                                "data_class": d.data_class.label}
                    affected = {"package": {"name": entry["name"], "ecosystem": entry.get("ecosystem")},
                                "ranges": entry.get("ranges") or [], "versions": entry.get("versions") or []}
                    index.setdefault(normalize_name(str(entry["name"]), "PyPI"), []).append(
                        Fact(str(meta.get("osv_id") or d.name), list(meta.get("aliases") or []), str(entry["name"]),
                             str(entry.get("ecosystem")), affected, citation, d.data_class))
            if len(docs) < 100:
                break
            after = docs[-1].id
    return index


class IndexCache:
    """:func:`build_index` run at most once per answer (however many packages it asks about)."""

    def __init__(self, retrieval: Any, collections: list[str]) -> None:
        self.retrieval, self.collections = retrieval, collections
        self._index: Index | None = None

    async def get(self) -> Index:
        if self._index is None:
            self._index = await build_index(self.retrieval, self.collections)
        return self._index


async def facts_for(retrieval: Any, collections: list[str], package: str, *,
                    ecosystem: str | None = None, index: "Index | IndexCache | None" = None) -> list[Fact]:
    """Every ingested advisory affected entry naming ``package`` (one per document and package): parsed from search
    hits (citations down to the chunk), completed from ``index`` for documents the search did not return."""
    from fedinf.retrieval.service import MAX_K

    want = normalize_name(package, "PyPI")
    result = await retrieval.search(collections, package, k=MAX_K, mode="bm25")
    facts: dict[tuple[str, str], Fact] = {}
    ids: dict[str, tuple[str, list[str]]] = {}
    for hit in result.hits:
        for name, eco, entry, start, end in parse_blocks(hit.text):
            if normalize_name(name, "PyPI") != want or (ecosystem and eco != ecosystem):
                continue
            key = (hit.document_id, normalize_name(name, "PyPI"))
            if key in facts and len(facts[key].affected.get("ranges") or []) >= len(entry["ranges"]):
                continue
            if hit.document_id not in ids:
                ids[hit.document_id] = await _ids(retrieval, hit)
            osv_id, aliases = ids[hit.document_id]
            citation = {**hit.citation(0), "start": hit.start + start, "end": hit.start + end}
            citation.pop("ref")
            facts[key] = Fact(osv_id, aliases, name, eco, entry, citation, hit.data_class)
    if isinstance(index, IndexCache):
        index = await index.get()
    for f in (index or {}).get(want, []):
        key = (str(f.citation["document_id"]), want)
        if ecosystem and f.ecosystem != ecosystem:
            continue
        if key in facts:  # the stored entry is complete even when a chunk cut the rendered block
            facts[key].affected = f.affected
        else:
            facts[key] = f
    return sorted(facts.values(), key=lambda f: f.osv_id)


async def _ids(retrieval: Any, hit: Any) -> tuple[str, list[str]]:
    m = _ID.search(hit.text)
    try:
        info = await retrieval.get_document(hit.collection, hit.document_id)
        meta = info.metadata or {}
        return str(meta.get("osv_id") or (m.group(1) if m else hit.document_name)), list(meta.get("aliases") or [])
    except Exception:  # noqa: BLE001 - deleted meanwhile: the chunk's own id line, else the document name
        return (m.group(1) if m else hit.document_name), []


def _upgrade(fact: Fact, version: str | None) -> str | None:
    """The smallest fixed version above ``version`` (or the smallest at all)."""
    fixes = [f for f in fact.fixed() if version is None or VersionKey(version) < VersionKey(f)]
    return min(fixes, key=VersionKey) if fixes else None


def _advisory(fact: Fact, version: str | None, ref: int) -> dict[str, Any]:
    return {"id": fact.osv_id, "aliases": fact.aliases, "ecosystem": fact.ecosystem, "fixed": fact.fixed(),
            "upgrade_to": _upgrade(fact, version), "ranges": fact.affected.get("ranges") or [],
            "citation": {"ref": ref, **fact.citation}}


async def affected(retrieval: Any, collections: str | list[str], wanted: list[Wanted]) -> dict[str, Any]:
    """Which of ``wanted`` are affected by an advisory ingested in ``collections`` (see the module docstring)."""
    names = [collections] if isinstance(collections, str) else list(collections)
    answers: list[Answer] = []
    citations: list[dict[str, Any]] = []
    data_class = DataClass.PUBLIC
    index = IndexCache(retrieval, names)
    for w in wanted:
        facts = await facts_for(retrieval, names, w.name, index=index)
        data_class = max([data_class, *(f.data_class for f in facts)])
        if not facts:
            answers.append(Answer(w.name, w.version, "no_advisories"))
            continue
        hits = facts if w.version is None else [f for f in facts if affected_by(w.version, f.affected)]
        status = "unpinned" if w.version is None else ("affected" if hits else "not_affected")
        shown = hits if w.version is not None and hits else facts
        advisories = []
        for f in shown:
            citations.append({"ref": len(citations) + 1, **f.citation})
            advisories.append(_advisory(f, w.version, len(citations)))
        note = None
        if status == "not_affected":
            note = f"{len(facts)} ingested advisories name {w.name}; none covers version {w.version}"
        elif status == "unpinned":
            note = f"not pinned ({w.specifier or 'no version'}): every advisory for {w.name} is listed without a verdict"
        answers.append(Answer(w.name, w.version, status, advisories, note))
    return {"object": "advisories.affected", "collections": names,
            "affected": sorted({a.package for a in answers if a.status == "affected"}),
            "answers": [a.to_dict() for a in answers], "citations": citations,
            "cited": bool(citations), "data_class": data_class.label}


async def fixed_version(retrieval: Any, collections: str | list[str], package: str, *,
                        version: str | None = None) -> dict[str, Any]:
    """The fixed versions of ``package`` across the ingested advisories (for ``version`` when given: the smallest
    fix above it, per advisory that affects it)."""
    names = [collections] if isinstance(collections, str) else list(collections)
    facts = await facts_for(retrieval, names, package, index=IndexCache(retrieval, names))
    if version is not None:
        facts = [f for f in facts if affected_by(version, f.affected)]
    citations: list[dict[str, Any]] = []
    advisories: list[dict[str, Any]] = []
    for f in facts:
        citations.append({"ref": len(citations) + 1, **f.citation})
        advisories.append(_advisory(f, version, len(citations)))
    ups = [a["upgrade_to"] for a in advisories if a["upgrade_to"]]
    upgrade = max(ups, key=VersionKey) if ups else None
    no_fix = [a["id"] for a in advisories if not a["fixed"]]
    out: dict[str, Any] = {"object": "advisories.fixed", "collections": names, "package": package, "version": version,
                           "upgrade_to": upgrade, "advisories": advisories, "citations": citations,
                           "cited": bool(citations),
                           "data_class": max([DataClass.PUBLIC, *(f.data_class for f in facts)]).label}
    if not citations:
        out["note"] = (f"no ingested advisory affecting {package} {version}" if version else
                       f"no ingested advisory names {package}") + ": nothing to cite"
    elif no_fix:
        out["note"] = f"no fixed version stated in: {', '.join(no_fix)}"
    return out
