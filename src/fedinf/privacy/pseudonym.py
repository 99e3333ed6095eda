"""Pseudonymization: replace detected values with consistent placeholders, and restore them in the answer.

One :class:`Pseudonymizer` per request. The same value (compared in normalised form, e.g. a card number with or
without spaces) gets the same placeholder across all messages (``<EMAIL_ADDRESS_1>``, ``<PERSON_2>``). The mapping
lives only in this object: it is never logged, never serialised (pickling raises), and its ``repr`` shows counts only.
:class:`StreamRestorer` restores a streamed answer chunk by chunk, holding back a possible placeholder prefix
(``"<EMAIL_ADD"``) until the next chunk completes or breaks it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from fedinf.data_class import DataClass
from fedinf.errors import PolicyViolation
from fedinf.privacy.classifier import Classifier, Entity

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
_PARTIAL = re.compile(r"<[A-Z0-9_]*")
_NUMERIC = frozenset({"CREDIT_CARD", "IBAN_CODE", "PHONE_NUMBER", "US_SSN", "BANK_ACCOUNT", "US_ITIN", "UK_NHS",
                      "IN_AADHAAR", "CA_SIN", "US_BANK_ROUTING", "NPI"})
_SEPARATORS = re.compile(r"[\s\-.()/]")


class Pseudonymizer:
    """Per-request placeholder mapping. ``types`` limits which entity types are replaced (default: all found)."""

    def __init__(self, classifier: Classifier, *, types: Collection[str] | None = None) -> None:
        self._classifier = classifier
        self._types = frozenset(types) if types is not None else None
        self._by_key: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._maxlen = 0

    def __repr__(self) -> str:
        return f"<Pseudonymizer placeholders={len(self._values)}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Pseudonymizer holds personal data and is never serialised")

    def __len__(self) -> int:
        """Number of placeholders issued so far."""
        return len(self._values)

    def __bool__(self) -> bool:
        return True  # an object with no placeholder yet is still a pseudonymizer (never falsy)

    def _key(self, etype: str, value: str) -> tuple[str, str]:
        norm = self._classifier._normalizer.normalize(value).text.casefold()
        if etype in _NUMERIC:
            norm = _SEPARATORS.sub("", norm)
        return etype, " ".join(norm.split())

    def _placeholder(self, etype: str, value: str) -> str:
        key = self._key(etype, value)
        ph = self._by_key.get(key)
        if ph is None:
            n = self._counters.get(etype, 0) + 1
            self._counters[etype] = n
            ph = f"<{etype}_{n}>"
            self._by_key[key] = ph
            self._values[ph] = value
            self._maxlen = max(self._maxlen, len(ph))
        return ph

    def _reserve_existing(self, texts: Sequence[str]) -> None:
        """Placeholders already written in the input are never reused, so restoring cannot invent values."""
        for t in texts:
            for m in _PLACEHOLDER.finditer(t):
                etype, n = m.group(1), int(m.group(2))
                if f"<{etype}_{n}>" not in self._values:
                    self._counters[etype] = max(self._counters.get(etype, 0), n)

    def pseudonymize(self, texts: Sequence[str], entities: Sequence[Entity] | None = None) -> list[str]:
        """Texts with every entity replaced by its placeholder. Pass the ``entities`` of an earlier
        :meth:`Classifier.classify` over the same ``texts`` to skip detecting twice."""
        texts = list(texts)
        if entities is None:
            entities = self._classifier.detect(texts)
        self._reserve_existing(texts)
        by_source: dict[int, list[Entity]] = {}
        for e in entities:
            if self._types is None or e.type in self._types:
                by_source.setdefault(e.source, []).append(e)
        out = []
        for i, text in enumerate(texts):
            parts, pos = [], 0
            for e in sorted(by_source.get(i, ()), key=lambda e: e.start):
                if e.start < pos:
                    continue
                parts.append(text[pos:e.start])
                parts.append(self._placeholder(e.type, text[e.start:e.end]))
                pos = e.end
            parts.append(text[pos:])
            out.append("".join(parts))
        return out

    def pseudonymize_checked(self, texts: Sequence[str], *, clearance: DataClass,
                             entities: Sequence[Entity] | None = None) -> list[str]:
        """:meth:`pseudonymize`, then classify the rewritten texts again: if anything they still hold puts them above
        ``clearance`` (the receiving zone's plain clearance), raise :class:`~fedinf.errors.PolicyViolation` (code
        ``pseudonymization_insufficient``; the message names classes and entity types, never values)."""
        out = self.pseudonymize(texts, entities)
        rest = self._classifier.detect(out)
        level = self._classifier.entity_class(rest)
        if level > clearance:
            types = sorted({e.type for e in rest if e.score >= self._classifier.class_min_score
                            and self._classifier.class_of(e.type) > clearance})
            raise PolicyViolation(
                f"after pseudonymization the request is still {level.label}, above the zone's clearance "
                f"{clearance.label} (entity types left: {', '.join(types) or 'combination'}); it is not sent",
                code="pseudonymization_insufficient", details={"remaining_class": level.label, "types": types})
        return out

    def restore(self, text: str) -> str:
        """Replace every known placeholder in ``text`` by its original value; unknown ones stay as they are."""
        if not self._values or "<" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._values.get(m.group(0), m.group(0)), text)

    def stream(self) -> "StreamRestorer":
        """A restorer for one streamed answer (one per choice)."""
        return StreamRestorer(self)


class StreamRestorer:
    """Restores placeholders in a stream of text deltas, including placeholders split across deltas."""

    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self._p = pseudonymizer
        self._buf = ""

    def feed(self, delta: str) -> str:
        """Text that is safe to emit now (restored); a possible placeholder prefix is held back."""
        buf = self._buf + delta
        cut = len(buf)
        i = buf.rfind("<")
        if i >= 0:
            tail = buf[i:]
            if len(tail) <= max(self._p._maxlen, 2) and _PARTIAL.fullmatch(tail):
                cut = i
        self._buf = buf[cut:]
        return self._p.restore(buf[:cut])

    def flush(self) -> str:
        """The held-back rest at the end of the stream."""
        out, self._buf = self._p.restore(self._buf), ""
        return out
