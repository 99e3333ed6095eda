"""What every extractor returns: a value, where it came from, and how sure the heuristic is.

Extractors are deterministic functions ``(Document) -> Found | None`` (or a list of candidates). A :class:`Found`
carries the normalised ``value`` (ISO date string, decimal string, IBAN without spaces, ...), the ``raw`` text it was
read from, its :class:`~fedinf.documents.Span`, a ``score`` in [0, 1] and the ``evidence`` (e.g. the label next to it:
``"label:invoice date"``). Content-bearing; never log it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fedinf.documents import Document, Span


@dataclass(frozen=True, slots=True)
class Found:
    value: Any
    raw: str
    span: Span
    score: float = 0.5
    evidence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "raw": self.raw, "span": self.span.to_dict(), "score": round(self.score, 3),
                "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the document text with its offsets and its index among all lines."""

    index: int
    start: int
    end: int
    text: str


def lines(doc: Document) -> list[Line]:
    out, pos = [], 0
    for i, text in enumerate(doc.text.split("\n")):
        out.append(Line(index=i, start=pos, end=pos + len(text), text=text))
        pos += len(text) + 1
    return out


def found(doc: Document, value: Any, start: int, end: int, *, score: float, evidence: str,
          **extra: Any) -> Found:
    return Found(value=value, raw=doc.text[start:end], span=doc.span(start, end), score=score, evidence=evidence,
                 extra=extra)


def label_pattern(labels: list[str]) -> re.Pattern[str]:
    """A case-insensitive regex matching any of ``labels`` (spaces match any run of spaces or hyphens)."""
    alts = sorted((re.escape(l).replace(r"\ ", r"[\s\-]*") for l in labels), key=len, reverse=True)
    return re.compile(r"(?<![A-Za-zÀ-ÿ])(?:" + "|".join(alts) + r")(?![A-Za-zÀ-ÿ])", re.IGNORECASE)


def near_lines(all_lines: list[Line], i: int, after: int) -> Iterator[Line]:
    """Line ``i`` then up to ``after`` following non-blank lines."""
    yield all_lines[i]
    n = 0
    for line in all_lines[i + 1:]:
        if n >= after:
            return
        if line.text.strip():
            n += 1
            yield line


_LABEL_ONLY = re.compile(r"^\s*[^\d\n]{2,40}[:#]\s*$")


def block_value(all_lines: list[Line], i: int) -> Line | None:
    """Label/value columns serialised as a block of labels then a block of values (``Invoice Number:`` /
    ``Invoice Date:`` / ``INV0478`` / ``2023-11-13``): the value line at the label's position, or None."""
    start = i
    while start > 0 and _LABEL_ONLY.match(all_lines[start - 1].text):
        start -= 1
    end = i
    while end + 1 < len(all_lines) and _LABEL_ONLY.match(all_lines[end + 1].text):
        end += 1
    if not _LABEL_ONLY.match(all_lines[i].text):
        return None
    values = [l for l in all_lines[end + 1:end + 1 + (end - start + 1)] if l.text.strip()]
    if len(values) != end - start + 1 or any(_LABEL_ONLY.match(v.text) for v in values):
        return None
    return values[i - start]
