"""Split a long document into chunks that each fit a token budget, cutting at the most natural boundary.

Boundaries, in order of preference: page, blank line (paragraph), line, sentence end, a space, and finally a hard cut.
Adjacent small pieces are packed together up to the budget, so a short document stays one chunk. Every chunk keeps
its ``[start, end)`` offsets in ``Document.text`` and the pages it covers, so a value found in a chunk maps back.

Token counts are estimated by ``count_tokens`` (default: ~4 characters a token, a deliberate over-estimate for
Latin text; pass a real tokenizer's count for exact budgets).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fedinf.documents.model import Document

TokenCounter = Callable[[str], int]
_SEPARATORS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r" "))


def approx_tokens(text: str) -> int:
    """~4 characters per token, rounded up (over-estimates typical English; fine for budgets)."""
    return (len(text) + 3) // 4


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: ``text == document.text[start:end]``, on pages ``first_page..last_page``."""

    index: int
    start: int
    end: int
    first_page: int
    last_page: int
    text: str


def _pieces(text: str, start: int, end: int, budget: int, count: TokenCounter, level: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into ranges of at most ``budget`` tokens at the coarsest separator that works."""
    if count(text[start:end]) <= budget:
        return [(start, end)]
    if level >= len(_SEPARATORS):  # hard cut by characters, proportional to the budget
        step = max(1, (end - start) * budget // max(1, count(text[start:end])))
        return [(i, min(end, i + step)) for i in range(start, end, step)]
    cuts, pos = [], start
    for m in _SEPARATORS[level].finditer(text, start, end):
        cuts.append((pos, m.end()))
        pos = m.end()
    cuts.append((pos, end))
    if len(cuts) == 1:
        return _pieces(text, start, end, budget, count, level + 1)
    out: list[tuple[int, int]] = []
    for s, e in cuts:
        out.extend(_pieces(text, s, e, budget, count, level + 1) if count(text[s:e]) > budget else [(s, e)])
    return out


def split_document(document: Document, *, max_tokens: int, count_tokens: TokenCounter = approx_tokens) -> list[Chunk]:
    """Chunks of at most ``max_tokens`` (by ``count_tokens``) covering the whole text in order."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    text = document.text
    ranges: list[tuple[int, int]] = []
    for page in document.pages:
        ranges.extend(_pieces(text, page.start, page.end, max_tokens, count_tokens, 0))
    packed: list[tuple[int, int]] = []
    for s, e in ranges:
        if packed and count_tokens(text[packed[-1][0]:e]) <= max_tokens:
            packed[-1] = (packed[-1][0], e)
        else:
            packed.append((s, e))
    return [Chunk(index=i, start=s, end=e, first_page=document.page_at(s).number,
                  last_page=document.page_at(max(s, e - 1)).number, text=text[s:e])
            for i, (s, e) in enumerate(packed)]
