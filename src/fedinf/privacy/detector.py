"""The detector contract and the data-driven :class:`PatternDetector` most detectors are.

A detector sees a :class:`TextView` (the normalised text, its lower-cased copy, cheap precomputed features) and
yields :class:`Span` s in normalised offsets. A :class:`PatternDetector` is data: a regex, the cheap ``needs`` that
must hold before the regex runs at all, context words near the match, and a ``validate`` step (checksums, ranges).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Span(NamedTuple):
    """A detected entity in normalised-text offsets."""

    start: int
    end: int
    entity: str
    score: float


_DIGIT_RUN = re.compile(r"\d(?:[\d\-.()/ ]*\d)?")
_SEPARATORS = str.maketrans("", "", "-.()/ ")
_CLAUSE_BREAK = re.compile(r"[\d,;:]|\band\b")


class TextView:
    """One normalised text prepared once for all detectors.

    ``runs`` are the maximal runs of digits and number separators (``-./() `` and spaces) with their digit counts:
    number detectors only look at windows around runs with enough digits, instead of scanning the whole text.
    """

    __slots__ = ("text", "lower", "has_digit", "_runs", "_runs_min", "_needles", "_searched", "_found", "_cache")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lower = text.lower()
        self.has_digit = any(map(text.__contains__, "0123456789"))
        self._runs: list[tuple[int, int, int]] | None = None
        self._runs_min: dict[int, list[tuple[int, int]]] = {}
        self._needles: dict[str, bool] = {}
        self._searched: Container[str] = ()
        self._found: Container[str] = ()
        self._cache: dict[str, object] = {}

    def runs_with(self, min_digits: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the digit runs holding at least ``min_digits`` digits (memoised per threshold)."""
        got = self._runs_min.get(min_digits)
        if got is None:
            got = self._runs_min[min_digits] = [(a, b) for a, b, k in self.runs if k >= min_digits]
        return got

    def contains(self, needle: str) -> bool:
        """``needle in lower`` (``"#digit"``: any digit), memoised: detectors share needles."""
        got = self._needles.get(needle)
        if got is None:
            if needle in self._searched:
                got = needle in self._found
            else:
                got = self.has_digit if needle == "#digit" else needle in self.lower
            self._needles[needle] = got
        return got

    def record_needles(self, searched: Container[str], found: Container[str]) -> None:
        """Record the outcome of a search for many needles at once (the classifier's pre-filter): of the needles in
        ``searched``, those in ``found`` occur and the others do not (:meth:`contains` answers from it)."""
        self._searched, self._found = searched, found

    @property
    def runs(self) -> list[tuple[int, int, int]]:
        """``(start, end, digit_count)`` of every digit run, computed once."""
        if self._runs is None:
            self._runs = [] if not self.has_digit else [
                (m.start(), m.end(), len(m.group().translate(_SEPARATORS))) for m in _DIGIT_RUN.finditer(self.text)
            ]
        return self._runs

    def memo(self, key: str, compute: Callable[[], object]) -> object:
        """Compute shared intermediate results (e.g. digit runs) once per text."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


class Detector(Protocol):
    """Anything that finds entities. ``entities`` lists the types it can emit (for docs and config checks)."""

    @property
    def name(self) -> str: ...

    @property
    def entities(self) -> tuple[str, ...]: ...

    def detect(self, view: TextView) -> Iterable[Span]: ...


def words_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """A case-insensitive whole-word alternation of ``words`` (already lower-case), or None when empty."""
    ws = sorted({w.lower() for w in words}, key=len, reverse=True)
    if not ws:
        return None
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in ws) + r")(?![a-z0-9])")


@dataclass(frozen=True)
class PatternDetector:
    """A regex detector described by data.

    - ``needs``: substrings (lower case) one of which must occur in the text, or ``"#digit"`` for any digit: a
      failed ``needs`` skips the regex entirely (the cheap pre-filter).
    - ``group``: the regex group holding the value (0 = whole match).
    - ``validate``: called with the value; False drops the candidate.
    - ``context``: words searched within ``window`` characters before (and ``window // 2`` after) the value;
      a hit raises the score to ``context_score``; with ``context_required`` a candidate without context is dropped.
    - ``scope="digits"``: the value contains a run of at least ``min_digits`` digits; the regex then only runs in
      windows from ``before`` characters before such a run to ``after`` characters after it (much cheaper than
      scanning the whole text, and the lookbehind/lookahead still see the real neighbours).
    - ``scope="anchors"``: every occurrence of a ``needs`` string (in the lower-cased text) is a place where the
      regex may match: it is tried there only (``match`` at ``before`` characters ahead of the occurrence); for
      secrets with fixed prefixes and keyword-led patterns this replaces a scan of the whole text.
    - ``precheck``: a cheap regex that must ``search`` successfully before the main regex runs.
    - ``negative``: words that drop a candidate when found in the window before it (e.g. "version" before an
      IP-like value).
    """

    name: str
    entity: str
    pattern: str
    flags: int = 0
    needs: tuple[str, ...] = ()
    group: int | str = 0
    validate: Callable[[str], bool] | None = None
    context: tuple[str, ...] = ()
    context_required: bool = False
    negative: tuple[str, ...] = ()
    score: float = 0.8
    context_score: float = 0.95
    window: int = 48
    scope: str = "text"
    precheck: str | None = None
    min_digits: int = 1
    before: int | None = None  # default: 2 for "digits", 0 for "anchors"
    after: int = 2
    _rx: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _ctx: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _neg: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _pre: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rx", re.compile(self.pattern, self.flags))
        object.__setattr__(self, "_ctx", words_regex(self.context))
        object.__setattr__(self, "_neg", words_regex(self.negative))
        object.__setattr__(self, "_pre", re.compile(self.precheck) if self.precheck else None)
        if self.scope not in ("text", "digits", "anchors"):
            raise ValueError(f"{self.name}: unknown scope {self.scope!r}")
        if self.scope == "anchors" and (not self.needs or "#digit" in self.needs):
            raise ValueError(f"{self.name}: scope 'anchors' needs literal `needs`")

    @property
    def entities(self) -> tuple[str, ...]:
        return (self.entity,)

    def _wanted(self, view: TextView) -> bool:
        if not self.needs:
            return True
        return any(view.contains(n) for n in self.needs)

    def _matches(self, view: TextView) -> list[re.Match[str]]:
        if self._pre is not None and not self._pre.search(view.text):
            return []
        if self.scope == "text":
            return list(self._rx.finditer(view.text))
        text, out = view.text, []
        if self.scope == "anchors":
            lower, seen = view.lower, set()
            for needle in self.needs:
                i = lower.find(needle)
                while i >= 0:
                    m = self._rx.match(text, max(0, i - (self.before or 0)))
                    if m is not None and m.span() not in seen:
                        seen.add(m.span())
                        out.append(m)
                    i = lower.find(needle, i + 1)
            return out
        runs = view.runs_with(self.min_digits)
        if not runs:
            return out
        n, before, after, rx = len(text), 2 if self.before is None else self.before, self.after, self._rx
        last = -1
        for a, b in runs:
            hi = min(n, b + after)
            for m in rx.finditer(text, max(0, a - before), hi):
                if hi < n and m.end() > b:  # the window may have cut the value short: match again without the limit
                    full = rx.match(text, m.start())
                    if full is None:
                        continue
                    m = full
                if m.end() > last:  # windows of neighbouring runs overlap: skip what an earlier window found
                    last = m.end()
                    out.append(m)
        return out

    def _vetoed(self, lower: str, w0: int, s: int) -> bool:
        """A negative word before the value counts unless a context word stands between it and the value
        ("routing 021000021, account 000123456789": the account number is still an account number)."""
        assert self._neg is not None
        last_neg = -1
        for m in self._neg.finditer(lower, w0, s):
            last_neg = m.end()
        if last_neg < 0:
            return False
        ctx = self._ctx.search(lower, last_neg, s) if self._ctx is not None else None
        # the context word must belong to another clause than the negative ("order number 12345678" stays vetoed)
        return ctx is None or _CLAUSE_BREAK.search(lower, last_neg, ctx.start()) is None

    def detect(self, view: TextView) -> Iterator[Span]:
        if not self._wanted(view):
            return
        matches = self._matches(view)
        if not matches:
            return
        for m in matches:
            s, e = m.span(self.group)
            if s < 0:
                continue
            if self.validate is not None and not self.validate(view.text[s:e]):
                continue
            score = self.score
            if self._ctx is not None or self._neg is not None:
                lo = view.lower
                w0, w1 = max(0, s - self.window), min(len(lo), e + self.window // 2)
                if self._neg is not None and self._vetoed(lo, w0, s):
                    continue
                if self._ctx is not None and self._ctx.search(lo, w0, w1):
                    score = self.context_score
                elif self.context_required:
                    continue
            yield Span(s, e, self.entity, score)
