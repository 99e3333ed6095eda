"""Versions and ranges: phrases in advisory prose to OSV range events, and "is this version affected?" checks.

Prose forms read (case-insensitive; ``V`` is a version like ``1.2.3``, ``v1.2.3``, ``2.0.0-rc.1``)::

    before V | prior to V | < V | earlier than V | lower than V | below V    -> introduced 0, fixed V
    A before V | A.x before V | >= A, < V | from A before V | A <= x < V     -> introduced A, fixed V
    through V | <= V | up to (and including) V | V and earlier/prior/below  -> introduced 0, last_affected V
    A through V | from A to V | between A and V                             -> introduced A, last_affected V
    fixed/patched/resolved/addressed in V | upgrade to V | update to V |
    version V fixes/patches | fix will be included in V | cherrypick ... on V, V -> a fix (introduced by branch)

Version comparison uses :mod:`packaging` (PEP 440) where both sides parse, else a numeric-then-text tuple key (so
SemVer pre-releases and Go's ``v`` prefix compare sensibly). Intervals are sorted, merged and written as OSV events
(``introduced`` then ``fixed`` or ``last_affected``); a lone fix on a later branch (``2.6.3`` after ``2.5.3``) opens
that branch at ``2.6.0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

from packaging.version import InvalidVersion, Version

# a version: digits with dots, optional pre/post/dev/SemVer suffix; no trailing dot
VERSION = r"v?\d+(?:\.\d+){0,3}(?:[-.]?(?:a|b|rc|alpha|beta|pre|post|dev|preview)[-.]?\d*|-[0-9A-Za-z.]+)?"
_V = rf"(?P<v>{VERSION})"
_A = rf"(?P<a>{VERSION})"
_SEP = r"(?:\s*(?:,|and|or|&)\s*)"
_VERSIONS_WORD = r"(?:(?:all\s+)?(?:versions?|releases?|series|branch(?:es)?)\s+)?"
_XV = rf"(?P<a>\d+(?:\.\d+)*)\.x"
_PRODUCT = r"(?:(?:Go|[A-Z][\w.+-]*[a-z][\w.+-]*)\s+)?"  # "before Go 1.21.11", "prior to Django 3.2"


@total_ordering
class VersionKey:
    """An orderable key for any version string (PEP 440 first, else numbers then text)."""

    __slots__ = ("raw", "_pep", "_tuple")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        s = raw.strip().lstrip("vV")
        try:
            self._pep: Version | None = Version(s)
        except InvalidVersion:
            self._pep = None
        parts = re.split(r"[.\-+_]", s)
        nums: list[tuple[int, Any]] = []
        for p in parts:
            nums.append((0, int(p)) if p.isdigit() else (-1, p))
        self._tuple = tuple(nums)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionKey):
            return NotImplemented
        if self._pep is not None and other._pep is not None:
            return self._pep == other._pep
        return self._tuple == other._tuple

    def __lt__(self, other: "VersionKey") -> bool:
        if self._pep is not None and other._pep is not None:
            return self._pep < other._pep
        return _pad(self._tuple, other._tuple) < _pad(other._tuple, self._tuple)

    def __hash__(self) -> int:
        return hash(self._pep) if self._pep is not None else hash(self._tuple)


def _pad(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    return a + ((0, 0),) * max(0, len(b) - len(a))


def clean(version: str) -> str:
    """A version as written in OSV: no ``v`` prefix, no trailing punctuation."""
    return version.strip().rstrip(".,;:)").lstrip("vV")


def is_zero(version: str) -> bool:
    return version.strip() in ("0", "0.0", "0.0.0")


@dataclass(frozen=True)
class Interval:
    """Affected from ``introduced`` (inclusive, ``"0"`` = all earlier) up to ``fixed`` (exclusive) or
    ``last_affected`` (inclusive); both ends open means "all versions". ``evidence`` is the phrase's offsets."""

    introduced: str = "0"
    fixed: str | None = None
    last_affected: str | None = None
    start: int = -1
    end: int = -1

    @property
    def upper(self) -> str | None:
        return self.fixed or self.last_affected

    def contains(self, version: str) -> bool:
        v = VersionKey(version)
        if not is_zero(self.introduced) and v < VersionKey(self.introduced):
            return False
        if self.fixed is not None:
            return v < VersionKey(self.fixed)
        if self.last_affected is not None:
            return not VersionKey(self.last_affected) < v
        return True


