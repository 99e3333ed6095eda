"""Text normalisation before detection, with a map back to the original offsets.

Obfuscated values must still be found: ``4111\u200b1111...`` (zero-width characters), ``４１１１`` (fullwidth digits),
``jоhn@example.com`` with a Cyrillic ``о``, ``٤١١١`` (Arabic-Indic digits). :class:`Normalizer` rewrites a text so
that the detectors only ever see plain ASCII-like forms:

- zero-width and bidi-control characters and soft hyphens are removed;
- every decimal digit of any script becomes its ASCII digit;
- Latin look-alikes from Cyrillic and Greek (confusables) and dash/quote variants become ASCII;
- everything else goes through Unicode NFKC (fullwidth forms, ligatures, circled letters, NBSP, ...).

JSON string escapes (``\\u0034``, ``\\n``) are decoded as well (tool-call arguments are JSON text).

ASCII text without a backslash is returned as is (the common case costs one ``str.isascii()``). Only the non-ASCII
runs and escapes are rewritten, character by character, and each rewritten piece is recorded as a segment so that a
span in the normalised text maps back to the span of the original text that produced it
(:meth:`Normalized.to_original`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

_REMOVED = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b"
    "\u206c\u206d\u206e\u206f\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a"
    "\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f\ufeff\uffa0"
)

# Confusables that NFKC leaves alone: Cyrillic/Greek letters that look like Latin ones, dashes, quotes, '@'-likes.
_CONFUSABLES: dict[str, str] = {
    **dict(zip("АВЕЅІЈКМНОРСТХУаеорсхуіјѕԁһԛԝӏ", "ABESIJKMHOPCTXYaeopcxyijsdhqwl")),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧονρτυχ", "ABEZHIKMNOPTYXovptux")),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
    "\u2024": ".", "\u3002": ".", "\uff61": ".", "\u2027": ".", "\u00b7": ".",
    "\u0251": "a", "\u0261": "g", "\u01c3": "!", "\u2044": "/", "\u2215": "/",
}

_SPECIAL = re.compile(r"[^\x00-\x7f]+|\\u[0-9a-fA-F]{4}|\\[nrtbf\"/]")
_JSON_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": " ", "f": " ", '"': '"', "/": "/"}


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalised text and, when it differs from the original, the segments that map it back.

    ``segments`` holds ``(norm_start, norm_end, orig_start, orig_end, is_run)`` tuples sorted by ``norm_start``;
    a run maps offsets one to one, a rewritten character maps its whole output to its one input character.
    Removed characters have no segment: a span that straddles them still covers them in the original.
    """

    text: str
    original: str
    segments: tuple[tuple[int, int, int, int, bool], ...] | None = None
    starts: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the half-open span ``[start, end)`` of :attr:`text` to the span of :attr:`original`."""
        if self.segments is None or self.starts is None:
            return start, end
        return self._map(start, is_end=False), self._map(end - 1, is_end=True)

    def _map(self, pos: int, *, is_end: bool) -> int:
        assert self.segments is not None and self.starts is not None
        i = max(bisect_right(self.starts, pos) - 1, 0)
        n0, _n1, o0, o1, is_run = self.segments[i]
        if is_run:
            return o0 + (pos - n0) + (1 if is_end else 0)
        return o1 if is_end else o0


class Normalizer:
    """Builds :class:`Normalized` texts; caches per-character rewrites (one instance per classifier)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def char(self, c: str) -> str:
        """The normalised form of one non-ASCII character ('' when it is removed)."""
        r = self._cache.get(c)
        if r is None:
            r = self._rewrite(c)
            if len(self._cache) < 65536:
                self._cache[c] = r
        return r

    @staticmethod
    def _rewrite(c: str) -> str:
        if c in _REMOVED:
            return ""
        if c in _CONFUSABLES:
            return _CONFUSABLES[c]
        cat = unicodedata.category(c)
        if cat == "Nd":
            return str(unicodedata.decimal(c))
        if cat == "Cf":  # other invisible format characters
            return ""
        if cat == "Zs":
            return " "
        r = unicodedata.normalize("NFKC", c)
        if len(r) == 1 and r in _CONFUSABLES:
            return _CONFUSABLES[r]
        return r

    def normalize(self, text: str) -> Normalized:
        """Normalise ``text``; ASCII text without backslash escapes is returned unchanged without a segment map.

        JSON string escapes (``\\u0034``, ``\\n``) are decoded too: tool-call arguments arrive as JSON text, and an
        escaped value (or an escaped newline glued to a number) must not hide from the detectors."""
        if text.isascii() and "\\" not in text:
            return Normalized(text, text)
        out: list[str] = []
        segs: list[tuple[int, int, int, int, bool]] = []
        pos = npos = 0
        changed = False
        for m in _SPECIAL.finditer(text):
            s = m.start()
            if s > pos:
                out.append(text[pos:s])
                segs.append((npos, npos + s - pos, pos, s, True))
                npos += s - pos
            tok = m.group()
            if tok[0] == "\\":
                c = chr(int(tok[2:], 16)) if tok[1] == "u" else _JSON_ESCAPES[tok[1]]
                r = c if c.isascii() else self.char(c)
                changed = True
                if r:
                    out.append(r)
                    segs.append((npos, npos + len(r), s, m.end(), False))
                    npos += len(r)
                pos = m.end()
                continue
            for i in range(s, m.end()):
                c = text[i]
                r = self.char(c)
                if r != c:
                    changed = True
                if r:
                    out.append(r)
                    segs.append((npos, npos + len(r), i, i + 1, len(r) == 1))
                    npos += len(r)
            pos = m.end()
        if not changed:
            return Normalized(text, text)
        if pos < len(text):
            out.append(text[pos:])
            segs.append((npos, npos + len(text) - pos, pos, len(text), True))
        return Normalized("".join(out), text, tuple(segs), tuple(s[0] for s in segs))
