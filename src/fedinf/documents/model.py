"""The document model: text with page numbers and character offsets, so every extracted value can point back.

A :class:`Document` is the text of one input (PDF, HTML, JSON or plain text) as a single string ``text`` plus the
pages it came from. Page ``n`` (1-based) occupies ``text[page.start:page.end]``; pages are joined by
:data:`PAGE_BREAK`. A :class:`Span` is a half-open range of offsets into ``Document.text`` plus the page it lies on;
:meth:`Document.span` builds one and :meth:`Span.to_dict` also gives the offsets relative to the page.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal

from fedinf.documents.layout import PageLayout, shift, text_layout

DocumentKind = Literal["pdf", "image", "html", "json", "text"]
PAGE_BREAK = "\n\f\n"


@dataclass(frozen=True, slots=True)
class Page:
    """One page: 1-based ``number`` and its ``[start, end)`` offsets in the document text."""

    number: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Span:
    """Where a value came from: ``[start, end)`` in ``Document.text``, on page ``page`` (1-based)."""

    start: int
    end: int
    page: int
    page_offset: int = 0  # where the page starts in Document.text

    def to_dict(self) -> dict[str, int]:
        return {"page": self.page, "start": self.start, "end": self.end,
                "page_start": self.start - self.page_offset, "page_end": self.end - self.page_offset}


@dataclass(frozen=True, slots=True)
class Document:
    """The text of one input document, its pages and where it came from.

    ``sha256`` is the hash of the raw bytes (the identity batch runs use to skip already-done documents).
    ``data`` holds the parsed value for JSON documents. ``warnings`` are content-free notes (e.g. a page without a
    text layer).
    """

    name: str
    kind: DocumentKind
    text: str
    pages: tuple[Page, ...]
    sha256: str
    size_bytes: int
    data: Any = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    layout: tuple[PageLayout, ...] = field(default_factory=tuple)  # per page: lines, cells, words with boxes

    @classmethod
    def from_pages(cls, page_texts: list[str], **kw: Any) -> "Document":
        """Join ``page_texts`` with :data:`PAGE_BREAK`, recording each page's offsets; each page gets a text layout
        (one unit per character; see :func:`~fedinf.documents.layout.text_layout`)."""
        pages, parts, pos = [], [], 0
        for i, t in enumerate(page_texts):
            if i:
                parts.append(PAGE_BREAK)
                pos += len(PAGE_BREAK)
            pages.append(Page(number=i + 1, start=pos, end=pos + len(t)))
            parts.append(t)
            pos += len(t)
        layout = tuple(text_layout(t, number=p.number, offset=p.start) for t, p in zip(page_texts, pages))
        return cls(text="".join(parts), pages=tuple(pages), layout=layout, **kw)

    @classmethod
    def from_layouts(cls, pages: list[tuple[str, PageLayout]], **kw: Any) -> "Document":
        """Pages with their text and layout (PDF characters, OCR words; word offsets relative to the page text);
        the offsets become document offsets."""
        doc = cls.from_pages([t for t, _ in pages], **kw)
        shifted = tuple(shift(l, p.start) for (_, l), p in zip(pages, doc.pages))
        return cls(text=doc.text, pages=doc.pages, layout=shifted, **kw)

    def page_at(self, offset: int) -> Page:
        """The page holding character ``offset`` (offsets in a page break belong to the page before)."""
        starts = [p.start for p in self.pages]
        i = max(0, bisect.bisect_right(starts, offset) - 1)
        return self.pages[i]

    def span(self, start: int, end: int) -> Span:
        page = self.page_at(start)
        return Span(start=start, end=end, page=page.number, page_offset=page.start)

    def page_text(self, number: int) -> str:
        p = self.pages[number - 1]
        return self.text[p.start:p.end]

    def summary(self) -> dict[str, Any]:
        """Content-free metadata (safe for logs and results)."""
        return {"name": self.name, "kind": self.kind, "pages": len(self.pages), "chars": len(self.text),
                "bytes": self.size_bytes, "sha256": self.sha256, "warnings": list(self.warnings),
                "text_source": sorted({l.source for l in self.layout}) if self.layout else []}
