"""Classification across text pieces: values split over messages, and context words in another message.

Per-piece detection misses what a caller spreads over several messages (or over one message with words in
between): "card starts 4539-7709" / "ends 1453-4169", or "my account number is in the next message" /
"000123456789". :func:`across` looks for these after the per-piece pass, with the classifier's own number detectors
(the ``scope="digits"`` :class:`~fedinf.privacy.detector.PatternDetector` s: cards, IBANs, SSNs, accounts, ...):

- *split values*: two or three consecutive digit runs (in one piece or in neighbouring pieces, at most
  :data:`MAX_GAP` characters of other text apart) are joined and detected as one value; a value found only when
  joined is reported as one entity per part, in each part's own piece;
- *context elsewhere*: a short piece that is only a value (at most :data:`SHORT` characters) is detected again with
  the context words of the pieces just before it (up to :data:`LOOKBACK`), so "account" in one message counts for
  the number in the next (the classifier passes the same high-value detectors here).

Only digit runs not already inside an entity are considered. Offsets are in the normalised texts; the classifier
maps them back.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from fedinf.privacy.detector import PatternDetector, TextView

MAX_GAP = 80
SHORT = 64
LOOKBACK = 3
_RUN = re.compile(r"\d[\d \-]*\d")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")  # what words_regex's lookarounds test


class Part(NamedTuple):
    """A span ``[start, end)`` of normalised piece ``source`` that belongs to a value of ``entity``."""

    source: int
    start: int
    end: int
    entity: str
    score: float


def _runs(texts: Sequence[str], taken: dict[int, list[tuple[int, int]]]) -> list[tuple[int, int, int]]:
    """(piece, start, end) of the digit runs with 3+ digits that no entity covers, in reading order."""
    out = []
    for i, text in enumerate(texts):
        for m in _RUN.finditer(text):
            start, end = _standalone(text, m.start(), m.end())
            if start < 0 or sum(map(str.isdigit, text[start:end])) < 3:
                continue
            if any(a < end and start < b for a, b in taken.get(i, ())):
                continue
            out.append((i, start, end))
    return out


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _standalone(text: str, start: int, end: int) -> tuple[int, int]:
    """The run as a number standing on its own - led by an IBAN's two country letters at most - or (-1, -1) when
    it is digits inside a hash or an identifier."""
    if end < len(text) and _word(text[end]):
        return -1, -1
    if start >= 2 and text[start - 2:start].isalpha() and (start == 2 or not _word(text[start - 3])):
        return start - 2, end
    if start and _word(text[start - 1]):
        return -1, -1
    return start, end


class _Cues:
    """Context words of the number detectors near runs (split values) or per piece (context elsewhere)."""

    def __init__(self, texts: Sequence[str], any_cue: re.Pattern[str] | None = None) -> None:
        self.lower = [t.lower() for t in texts]
        self._found: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._matches: dict[tuple[int, int], list[tuple[int, int, str]]] = {}  # (regex id, piece) -> its matches
        # a regex that finds a match wherever a detector's context regex finds one (the union of their words):
        # one search per piece rules out every detector's words at once in a piece without any
        self._any_cue = any_cue
        self._has_cue: dict[int, bool] = {}

    def near(self, rx: re.Pattern[str] | None, first: tuple[int, int, int], last: tuple[int, int, int]) -> str:
        """A context word (``rx``: the words of the split detectors) before or among the runs ``first..last``: in the same piece at most
        MAX_GAP characters before ``first`` and up to ``last``, or (when ``first`` opens its piece) at the end of
        the piece before it. "" when there is none. Only this small region is searched."""
        if rx is None:
            return ""
        i, s = first[0], first[1]
        for j in range(i, last[0] + 1):
            lo = max(0, s - MAX_GAP) if j == i else 0
            hi = last[2] if j == last[0] else len(self.lower[j])
            word = self._search(rx, j, lo, hi)
            if word:
                return word
        if s <= MAX_GAP and i > 0:
            prev = self.lower[i - 1]
            word = self._search(rx, i - 1, max(0, len(prev) - MAX_GAP), len(prev))
            if word:
                return word
        return ""

    def _search(self, rx: re.Pattern[str], j: int, lo: int, hi: int) -> str:
        """``rx.search(lower[j], lo, hi)``'s word ("" for none), answered from the piece's matches, found once: a
        number-heavy piece (a table) has a run every few characters, and one search per pair of runs cost
        milliseconds per kilobyte. The answer is the same. ``rx`` is a :func:`~fedinf.privacy.detector.words_regex`
        (words between ``(?<![a-z0-9])`` and ``(?![a-z0-9])``), so the window's leftmost match is the piece's first
        match at or after ``lo``, when it ends by ``hi``. The window itself is searched when that may not hold: a
        piece match straddles ``lo``, the first one ends past ``hi`` (a shorter word may fit), or a letter or digit
        follows ``hi`` (the window's end would pass a lookahead that the piece fails)."""
        lower = self.lower[j]
        if hi >= len(lower) or lower[hi] not in _WORD_CHARS:
            found = self._piece_matches(rx, j)
            k = bisect_left(found, (lo,))
            if k == 0 or found[k - 1][1] <= lo:  # no piece match straddles lo
                if k == len(found) or found[k][0] >= hi:
                    return ""
                if found[k][1] <= hi:
                    return found[k][2]
        m = rx.search(lower, lo, hi)
        return m.group() if m is not None else ""

    def _piece_matches(self, rx: re.Pattern[str], j: int) -> list[tuple[int, int, str]]:
        """``(start, end, word)`` of each match of ``rx`` in piece ``j``, found once."""
        key = (id(rx), j)
        found = self._matches.get(key)
        if found is None:
            found = self._matches[key] = [(m.start(), m.end(), m.group()) for m in rx.finditer(self.lower[j])]
        return found

    def may_be_near(self, rx: re.Pattern[str], runs: list[tuple[int, int, int]]) -> bool:
        """Whether :meth:`near` can find a word for any of ``runs``: some piece has a match of ``rx``, or a run's
        end is followed by a word character (its window is searched as such, see :meth:`_search`). When not, the
        split-value pass has nothing to look at (a table of numbers without any context word)."""
        if any(self._piece_matches(rx, j) for j in range(len(self.lower))):
            return True
        return any(b < len(self.lower[i]) and self.lower[i][b] in _WORD_CHARS for i, _, b in runs)

    def _in(self, detector: PatternDetector, i: int) -> list[tuple[int, str]]:
        key = (detector.name, i)
        got = self._found.get(key)
        if got is None:
            rx = detector._ctx
            got = self._found[key] = [] if rx is None or not self._may_hold(i) else [
                (m.start(), m.group()) for m in rx.finditer(self.lower[i])]
        return got

    def _may_hold(self, i: int) -> bool:
        """Can piece ``i`` hold a context word at all?"""
        if self._any_cue is None:
            return True
        got = self._has_cue.get(i)
        if got is None:
            got = self._has_cue[i] = self._any_cue.search(self.lower[i]) is not None
        return got


def across(detectors: Sequence[PatternDetector], texts: Sequence[str], taken: dict[int, list[tuple[int, int]]], *,
           split: Sequence[PatternDetector] = (), split_cues: re.Pattern[str] | None = None) -> Iterator[Part]:
    """Parts of values found only across pieces or with context from other pieces (see the module docstring).
    ``detectors`` are tried for context from other pieces, ``split`` (high-value identifiers: cards, IBANs,
    national ids, accounts) for split values; a split value needs a context word of its detector nearby, so two
    unrelated numbers are never joined into one (``split_cues``: all their context words in one regex)."""
    runs = _runs(texts, taken)
    if not runs:
        return
    covered = {id(d) for d in split} >= {id(d) for d in detectors}  # then split_cues holds all their words
    cues = _Cues(texts, split_cues if covered else None)
    if split and len(runs) > 1:
        yield from _split(split, texts, runs, cues, split_cues)
    yield from _elsewhere(detectors, texts, runs, cues)


def _split(detectors: Sequence[PatternDetector], texts: Sequence[str], runs: list[tuple[int, int, int]],
           cues: _Cues, rx: re.Pattern[str] | None) -> Iterator[Part]:
    if rx is None or not cues.may_be_near(rx, runs):
        return
    digits = [sum(map(str.isdigit, texts[i][a:b])) for i, a, b in runs]
    for k in range(len(runs)):
        for n in (2, 3):
            group = runs[k:k + n]
            if len(group) < n or not all(_near(texts, a, b) for a, b in zip(group, group[1:])):
                break
            ndigits = sum(digits[k:k + n])
            if not 9 <= ndigits <= 34:
                continue
            cue = cues.near(rx, group[0], group[-1])
            if cue:
                yield from _joined(detectors, texts, group, cue)


def _joined(detectors: Sequence[PatternDetector], texts: Sequence[str], group: list[tuple[int, int, int]],
            cue: str) -> Iterator[Part]:
    """The runs of ``group`` joined after ``cue`` - as written, with a space between, and as digits only
    ("DE89370400" + "440532013000" is one IBAN only without a space, "234" + "56-7891" an SSN only as digits) -
    and the parts of each value found that spans two or more runs."""
    prefix = f"{cue}: "
    for sep in ("", " ", None):  # None: digits only ("234" + "56-7891" is the SSN 234567891)
        joined, offsets = prefix, []
        for i, s, e in group:
            offsets.append(len(joined))
            part = texts[i][s:e]
            joined += "".join(c for c in part if c.isdigit()) if sep is None else part + sep
        view = TextView(joined.rstrip())
        found = False
        for d in detectors:
            if d._ctx is None or not d._ctx.fullmatch(cue):
                continue
            ends = offsets[1:] + [len(view.text)]
            for span in d.detect(view):
                covered = [j for j, off in enumerate(offsets) if span.start < ends[j] and off < span.end]
                if len(covered) < 2:
                    continue  # found in one part alone: the per-piece pass saw it already
                found = True
                for j in covered:
                    i, s, e = group[j]
                    if sep is None:  # positions in a digits-only join do not map back: the whole run
                        yield Part(i, s, e, span.entity, span.score)
                    else:
                        yield Part(i, s + max(0, span.start - offsets[j]), s + min(e - s, span.end - offsets[j]),
                                   span.entity, span.score)
        if found:
            return


def _near(texts: Sequence[str], a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Are two runs at most MAX_GAP characters of text apart (counting across a piece boundary)?"""
    if a[0] == b[0]:
        return b[1] - a[2] <= MAX_GAP
    gap = len(texts[a[0]]) - a[2] + b[1] + sum(len(texts[k]) for k in range(a[0] + 1, b[0]))
    return gap <= MAX_GAP


def _elsewhere(detectors: Sequence[PatternDetector], texts: Sequence[str], runs: list[tuple[int, int, int]],
               cues: _Cues) -> Iterator[Part]:
    for i in sorted({r[0] for r in runs}):
        text = texts[i]
        if i == 0 or len(text.strip()) > SHORT:
            continue
        before = [j for j in range(i - 1, max(-1, i - 1 - LOOKBACK), -1) if cues._may_hold(j)]
        if not before:
            continue
        views: dict[str, TextView] = {}  # one per cue, shared by the detectors (a view is prepared once for all)
        for d in detectors:
            cue = next((found[-1][1] for j in before if (found := cues._in(d, j))), "")
            if not cue:
                continue
            prefix = f"{cue}: "
            view = views.get(prefix)
            if view is None:
                view = views[prefix] = TextView(prefix + text)
            for span in d.detect(view):
                if span.start >= len(prefix):
                    yield Part(i, span.start - len(prefix), span.end - len(prefix), span.entity, span.score)
