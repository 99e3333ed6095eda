"""Page layout: words with boxes, grouped into lines and cells, and the page text written from them.

Both text sources end here: PDF characters with their boxes (pypdfium2) and OCR words with theirs
(:mod:`fedinf.documents.ocr`). :func:`assemble` groups words into lines (by vertical overlap), sorts each line left to
right and splits it into *cells* where the gap between two words is wider than the line is tall (a column gap). The
page text is written from that: words joined by one space, cells by :data:`CELL_GAP`, lines by newlines - so the
offsets of every word in ``Document.text`` are known exactly, and a value found by layout (a label's right-hand
neighbour, the line below it) points back to its span like any text match.

Plain-text documents get a layout too (:func:`text_layout`): a character is one unit wide, a line one unit tall, and
two or more spaces or a tab separate cells, so the same label/value search works on them.

Coordinates are in page units with the origin at the top left (PDF points, OCR pixels); only ratios matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median
from typing import Iterable, Literal

CELL_GAP = "   "  # what separates two cells of a line in the page text
LayoutSource = Literal["pdf", "ocr", "text"]


@dataclass(frozen=True, slots=True)
class Word:
    """A word: its text, box (``x0 < x1``, ``y0 < y1``, top-left origin), confidence (OCR; 1.0 for PDF text) and,
    once assembled, its ``[start, end)`` offsets in the page text."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    conf: float = 1.0
    start: int = 0
    end: int = 0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True, slots=True)
class Cell:
    """Words of one line with no column gap between them."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return self.words[-1].x1

    @property
    def start(self) -> int:
        return self.words[0].start

    @property
    def end(self) -> int:
        return self.words[-1].end

    @property
    def conf(self) -> float:
        return min(w.conf for w in self.words)

    def span_of(self, start: int, end: int) -> tuple[int, int]:
        """Offsets ``[start, end)`` in :attr:`text` -> offsets in the document text (words keep their own
        offsets, so this holds whether or not the cell's words are contiguous there)."""
        return self._at(start, False), self._at(end, True)

    def _at(self, pos: int, is_end: bool) -> int:
        off = 0
        for w in self.words:
            n = len(w.text)
            if pos < off + n or (is_end and pos == off + n):
                return w.start + max(0, pos - off)
            off += n + 1
            if pos < off:  # on the space after the word
                return w.end if is_end else self.words[min(self.words.index(w) + 1, len(self.words) - 1)].start
        return self.words[-1].end


@dataclass(frozen=True, slots=True)
class TextLine:
    """One visual line: its cells left to right, its index on the page and its vertical extent."""

    index: int
    cells: tuple[Cell, ...]
    y0: float
    y1: float

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for c in self.cells for w in c.words)

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def start(self) -> int:
        return self.cells[0].start

    @property
    def end(self) -> int:
        return self.cells[-1].end


@dataclass(frozen=True, slots=True)
class PageLayout:
    """The lines of one page (1-based ``number``), its size, and where its words came from."""

    number: int
    width: float
    height: float
    lines: tuple[TextLine, ...]
    source: LayoutSource = "pdf"

    @property
    def text(self) -> str:
        return "\n".join(CELL_GAP.join(c.text for c in line.cells) for line in self.lines)


def _group_lines(words: list[Word]) -> list[list[Word]]:
    """Words whose vertical centre lies within about half a line height of a line's mean centre join it (top to
    bottom). The reference does not grow as words join, so two close lines never merge."""
    lines: list[tuple[float, float, list[Word]]] = []  # (mean centre, height of its first word, words)
    for w in sorted(words, key=lambda w: (w.cy, w.x0)):
        best, best_d = -1, 0.0
        for i, (cy, h, _) in enumerate(lines[-8:], start=max(0, len(lines) - 8)):
            d = abs(w.cy - cy)
            if d < 0.45 * max(h, w.height) and (best < 0 or d < best_d):
                best, best_d = i, d
        if best < 0:
            lines.append((w.cy, w.height, [w]))
        else:
            cy, h, ws = lines[best]
            ws.append(w)
            lines[best] = (cy + (w.cy - cy) / len(ws), h, ws)
    lines.sort(key=lambda t: t[0])
    return [ws for _, _, ws in lines]


