"""Load one input (bytes or a path) into a :class:`~fedinf.documents.model.Document`.

The kind is decided by the content's magic bytes first (``%PDF-``; PNG, JPEG, TIFF, BMP, WebP, GIF images), since
uploads often carry a wrong media type or none (a phone photo sent as ``application/octet-stream``); binary formats
no loader reads (Office/ZIP, HEIC, ...) raise :class:`~fedinf.errors.UnsupportedMediaType` (415). Text is then typed by
the declared media type, the file name's extension, then the content (JSON that parses, HTML tags), else plain
text. Images are read by OCR (``ocr`` engine; without one: ``needs_ocr``). Inputs larger than ``limits.max_bytes`` raise
:class:`~fedinf.errors.PayloadTooLarge` before any parsing. Text must be UTF-8 (a BOM is fine) or, failing that,
mostly printable single-byte text (read as cp1252); binary data raises :class:`~fedinf.errors.InvalidDocument`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedinf.documents.markup import html_to_text
from fedinf.documents.model import Document, DocumentKind
from fedinf.documents.ocr import OcrEngine, ocr_page
from fedinf.documents.pdf import pdf_pages
from fedinf.errors import InvalidDocument, NeedsOCR, PayloadTooLarge, UnsupportedMediaType

_EXT: dict[str, DocumentKind] = {
    ".pdf": "pdf", ".html": "html", ".htm": "html", ".xhtml": "html", ".json": "json",
    ".txt": "text", ".text": "text", ".md": "text", ".csv": "text", ".eml": "text",
}
_MEDIA: dict[str, DocumentKind] = {
    "application/pdf": "pdf", "text/html": "html", "application/xhtml+xml": "html",
    "application/json": "json", "text/plain": "text", "text/markdown": "text", "text/csv": "text",
}


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """Bounds on one input document."""

    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 500


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF87a", b"GIF89a")
_UNSUPPORTED_MAGIC = {b"PK\x03\x04": "a ZIP/Office file", b"\xd0\xcf\x11\xe0": "an old Office file",
                      b"\x1f\x8b": "a gzip archive", b"7z\xbc\xaf": "a 7z archive", b"Rar!": "a RAR archive"}
ACCEPTED = "PDF, PNG, JPEG, TIFF, BMP, WebP, HTML, JSON or text"


def sniff(data: bytes) -> DocumentKind | None:
    """The kind the magic bytes prove (pdf, image), None for text-like data; UnsupportedMediaType for binary formats
    no loader reads."""
    head = data[:16]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[4:8] == b"ftyp":
        raise UnsupportedMediaType(f"HEIC/HEIF or MP4 files are not supported; send {ACCEPTED}")
    for magic, what in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedMediaType(f"the document is {what}; send {ACCEPTED}")
    return None


def detect_kind(data: bytes, *, filename: str | None = None, media_type: str | None = None) -> DocumentKind:
    """Decide what kind of document ``data`` is (see the module docstring for the order)."""
    sniffed = sniff(data)
    if sniffed:
        return sniffed
    if media_type:
        kind = _MEDIA.get(media_type.split(";", 1)[0].strip().lower())
        if kind:
            return kind
    if filename:
        kind = _EXT.get(os.path.splitext(filename)[1].lower())
        if kind:
            return kind
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if head[:1] in (b"{", b"["):
        try:
            json.loads(data)
            return "json"
        except ValueError:
            pass
    low = head[:512].lower()
    if low.startswith((b"<!doctype html", b"<html")) or b"<body" in low:
        return "html"
    return "text"


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM allowed), else cp1252 if the bytes look like text; binary data is UnsupportedMediaType (415)."""
    if b"\x00" in data[:8192]:
        raise UnsupportedMediaType(f"the document is binary data of a kind fedinf does not read; send {ACCEPTED}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        bad = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
        if bad > max(2, len(text) // 100):
            raise InvalidDocument("the document is neither UTF-8 nor readable single-byte text") from None
        return text


def load_bytes(data: bytes, *, name: str = "document", filename: str | None = None, media_type: str | None = None,
               limits: DocumentLimits = DocumentLimits(), ocr: OcrEngine | None = None) -> Document:
    """Parse ``data`` into a Document; raise PayloadTooLarge / InvalidDocument / EncryptedDocument / NeedsOCR /
    UnsupportedMediaType. Images and image-only PDF pages are read with ``ocr`` (None: OCR off)."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the document is {len(data)} bytes; the limit is {limits.max_bytes}",
                              details={"bytes": len(data), "limit": limits.max_bytes})
    if not data:
        raise InvalidDocument("the document is empty")
    kind = detect_kind(data, filename=filename or name, media_type=media_type)
    common = {"name": name, "kind": kind, "sha256": sha256_hex(data), "size_bytes": len(data)}
    if kind == "pdf":
        if not data.lstrip()[:1024].count(b"%PDF-"):
            raise InvalidDocument("the document was declared a PDF but has no %PDF- header")
        layouts, warnings = pdf_pages(data, max_pages=limits.max_pages, ocr=ocr)
        return Document.from_layouts(layouts, warnings=tuple(warnings), **common)
    if kind == "image":
        return _load_image(data, ocr=ocr, limits=limits, common=common)
    text = decode_text(data)
    if kind == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidDocument(f"the JSON document does not parse: {exc.msg} at line {exc.lineno}") from None
        return Document.from_pages([json.dumps(value, indent=2, ensure_ascii=False)], data=value, **common)
    if kind == "html":
        text = html_to_text(text)
    else:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidDocument("the document has no text")
    pages = text.split("\f") if kind == "text" and "\f" in text else [text]
    return Document.from_pages(pages, **common)


def _load_image(data: bytes, *, ocr: OcrEngine | None, limits: DocumentLimits, common: dict[str, Any]) -> Document:
    """Every frame of the image (a multi-page TIFF has several) OCR'd into a page."""
    if ocr is None:
        raise NeedsOCR("the document is an image and OCR is off for this task (set the task's `ocr`)")
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        frames = [f.copy() for _, f in zip(range(limits.max_pages + 1), ImageSequence.Iterator(img))]
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidDocument(f"the image cannot be read ({type(exc).__name__})") from None
    if len(frames) > limits.max_pages:
        raise PayloadTooLarge(f"the image has more than {limits.max_pages} pages; the limit is {limits.max_pages}")
    if any(f.width * f.height > 80_000_000 for f in frames):
        raise PayloadTooLarge("the image is larger than 80 megapixels")
    layouts = [ocr_page(ocr, f, number=i + 1) for i, f in enumerate(frames)]
    if not any(sum(c.isalnum() for c in l.text) >= 4 for l in layouts):
        raise InvalidDocument("OCR found no text in the image", code="no_text_found")
    return Document.from_layouts([(l.text, l) for l in layouts], warnings=(f"read by OCR ({ocr.name})",), **common)


def load_path(path: str | os.PathLike[str], *, limits: DocumentLimits = DocumentLimits(),
              ocr: OcrEngine | None = None) -> Document:
    """Read a file and :func:`load_bytes` it (the size is checked before reading)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > limits.max_bytes:
            raise PayloadTooLarge(f"{p.name} is {size} bytes; the limit is {limits.max_bytes}",
                                  details={"bytes": size, "limit": limits.max_bytes})
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidDocument(f"{p.name}: cannot read file: {exc.strerror}") from None
    return load_bytes(data, name=p.name, filename=p.name, limits=limits, ocr=ocr)
