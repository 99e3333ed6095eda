"""PDF text extraction with pypdfium2 (Apache-2.0/BSD, PDFium): text per page, clear errors for what cannot be read.

- corrupt or truncated -> :class:`~fedinf.errors.InvalidDocument` (``invalid_document``)
- password-protected -> :class:`~fedinf.errors.EncryptedDocument` (``encrypted_document``)
- no text layer on any page (scanned, image-only, or fonts without a Unicode map so the "text" is a few control
  characters) -> :class:`~fedinf.errors.NeedsOCR` (``needs_ocr``)
- some pages without text -> a warning on the document, naming the pages

PDFium keeps process-global state and is not thread-safe, so every call into it holds :data:`_PDFIUM_LOCK` (a lock
that mirrors that process-global resource; it holds no data).
"""

from __future__ import annotations

import threading
from typing import Any

from fedinf.errors import ConfigError, EncryptedDocument, InvalidDocument, NeedsOCR, PayloadTooLarge

_PDFIUM_LOCK = threading.Lock()
MIN_ALNUM_PER_PAGE = 4


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


def pdf_pages(data: bytes, *, max_pages: int) -> tuple[list[str], list[str]]:
    """Return ``(page_texts, warnings)`` for a PDF; raise the errors above."""
    pdfium = _pdfium()
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
            texts = []
            for i in range(n):
                page = doc[i]
                textpage = page.get_textpage()
                texts.append(_clean(textpage.get_text_range()))
                textpage.close()
                page.close()
        finally:
            doc.close()
    empty = [i + 1 for i, t in enumerate(texts) if not _has_text(t)]
    if len(empty) == len(texts):
        raise NeedsOCR(f"the PDF has no text layer on any of its {n} page(s) (image-only or scanned): "
                       "run OCR on it first", details={"pages": n})
    warnings = [f"page(s) {_ranges(empty)} have no text layer (image-only?)"] if empty else []
    return texts, warnings


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