@dataclass(frozen=True)
class Mention:
    """A version-constraint phrase found in the text."""

    kind: str  # "fixed" | "last_affected" | "range_fixed" | "range_last" | "fix" | "affected"
    version: str
    lower: str | None
    start: int
    end: int
    name_end: int  # where the text before the phrase ends (a package name usually sits right before it)


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # NVD configuration lines: "From (including) 4.0.0 Up to (excluding) 4.0.2"
    ("range_fixed", re.compile(rf"from\s+\(including\)\s+{_A}\s+up\s+to\s+\(excluding\)\s+{_V}", re.I)),
    ("range_last", re.compile(rf"from\s+\(including\)\s+{_A}\s+up\s+to\s+\(including\)\s+{_V}", re.I)),
    ("fixed", re.compile(rf"up\s+to\s+\(excluding\)\s+{_V}", re.I)),
    ("last_affected", re.compile(rf"up\s+to\s+\(including\)\s+{_V}", re.I)),
    # ranges with both ends first, so "2.8.0 before 2.8.4" is not read as "before 2.8.4" alone
    ("range_fixed", re.compile(rf"(?:>=?\s*|from\s+)?{_A}(?:\s+and\s+later)?\s*(?:,\s*)?(?:before|prior\s+to|<(?!=)|"
                               rf"and\s+(?:before|prior\s+to))\s*{_V}", re.I)),
    ("range_fixed", re.compile(rf"{_XV}\s+(?:versions?\s+)?(?:before|prior\s+to|<)\s*{_V}", re.I)),
    ("range_fixed", re.compile(rf"{_A}\s*<=?\s*(?:x|v|version)?\s*<\s*{_V}", re.I)),
    ("range_last", re.compile(rf"(?:from\s+)?{_A}\s+(?:through|to|thru|until|-)\s+(?:(?:version|v)\s*)?"
                              rf"(?:and\s+including\s+)?{_V}(?![\w-]|\.\d)", re.I)),
    ("range_last", re.compile(rf"between\s+(?:versions?\s+)?{_A}\s+and\s+(?:version\s+)?{_V}(?![\w-]|\.\d)", re.I)),
    ("range_last", re.compile(rf"{_XV}\s+(?:through|up\s+to(?:\s+and\s+including)?|<=)\s*{_V}", re.I)),
    ("fixed", re.compile(rf"(?:before|prior\s+to|earlier\s+than|older\s+than|lower\s+than|below|less\s+than|"
                         rf"<(?!=))\s*{_VERSIONS_WORD}{_PRODUCT}(?:version\s+)?{_V}", re.I)),
    ("last_affected", re.compile(rf"(?:through|up\s+to(?:\s+and\s+including)?|<=|thru)\s*{_VERSIONS_WORD}{_PRODUCT}"
                                 rf"(?:version\s+)?{_V}", re.I)),
    ("last_affected", re.compile(rf"{_V}\s+(?:and|or)\s+(?:earlier|prior|below|older|lower|before)\b", re.I)),
    ("fix", re.compile(rf"(?:fixed|patched|resolved|addressed|remediated|corrected|mitigated)\s+(?:it\s+)?"
                       rf"(?:in|by|with|as\s+of|since|starting\s+(?:with|in|from))\s+(?:the\s+)?"
                       rf"(?:(?:release|version)s?\s+)?(?:[A-Za-z][\w.-]*\s+)?{_V}", re.I)),
    ("fix", re.compile(rf"(?:upgrade|update|updating|upgrading|move|migrate)\s+(?:\S+\s+){{0,4}}?to\s+"
                       rf"(?:[A-Z][\w.+-]*\s+){{0,2}}(?:(?:release|version)\s+)?`?{_V}", re.I)),
    ("fix", re.compile(rf"{_V}\s+(?:or|and)\s+(?:above|later|higher|newer)\b", re.I)),
    ("fix", re.compile(rf"(?:version|release|v)\s*`?{_V}`?\s+(?:and\s+(?:later|above|newer)\s+)?(?:fix|fixes|"
                       rf"patch|patches|contains?\s+(?:a|the)\s+(?:fix|patch)|resolves?|address(?:es)?|"
                       rf"corrects?|mitigates?)", re.I)),
    ("fix", re.compile(rf"(?:included|available|introduced)\s+in\s+(?:[A-Za-z][\w.-]*\s+)?(?:version\s+)?{_V}", re.I)),
    ("fix", re.compile(rf">=\s*{_V}", re.I)),
]
_CHERRY = re.compile(r"cherry-?pick\w*\s+(?:this\s+)?(?:commit|fix|patch)?\s*(?:on|to|into)\s+(?P<list>[^.]*"
                     r"(?:\.\d[^.]*)*)", re.I)
