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


def pdf_pages(data: bytes, *, max_pages: int, ocr: OcrEngine | None = None) -> tuple[list[PageLayout], list[str]]:
    """Return ``(page_layouts, warnings)`` for a PDF (page-relative word offsets); raise the errors above. Pages
    without a text layer are OCR'd with ``ocr`` when given; without it they are empty (and all empty is NeedsOCR)."""
    pdfium = _pdfium()
    layouts: list[PageLayout | None] = []
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
                layout = _page_layout(pdfium, page, i + 1)
                if not _has_text(layout.text) and ocr is not None:
                    w, h = page.get_size()
                    images[i] = page.render(scale=OCR_RENDER_SIDE / max(w, h, 1)).to_pil()
                layouts.append(layout)
                page.close()
        finally:
            doc.close()
    for i, image in images.items():
        assert ocr is not None
        layouts[i] = ocr_page(ocr, image, number=i + 1)
    out = [l for l in layouts if l is not None]
    empty = [l.number for l in out if not _has_text(l.text)]
    if len(empty) == len(out):
        raise NeedsOCR(f"the PDF has no text layer on any of its {n} page(s) (image-only or scanned) and OCR is "
                       "off for this task (set the task's `ocr`, or OCR it first)", details={"pages": n})
    warnings = [f"page(s) {_ranges(empty)} have no text layer (image-only?)"] if empty else []
    if images:
        warnings.append(f"page(s) {_ranges(sorted(i + 1 for i in images))} were read by OCR ({ocr.name})"
                        if ocr else "")
    return out, [w for w in warnings if w]


def _page_layout(pdfium: Any, page: Any, number: int) -> PageLayout:
    """Words from PDFium's characters and their (loose, font-height) boxes; generated characters and spaces break
    words, and so does a jump back or down."""
    raw = pdfium.raw
    textpage = page.get_textpage()
    try:
        width, height = page.get_size()
        words: list[Word] = []
        cur: list[tuple[str, float, float, float, float]] = []

        def flush() -> None:
            if cur:
                words.append(Word("".join(c[0] for c in cur), min(c[1] for c in cur), min(c[2] for c in cur),
                                  max(c[3] for c in cur), max(c[4] for c in cur)))
                cur.clear()

        for i in range(textpage.count_chars()):
            cp = raw.FPDFText_GetUnicode(textpage.raw, i)
            ch = _clean(chr(cp)) if 0 < cp < 0x110000 else ""
            if not ch or ch.isspace() or raw.FPDFText_IsGenerated(textpage.raw, i) == 1:
                flush()
                continue
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            x0, y0, x1, y1 = left, height - top, right, height - bottom
            if cur:
                _, px0, py0, px1, py1 = cur[-1]
                h = max(py1 - py0, 1e-3)
                if abs((y0 + y1) / 2 - (py0 + py1) / 2) > 0.4 * h or x0 < px0 or x0 - px1 > 0.2 * h:
                    flush()
            cur.append((ch, x0, y0, x1, y1))
        flush()
    finally:
        textpage.close()
    return assemble(words, number=number, width=float(width), height=float(height), source="pdf")


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
    for n in nums[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)
