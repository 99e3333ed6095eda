"""Load one input (bytes or a path) into a :class:`~fedinf.documents.model.Document`.

The kind is taken from the declared media type, then the file name's extension, then the content itself (``%PDF-``
magic, JSON that parses, HTML tags), else plain text. Inputs larger than ``limits.max_bytes`` raise
:class:`~fedinf.errors.PayloadTooLarge` before any parsing. Text must be UTF-8 (a BOM is fine) or, failing that,
mostly printable single-byte text (read as cp1252); binary data raises :class:`~fedinf.errors.InvalidDocument`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fedinf.documents.markup import html_to_text
from fedinf.documents.model import Document, DocumentKind
from fedinf.documents.pdf import pdf_pages
from fedinf.errors import InvalidDocument, PayloadTooLarge

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


def detect_kind(data: bytes, *, filename: str | None = None, media_type: str | None = None) -> DocumentKind:
    """Decide what kind of document ``data`` is (see the module docstring for the order)."""
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
    """UTF-8 (BOM allowed), else cp1252 if the bytes look like text; binary data is an InvalidDocument."""
    if b"\x00" in data[:8192]:
        raise InvalidDocument("the document looks binary, not text (NUL bytes); send a PDF, HTML, JSON or text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        bad = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
        if bad > max(2, len(text) // 100):
            raise InvalidDocument("the document is neither UTF-8 nor readable single-byte text") from None
        return text


def load_bytes(data: bytes, *, name: str = "document", filename: str | None = None, media_type: str | None = None,
               limits: DocumentLimits = DocumentLimits()) -> Document:
    """Parse ``data`` into a Document; raise PayloadTooLarge / InvalidDocument / EncryptedDocument / NeedsOCR."""
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
        pages, warnings = pdf_pages(data, max_pages=limits.max_pages)
        return Document.from_pages(pages, warnings=tuple(warnings), **common)
    text = decode_text(data)
    if kind == "json":
        try:
            value = json.loads(text)
        except ValueError as exc:
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


def load_path(path: str | os.PathLike[str], *, limits: DocumentLimits = DocumentLimits()) -> Document:
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
    return load_bytes(data, name=p.name, filename=p.name, limits=limits)
