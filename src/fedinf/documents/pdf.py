"""PDF text extraction with pypdfium2 (Apache-2.0/BSD, PDFium): text per page, clear errors for what cannot be read.

- corrupt or truncated -> :class:`~fedinf.errors.InvalidDocument` (``invalid_document``)
- password-protected -> :class:`~fedinf.errors.EncryptedDocument` (``encrypted_document``)
- pages without a text layer (scanned, image-only, or fonts without a Unicode map so the "text" is a few control
  characters) are rendered and OCR'd when an OCR engine is given (a warning names them); with OCR off, no text on
  any page -> :class:`~fedinf.errors.NeedsOCR` (``needs_ocr``), some pages -> a warning naming them

Text comes from PDFium's characters and their boxes (:func:`_page_layout`), written out line by line by
:func:`~fedinf.documents.layout.assemble`, so every word's box and offsets are known.

PDFium keeps process-global state and is not thread-safe, so every call into it holds :data:`_PDFIUM_LOCK` (a lock
that mirrors that process-global resource; it holds no data).
"""

from __future__ import annotations

import threading
from typing import Any

from fedinf.documents.layout import PageLayout, Word, assemble
from fedinf.documents.ocr import OcrEngine, ocr_page
from fedinf.errors import ConfigError, EncryptedDocument, InvalidDocument, NeedsOCR, PayloadTooLarge

_PDFIUM_LOCK = threading.Lock()
MIN_ALNUM_PER_PAGE = 4
OCR_RENDER_SIDE = 2200  # image-only pages are rendered with this many pixels on the long side for OCR


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError:  # pragma: no cover - the `pdf` extra is installed by default
        raise ConfigError("PDF support needs pypdfium2: pip install 'fedinf[pdf]'") from None
    return pypdfium2


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    # PDFium marks soft hyphens and some line ends with control characters
    return text.replace("\ufffe", "-").replace("\x02", "-")


def pdf_pages(data: bytes, *, max_pages: int,
              ocr: OcrEngine | None = None) -> tuple[list[tuple[str, PageLayout]], list[str]]:
    """Return ``([(page_text, page_layout)], warnings)`` for a PDF (word offsets relative to the page text); raise
    the errors above. Pages without a text layer are OCR'd with ``ocr`` when given (their text is written from the
    OCR layout); without it they are empty (and all empty is NeedsOCR)."""
    pdfium = _pdfium()
    layouts: list[tuple[str, PageLayout]] = []
    images: dict[int, Any] = {}
    with _PDFIUM_LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
                raise EncryptedDocument("the PDF is password-protected; decrypt it before sending it") from None
            raise InvalidDocument(f"the PDF cannot be read ({_reason(exc)})") from None
        try:
            n = len(doc)
            if n == 0:
                raise InvalidDocument("the PDF has no pages")
            if n > max_pages:
                raise PayloadTooLarge(f"the PDF has {n} pages; the limit is {max_pages}")
            for i in range(n):
                page = doc[i]
                text, layout = _page_layout(pdfium, page, i + 1)
                if not _has_text(text) and ocr is not None:
                    w, h = page.get_size()
                    images[i] = page.render(scale=OCR_RENDER_SIDE / max(w, h, 1)).to_pil()
                layouts.append((text, layout))
                page.close()
        finally:
            doc.close()
    for i, image in images.items():
        assert ocr is not None
        scanned = ocr_page(ocr, image, number=i + 1)
        layouts[i] = (scanned.text, scanned)
    out = layouts
    empty = [l.number for t, l in out if not _has_text(t)]
    if len(empty) == len(out):
        raise NeedsOCR(f"the PDF has no text layer on any of its {n} page(s) (image-only or scanned) and OCR is "
                       "off for this task (set the task's `ocr`, or OCR it first)", details={"pages": n})
    warnings = [f"page(s) {_ranges(empty)} have no text layer (image-only?)"] if empty else []
    if images:
        warnings.append(f"page(s) {_ranges(sorted(i + 1 for i in images))} were read by OCR ({ocr.name})"
                        if ocr else "")
    return out, [w for w in warnings if w]


def _page_layout(pdfium: Any, page: Any, number: int) -> tuple[str, PageLayout]:
    """The page text in PDFium's order (what the text extractors read) and its layout: words from PDFium's
    characters and their (loose, font-height) boxes, pointing into that text; generated characters and spaces break
    words, and so does a jump back or down."""
    raw = pdfium.raw
    textpage = page.get_textpage()
    parts: list[str] = []
    pos = 0
    try:
        width, height = page.get_size()
        words: list[Word] = []
        cur: list[tuple[str, float, float, float, float, int]] = []

        def flush() -> None:
            if cur:
                words.append(Word("".join(c[0] for c in cur), min(c[1] for c in cur), min(c[2] for c in cur),
                                  max(c[3] for c in cur), max(c[4] for c in cur), 1.0, cur[0][5],
                                  cur[-1][5] + len(cur[-1][0])))
                cur.clear()

        n = textpage.count_chars()
        for i in range(n):
            cp = raw.FPDFText_GetUnicode(textpage.raw, i)
            ch = chr(cp) if 0 < cp < 0x110000 else ""
            if ch == "\r":
                nxt = raw.FPDFText_GetUnicode(textpage.raw, i + 1) if i + 1 < n else 0
                ch = "" if nxt == 10 else "\n"
            ch = _clean(ch)
            at = pos
            parts.append(ch)
            pos += len(ch)
            if not ch or ch.isspace() or raw.FPDFText_IsGenerated(textpage.raw, i) == 1:
                flush()
                continue
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            x0, y0, x1, y1 = left, height - top, right, height - bottom
            if cur:
                _, px0, py0, px1, py1, _ = cur[-1]
                h = max(py1 - py0, 1e-3)
                if abs((y0 + y1) / 2 - (py0 + py1) / 2) > 0.4 * h or x0 < px0 or x0 - px1 > 0.2 * h:
                    flush()
            cur.append((ch, x0, y0, x1, y1, at))
        flush()
    finally:
        textpage.close()
    return "".join(parts), assemble(words, number=number, width=float(width), height=float(height), source="pdf",
                                    keep_offsets=True)


def _has_text(text: str) -> bool:
    """A page has a usable text layer when it holds at least a few letters or digits; fonts without a Unicode map
    give a handful of control characters and punctuation instead, which is as good as no text."""
    return sum(1 for c in text if c.isalnum()) >= MIN_ALNUM_PER_PAGE


def _reason(exc: Exception) -> str:
    msg = str(exc)
    return msg.split("(PDFium: ", 1)[1].rstrip(").") if "(PDFium: " in msg else "unreadable"


def _ranges(nums: list[int]) -> str:
    out: list[str] = []
    start = prev = nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)