_LIST_TAIL = re.compile(rf"(?:\s*(?:,\s*and|,\s*or|,|and|or|&)\s*(?:versions?\s+)?{VERSION}(?![\w-]|\.\d))+", re.I)
_BARE = re.compile(rf"(?<![\w.\-/#@:]){VERSION}(?![\w\-/]|\.\w)")


def _ok_version(v: str) -> bool:
    """Reject things that only look like versions: years, single numbers, CVE fragments, IP-like quads."""
    s = clean(v)
    if not re.match(r"^\d", s):
        return False
    if "." not in s and not re.search(r"[a-z]", s, re.I):
        return False
    head = s.split(".")[0]
    return not (len(head) == 4 and head.startswith(("19", "20")) and s.count(".") == 0)


def find_mentions(text: str) -> list[Mention]:
    """Every version-constraint phrase in ``text`` (left to right, no overlaps: earlier patterns win)."""
    taken: list[tuple[int, int]] = []
    out: list[Mention] = []
    for kind, pat in _PATTERNS:
        for m in pat.finditer(text):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue
            v = m.group("v")
            lower = m.groupdict().get("a")
            if not _ok_version(v) or (lower and not _ok_version(lower + ".0" if "." not in lower else lower)):
                continue
            if lower and re.search(rf"{re.escape(lower)}\.x", m.group(0)):
                lower = lower + ".0" * max(0, 2 - lower.count("."))  # "1.22.x" opens at 1.22.0
            if lower and kind.startswith("range") and not VersionKey(clean(lower)) < VersionKey(clean(v)):
                continue
            taken.append((s, e))
            out.append(Mention(kind, clean(v), clean(lower) if lower else None, s, e, s))
    for mn in list(out):
        if mn.kind in ("fixed", "fix"):
            tail = _LIST_TAIL.match(text, mn.end)
            if tail:
                for vm in _BARE.finditer(tail.group(0)):
                    s = mn.end + vm.start()
                    if _ok_version(vm.group(0)) and not any(ts <= s < te for ts, te in taken):
                        out.append(Mention("fix", clean(vm.group(0)), None, s, s + len(vm.group(0)), mn.name_end))
    for m in _CHERRY.finditer(text):
        for vm in _BARE.finditer(m.group("list")):
            s = m.start("list") + vm.start()
            if _ok_version(vm.group(0)) and not any(ts <= s < te for ts, te in taken):
                out.append(Mention("fix", clean(vm.group(0)), None, s, s + len(vm.group(0)), s))
    return sorted(out, key=lambda m: m.start)


def _branch_start(v: str) -> str:
    parts = clean(v).split(".")
    nums = [re.match(r"\d+", p) for p in parts[:2]]
    major = nums[0].group(0) if nums[0] else "0"
    minor = nums[1].group(0) if len(nums) > 1 and nums[1] else "0"
    return f"{major}.{minor}.0"


def intervals_from(mentions: list[Mention]) -> list[Interval]:
    """Turn constraint phrases into sorted, de-duplicated intervals."""
    explicit: list[Interval] = []
    fixes: list[Mention] = []
    for m in mentions:
        if m.kind == "fixed":
            explicit.append(Interval("0", fixed=m.version, start=m.start, end=m.end))
        elif m.kind == "last_affected":
            explicit.append(Interval("0", last_affected=m.version, start=m.start, end=m.end))
        elif m.kind == "range_fixed":
            explicit.append(Interval(m.lower or "0", fixed=m.version, start=m.start, end=m.end))
        elif m.kind == "range_last":
            explicit.append(Interval(m.lower or "0", last_affected=m.version, start=m.start, end=m.end))
        elif m.kind == "fix":
            fixes.append(m)
    uppers = {VersionKey(i.upper) for i in explicit if i.upper}
    for m in fixes:
        if VersionKey(m.version) not in uppers:
            explicit.append(Interval("0", fixed=m.version, start=m.start, end=m.end))
            uppers.add(VersionKey(m.version))
    return normalise(explicit)


