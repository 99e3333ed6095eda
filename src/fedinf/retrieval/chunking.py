"""Chunking: a document's text cut into overlapping windows with exact offsets.

Each page is chunked on its own (a chunk never spans a page break, so a citation names one page). A window holds at
most ``max_chars`` characters and ends at the best boundary found in its last third: a paragraph break, else a
sentence end, else whitespace, else a hard cut. The next window starts ``overlap`` characters before the previous
one ended (moved forward to a word start). Leading and trailing whitespace is trimmed from each chunk, and the
offsets always satisfy ``text[start:end] == chunk.text``. Whitespace-only pieces are dropped.

Hand-written rather than taken from a text-splitter library: those (langchain's, llama-index's) pull in large
dependency trees and most do not report offsets into the original text, which citations need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fedinf.retrieval.model import ChunkText

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE = re.compile(r"[.!?;:][\"')\]]?\s")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """``max_chars`` per chunk (MiniLM reads ~256 word pieces, about 1,000 characters of English) and ``overlap``
    characters shared by neighbouring chunks."""

    max_chars: int = 1000
    overlap: int = 150

    def __post_init__(self) -> None:
        if self.max_chars < 50:
            raise ValueError("max_chars must be at least 50")
        if not 0 <= self.overlap < self.max_chars // 2:
            raise ValueError("overlap must be >= 0 and less than half of max_chars")


def _cut(text: str, start: int, limit: int) -> int:
    """Where the window ``[start, limit)`` should end: the last good boundary in its final third."""
    if limit >= len(text):
        return len(text)
    floor = start + (limit - start) * 2 // 3
    for pattern in (_PARAGRAPH, _SENTENCE, _SPACE):
        best = -1
        for m in pattern.finditer(text, floor, limit):
            best = m.end()
        if best > floor:
            return best
    return limit


def _windows(text: str, policy: ChunkPolicy) -> Iterator[tuple[int, int]]:
    start, n = 0, len(text)
    while start < n:
        end = _cut(text, start, start + policy.max_chars)
        yield start, end
        if end >= n:
            return
        nxt = max(end - policy.overlap, start + 1)
        if nxt < end:  # start the overlap at a word boundary
            m = _SPACE.search(text, nxt, end)
            nxt = m.end() if m is not None else nxt
        start = min(nxt, end) if nxt > start else end


def chunk_text(text: str, *, policy: ChunkPolicy = ChunkPolicy(),
               pages: Sequence[tuple[int, int, int]] | None = None) -> list[ChunkText]:
    """Chunks of ``text``. ``pages`` are ``(number, start, end)`` triples (default: one page, the whole text)."""
    spans = pages or [(1, 0, len(text))]
    out: list[ChunkText] = []
    for number, p_start, p_end in spans:
        page_text = text[p_start:p_end]
        for a, b in _windows(page_text, policy):
            piece = page_text[a:b]
            stripped = piece.strip()
            if not stripped:
                continue
            lead = len(piece) - len(piece.lstrip())
            s = p_start + a + lead
            out.append(ChunkText(index=len(out), start=s, end=s + len(stripped), page=number, text=stripped))
    return out
