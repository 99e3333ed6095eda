"""Obvious encodings, decoded before detection: base64 and hex blobs, URL-encoded runs.

A value wrapped in an encoding (``NDExMSAxMTExIDExMTEgMTExMQ==``, ``34313131...``, ``4111%201111...``) must be
classified like the value itself. :func:`decoded_blobs` finds candidate blobs in a text - base64 (standard and
URL-safe alphabets) of at least :data:`MIN_BASE64` characters, hex of at least :data:`MIN_HEX` digits, and
whitespace-free runs holding ``%XX`` escapes - and yields each one that decodes to readable text, with its span in
the original text. The classifier detects entities in the decoded text and reports each as one entity over the
whole blob, so pseudonymization replaces the blob as a whole.

Binary payloads (images, compressed data, keys) do not decode to readable text and are skipped; so are ordinary
words and identifiers that happen to use the base64 alphabet. Decoding is bounded: blobs up to
:data:`MAX_BLOB` characters, and nested encodings up to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import unquote

MIN_BASE64 = 16  # 12 bytes: an SSN with dashes is 11 characters
MIN_HEX = 16  # 8 bytes
MAX_BLOB = 65_536
MAX_DEPTH = 2

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{%d,}={0,2}(?![A-Za-z0-9+/=_\-])" % MIN_BASE64)
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){%d,}(?![0-9A-Za-z])" % (MIN_HEX // 2))
_URL = re.compile(r"[^\s%]*(?:%[0-9A-Fa-f]{2}[^\s%]*)+")
# the pre-check: in a text's UTF-8 form each byte of the base64/hex alphabet becomes b"a", any other b"."; every
# match of _BASE64 and _HEX is a run of such characters, so a text without a long enough run of b"a" has no blob
_MARKS = bytes(ord("a") if chr(b) in "+/_-" or chr(b).isascii() and chr(b).isalnum() else ord(".") for b in range(256))
_ALPHABET_RUN = b"a" * min(MIN_BASE64, MIN_HEX)
_NON_SPACE = re.compile(r"\S*")  # \s is what str.split() splits at (Python's Unicode whitespace)


class Blob(NamedTuple):
    """An encoded run ``text[start:end]`` and the text it decodes to. ``offsets`` (URL encoding only) maps each
    position of ``decoded`` (and its end) to a position in the original text, so entities keep exact spans."""

    start: int
    end: int
    decoded: str
    offsets: tuple[int, ...] | None = None


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _unquote(text: str, base: int) -> tuple[str, tuple[int, ...]]:
    """URL-decode ``text`` (``+`` is a space), with the original offset (``base`` + index) of every decoded
    character and of the end."""
    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _ESCAPES.finditer(text):
        for i in range(pos, m.start()):
            out.append(" " if text[i] == "+" else text[i])
            offsets.append(base + i)
        decoded = unquote(m.group())
        step = (m.end() - m.start()) / max(1, len(decoded))
        for k, c in enumerate(decoded):
            out.append(c)
            offsets.append(base + m.start() + int(k * step))
        pos = m.end()
    for i in range(pos, len(text)):
        out.append(" " if text[i] == "+" else text[i])
        offsets.append(base + i)
    offsets.append(base + len(text))
    return "".join(out), tuple(offsets)


def _readable(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 and nearly all printable (binary payloads are not)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    return text if printable >= 0.95 * len(text) else None


def _from_base64(blob: str) -> str | None:
    if not any(c.isdigit() or c in "+/=_-" for c in blob) and blob.isalpha() and (blob.islower() or blob.isupper()):
        return None  # a long plain word, not base64
    s = blob.rstrip("=")
    if len(s) % 4 == 1:
        return None
    padded = s + "=" * (-len(s) % 4)
    try:
        data = base64.urlsafe_b64decode(padded) if ("-" in s or "_" in s) else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(data)


def _from_hex(blob: str) -> str | None:
    if blob.isdigit():
        return None  # a long number (a card, an account) is detected as a number, not decoded
    try:
        return _readable(bytes.fromhex(blob))
    except ValueError:
        return None


def _non_space_end(text: str, pos: int) -> int:
    """Where the run of non-whitespace characters starting at ``pos`` ends."""
    m = _NON_SPACE.match(text, pos)
    assert m is not None  # \S* matches everywhere
    return m.end()


def _long_tokens(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the whitespace-separated tokens of ``text`` (as ``str.split()`` cuts them) that may hold a
    blob: those with at least :data:`MIN_BASE64` (or :data:`MIN_HEX`) characters of the base64/hex alphabet in a row.
    Plain prose has none, and finding that out is one ``encode``, one ``translate`` and one ``find`` (all in C)."""
    data = text.encode("utf-8", "surrogatepass")
    marks = data.translate(_MARKS)
    i = marks.find(_ALPHABET_RUN)
    if i < 0:
        return
    n, rev = len(text), text[::-1]
    char = byte = 0  # a character offset of the text and the offset of its first byte in `data`
    while i >= 0:
        char += len(data[byte:i].decode("utf-8", "surrogatepass"))  # i is an ASCII byte: a character boundary
        start = char - (_non_space_end(rev, n - char) - (n - char))  # backwards: forwards in the reversed text
        end = _non_space_end(text, char)
        yield start, end
        byte, char = i + len(text[char:end].encode("utf-8", "surrogatepass")), end
        i = marks.find(_ALPHABET_RUN, byte)


def decoded_blobs(text: str) -> Iterator[Blob]:
    """Every encoded run of ``text`` that decodes to readable text, with its span (see the module docstring)."""
    if len(text) < 6:
        return
    if "%" in text and _ESCAPE.search(text) is not None:  # every URL-encoded run holds a %XX escape
        for m in _URL.finditer(text):
            if m.end() - m.start() <= MAX_BLOB:
                decoded, offsets = _unquote(m.group(), m.start())
                yield Blob(m.start(), m.end(), decoded, offsets)
    for start, pos in _long_tokens(text):  # blobs have no spaces: only long words are scanned (cheap on prose)
        if pos - start < MIN_BASE64 or pos - start > MAX_BLOB:
            continue
        for rx, decode in ((_HEX, _from_hex), (_BASE64, _from_base64)):
            for m in rx.finditer(text, start, pos):
                text_of = decode(m.group())
                if text_of is not None:
                    yield Blob(m.start(), m.end(), text_of)