def assemble(words: Iterable[Word], *, number: int, width: float, height: float,
             source: LayoutSource = "pdf", gap: float = 1.0, keep_offsets: bool = False) -> PageLayout:
    """Lines and cells from loose words; a horizontal gap wider than ``gap`` x the line height starts a new cell.
    Word offsets (``start``/``end``) are set relative to the page text (:attr:`PageLayout.text`), unless
    ``keep_offsets`` (the words already point into a text of their own, e.g. PDFium's)."""
    good = [w for w in words if w.text.strip() and w.x1 > w.x0 and w.y1 > w.y0]
    out_lines: list[TextLine] = []
    pos = 0
    for idx, ws in enumerate(_group_lines(good)):
        ws.sort(key=lambda w: w.x0)
        h = median(w.height for w in ws)
        cells: list[list[Word]] = [[ws[0]]]
        for prev, w in zip(ws, ws[1:]):
            if w.x0 - prev.x1 > gap * h:
                cells.append([w])
            else:
                cells[-1].append(w)
        if idx:
            pos += 1  # the newline
        placed_cells = []
        for ci, cw in enumerate(cells):
            if ci:
                pos += len(CELL_GAP)
            placed = []
            for wi, w in enumerate(cw):
                if wi:
                    pos += 1
                placed.append(w if keep_offsets else Word(w.text, w.x0, w.y0, w.x1, w.y1, w.conf, pos,
                                                          pos + len(w.text)))
                pos += len(w.text)
            placed_cells.append(Cell(tuple(placed)))
        out_lines.append(TextLine(idx, tuple(placed_cells), min(w.y0 for w in ws), max(w.y1 for w in ws)))
    return PageLayout(number=number, width=width, height=height, lines=tuple(out_lines), source=source)


def shift(layout: PageLayout, offset: int) -> PageLayout:
    """The same layout with every word offset moved by ``offset`` (page-relative -> document offsets)."""
    lines = tuple(TextLine(l.index, tuple(Cell(tuple(Word(w.text, w.x0, w.y0, w.x1, w.y1, w.conf, w.start + offset,
                                                         w.end + offset) for w in c.words)) for c in l.cells),
                           l.y0, l.y1) for l in layout.lines)
    return PageLayout(layout.number, layout.width, layout.height, lines, layout.source)


_CELL_SPLIT = re.compile(r"\t+| {2,}")
_WORD = re.compile(r"\S+")


def text_layout(text: str, *, number: int, offset: int = 0) -> PageLayout:
    """A layout for plain text: one unit per character and per line; tabs or 2+ spaces separate cells. Offsets
    are ``offset`` + positions in ``text`` (the text itself is not rewritten)."""
    lines: list[TextLine] = []
    pos = 0
    for y, raw in enumerate(text.split("\n")):
        cells: list[Cell] = []
        for m in re.finditer(r"[^\t]+?(?=\t| {2,}|$)", raw):
            seg = m.group(0)
            words = tuple(Word(w.group(0), float(m.start() + w.start()), float(y), float(m.start() + w.end()),
                               float(y + 1), 1.0, offset + pos + m.start() + w.start(),
                               offset + pos + m.start() + w.end()) for w in _WORD.finditer(seg))
            if words:
                cells.append(Cell(words))
        if cells:
            lines.append(TextLine(len(lines), tuple(cells), float(y), float(y + 1)))
        pos += len(raw) + 1
    width = float(max((len(l) for l in text.split("\n")), default=1))
    return PageLayout(number=number, width=width, height=float(text.count("\n") + 1), lines=tuple(lines),
                      source="text")
