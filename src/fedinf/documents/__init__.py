"""Documents: PDF, HTML, JSON and plain text to text with page numbers and character offsets.

    doc = load_path("bill.pdf", limits=DocumentLimits(max_bytes=10_000_000))
    doc.text, doc.pages, doc.span(start, end).to_dict()
    split_document(doc, max_tokens=2000)

Errors (all :class:`fedinf.errors.RequestError`): ``payload_too_large``, ``invalid_document``,
``encrypted_document``, ``needs_ocr``.
"""

from fedinf.documents.loader import DocumentLimits, detect_kind, load_bytes, load_path, sha256_hex
from fedinf.documents.markup import html_to_text
from fedinf.documents.model import PAGE_BREAK, Document, DocumentKind, Page, Span
from fedinf.documents.split import Chunk, approx_tokens, split_document

__all__ = [
    "PAGE_BREAK", "Chunk", "Document", "DocumentKind", "DocumentLimits", "Page", "Span", "approx_tokens",
    "detect_kind", "html_to_text", "load_bytes", "load_path", "sha256_hex", "split_document",
]