def normalise(items: list[Interval]) -> list[Interval]:
    """Sort by upper bound, drop duplicates, give later branches their own lower bound, and drop a fix that only
    closes the newest line when older branches got backports (``fixed 2.8.0`` after ``2.7.1``: 2.8.0 was never
    vulnerable as a release)."""
    by_upper: dict[VersionKey, Interval] = {}
    for it in items:
        key = VersionKey(it.upper) if it.upper else VersionKey("999999")
        old = by_upper.get(key)
        # prefer an explicit lower bound and a fixed (exclusive) end over a duplicate without them
        if old is None or (is_zero(old.introduced) and not is_zero(it.introduced)):
            by_upper[key] = it
    ordered = [by_upper[k] for k in sorted(by_upper)]
    out: list[Interval] = []
    for it in ordered:
        if out and is_zero(it.introduced) and it.upper:
            prev_upper = out[-1].upper
            start = _branch_start(it.upper)
            if prev_upper and VersionKey(prev_upper) < VersionKey(start):
                if it.fixed and VersionKey(clean(it.fixed)) == VersionKey(start):
                    continue  # e.g. "fixed in 2.8.0" after backports to 2.7.1: no 2.8 release was affected
                it = Interval(start, fixed=it.fixed, last_affected=it.last_affected, start=it.start, end=it.end)
            else:
                # overlaps the previous interval: keep the larger upper bound as one interval
                prev = out.pop()
                it = Interval(prev.introduced, fixed=it.fixed, last_affected=it.last_affected,
                              start=min(prev.start, it.start), end=max(prev.end, it.end))
        out.append(it)
    return out


def events(intervals: list[Interval]) -> list[dict[str, str]]:
    """OSV ``events`` for sorted intervals."""
    ev: list[dict[str, str]] = []
    for it in intervals:
        ev.append({"introduced": clean(it.introduced) if not is_zero(it.introduced) else "0"})
        if it.fixed:
            ev.append({"fixed": clean(it.fixed)})
        elif it.last_affected:
            ev.append({"last_affected": clean(it.last_affected)})
    return ev


def ranges(intervals: list[Interval], *, range_type: str) -> list[dict[str, Any]]:
    """OSV ``ranges``: one range of ``range_type``, or two when fixed and last_affected ends are mixed."""
    if not intervals:
        return []
    fixed = [i for i in intervals if not i.last_affected]
    last = [i for i in intervals if i.last_affected]
    out = []
    for group in (fixed, last):
        if group:
            out.append({"type": range_type, "events": events(group)})
    return out


def affected_by(version: str, affected: dict[str, Any]) -> bool:
    """Is ``version`` affected according to one OSV ``affected`` entry (its ``versions`` list and its
    ECOSYSTEM/SEMVER ranges; GIT ranges are ignored)?"""
    if version in (affected.get("versions") or []):
        return True
    for rng in affected.get("ranges") or []:
        if rng.get("type") == "GIT":
            continue
        if any(iv.contains(version) for iv in intervals_of(rng.get("events") or [])):
            return True
    return False


def intervals_of(evs: list[dict[str, str]]) -> list[Interval]:
    """OSV events back to intervals (the inverse of :func:`events`; ``limit`` events are ignored)."""
    out: list[Interval] = []
    cur: str | None = None
    for e in sorted(evs, key=_event_key):
        if "introduced" in e:
            if cur is not None:
                out.append(Interval(cur))
            cur = e["introduced"]
        elif "fixed" in e and cur is not None:
            out.append(Interval(cur, fixed=e["fixed"]))
            cur = None
        elif "last_affected" in e and cur is not None:
            out.append(Interval(cur, last_affected=e["last_affected"]))
            cur = None
    if cur is not None:
        out.append(Interval(cur))
    return out


def _event_key(e: dict[str, str]) -> tuple[VersionKey, int]:
    (kind, value), = list(e.items())[:1]
    rank = {"introduced": 0, "fixed": 1, "last_affected": 1, "limit": 2}.get(kind, 3)
    return (VersionKey("0") if value == "0" else VersionKey(value), rank)


def fixed_versions(affected: dict[str, Any]) -> list[str]:
    """All ``fixed`` versions of one OSV affected entry's non-GIT ranges, in version order."""
    vs = {e["fixed"] for r in affected.get("ranges") or [] if r.get("type") != "GIT"
          for e in r.get("events") or [] if "fixed" in e}
    return sorted(vs, key=VersionKey)
