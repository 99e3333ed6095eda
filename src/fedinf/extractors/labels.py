"""Label -> value search on the page layout: the value of a field is read next to the words that name it.

A :class:`LabelSet` is a field's vocabulary: label phrases with a weight (how surely the phrase names this field:
"amount due" 1.0, "total" 0.5) and phrases that disqualify a cell ("previous balance", "amount enclosed").
:func:`candidates` finds every cell whose text holds a label and reads values from the places a value sits on real
documents, each with a relation score:

- ``inline``: the rest of the label's cell (``Due date: 03/14/2026``)             0.95
- ``right``: the next cell on the same line (label and value in two columns)      0.90
- ``below``: a cell on one of the next lines that overlaps the label horizontally  0.85, 0.75, 0.65 (1-3 lines down)

A parser (``(text) -> (value, start, end) | None``, offsets into ``text``) turns the place's text into a value;
:class:`Candidate` carries value, score (label weight x relation x OCR word confidence), the evidence (``label:due
date/right``) and the document offsets. :func:`decide` picks a field's value from its candidates: the best score,
raised when other labels give the same value (a remittance stub repeating the due date), lowered when a competing
value scores nearly as high (ambiguous: flagged, not silently chosen).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fedinf.documents import Document
from fedinf.documents.layout import Cell, PageLayout, TextLine
from fedinf.extractors.base import Found, found

Parser = Callable[[str], "tuple[Any, int, int] | None"]
RELATION = {"inline": 0.95, "right": 0.9, "below": 0.85}
BELOW_DECAY = 0.1  # per extra line down
MAX_BELOW = 3  # lines


@dataclass(frozen=True)
class LabelSet:
    """A field's label phrases ``{phrase: weight}`` and phrases that disqualify a cell."""

    labels: dict[str, float]
    exclude: tuple[str, ...] = ()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    excluded: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _alternation(list(self.labels)))
        object.__setattr__(self, "excluded", _alternation(list(self.exclude)) if self.exclude else None)

    def weight(self, phrase: str) -> float:
        key = re.sub(r"[\s\-]+", " ", phrase.lower()).strip(" .:#")
        return max((w for l, w in self.labels.items() if re.sub(r"[\s\-]+", " ", l) == key), default=0.5)


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    alts = sorted((re.escape(p).replace(r"\ ", r"[\s\-]*") for p in phrases), key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(alts) + r")(?![A-Za-z])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Candidate:
    value: Any
    start: int
    end: int
    score: float
    evidence: str

    def to_found(self, doc: Document, **extra: Any) -> Found:
        return found(doc, self.value, self.start, self.end, score=self.score, evidence=self.evidence, **extra)


def _cell_text(doc: Document, cell: Cell) -> str:
    return cell.text


def _right(line: TextLine, ci: int, page: PageLayout) -> Cell | None:
    if ci + 1 >= len(line.cells):
        return None
    nxt = line.cells[ci + 1]
    return nxt if nxt.x0 - line.cells[ci].x1 < 0.45 * page.width else None


def _below(page: PageLayout, line: TextLine, cell: Cell) -> Iterator[tuple[int, Cell]]:
    """Per next line, the cell overlapping ``cell`` horizontally the most (with one line height of slack)."""
    slack = line.height
    for k, nxt in enumerate(page.lines[line.index + 1:line.index + 1 + MAX_BELOW], start=1):
        if nxt.y0 - line.y1 > (k + 1.5) * line.height:
            return
        best, most = None, 0.0
        for c in nxt.cells:
            overlap = min(c.x1, cell.x1 + slack) - max(c.x0, cell.x0 - slack)
            if overlap > most:
                best, most = c, overlap
        if best is not None:
            yield k, best


def candidates(doc: Document, labels: LabelSet, parse: Parser, *, places: tuple[str, ...] = ("inline", "right",
                                                                                                  "below"),
               pages: int | None = None) -> list[Candidate]:
    """Every value ``parse`` reads at a place next to a label of ``labels`` (see the module docstring)."""
    out: list[Candidate] = []
    for page in doc.layout[:pages]:
        for line in page.lines:
            for ci, cell in enumerate(line.cells):
                text = _cell_text(doc, cell)
                m = labels.pattern.search(text)
                if m is None or (labels.excluded is not None and labels.excluded.search(text)):
                    continue
                w = labels.weight(m.group(0)) * cell.conf
                ev = re.sub(r"\s+", " ", m.group(0).lower())
                if "inline" in places:
                    rest = text[m.end():]
                    got = parse(rest)
                    if got is not None:
                        v, s, e = got
                        a, b = cell.span_of(m.end() + s, m.end() + e)
                        out.append(Candidate(v, a, b, w * RELATION["inline"], f"label:{ev}/inline"))
                        continue
                    if rest.strip(" :#.-") and m.start() > 0:
                        continue  # the label is inside other words ("Date of last payment"): no neighbours
                nb = _right(line, ci, page) if "right" in places else None
                if nb is not None and not (labels.excluded and labels.excluded.search(_cell_text(doc, nb))):
                    got = parse(_cell_text(doc, nb))
                    if got is not None:
                        v, s, e = got
                        a, b = nb.span_of(s, e)
                        out.append(Candidate(v, a, b, w * nb.conf * RELATION["right"], f"label:{ev}/right"))
                        continue
                if "below" in places:
                    for k, c in _below(page, line, cell):
                        ctext = _cell_text(doc, c)
                        if labels.pattern.search(ctext):
                            break
                        got = parse(ctext)
                        if got is not None:
                            v, s, e = got
                            score = w * c.conf * (RELATION["below"] - BELOW_DECAY * (k - 1))
                            a, b = c.span_of(s, e)
                            out.append(Candidate(v, a, b, score, f"label:{ev}/below"))
                            break
    return out


def decide(candidates: list[Candidate], *, key: Callable[[Any], Any] = lambda v: v) -> Candidate | None:
    """The field's value: the best-scoring candidate, +0.05 per other candidate agreeing (up to +0.1); when a
    different value scores within 0.1 of it, the score drops below the flag line (0.6 at most)."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: -c.score)
    best = ranked[0]
    agree = [c for c in ranked[1:] if key(c.value) == key(best.value)]
    rival = next((c for c in ranked[1:] if key(c.value) != key(best.value)), None)
    score = min(1.0, best.score + 0.05 * min(2, len(agree)))
    if rival is not None and rival.score > best.score - 0.1:
        score = min(score, 0.6)
        return Candidate(best.value, best.start, best.end, score, best.evidence + "/ambiguous")
    return Candidate(best.value, best.start, best.end, score, best.evidence)
