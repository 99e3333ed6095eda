"""Classification of a request's text pieces: entities (types, spans, scores) and the resulting data class.

:class:`Classifier` is built once from config (:meth:`Classifier.from_config`) and is safe to share: it holds no
per-request state (only a bounded memo of what short, repeated text pieces yield, see :data:`MEMO_CHARS`).
:meth:`Classifier.classify` runs every detector over every text piece (normalised first, see
:mod:`fedinf.privacy.normalize`), resolves overlaps (higher score, then longer span wins) and maps each entity type to
a data class. Spans are reported in offsets of the ORIGINAL text pieces. A :class:`Classification` never holds the
values themselves, only types, spans and counts; :meth:`Classification.summary` is safe to log.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import ahocorasick_rs

from fedinf.data_class import DataClass
from fedinf.errors import Forbidden
from fedinf.privacy import classes as _classes
from fedinf.privacy.context import across
from fedinf.privacy.detector import Detector, PatternDetector, Span, TextView, words_regex
from fedinf.privacy.detectors import build_all, custom
from fedinf.privacy.encodings import MAX_DEPTH, decoded_blobs
from fedinf.privacy.normalize import Normalizer

_DIGIT = re.compile(r"\d")
#: Text pieces up to this many characters have what was detected in them remembered, by their exact text, for the
#: next request that sends the same piece: system prompts, role instructions, tool names and short fixed strings
#: repeat across requests, and each piece costs the detectors' fixed work however short it is (the bench's 28-character
#: system message: ~27 µs of a ~114 µs classify warm, more in a busy server). Longer pieces are mostly the unique
#: content of one request and are always classified afresh. Bounded (MEMO_PIECES, oldest dropped first); in memory
#: only, never logged or stored; per classifier, so a change of detectors or custom patterns starts empty.
MEMO_CHARS = 512
MEMO_PIECES = 2048

if TYPE_CHECKING:
    from fedinf.config import Governance
    from fedinf.privacy.normalize import Normalized

#: What one text piece yields on its own (:meth:`Classifier._piece`): its normalised form, its entities as
#: ``(type, start, end, score)`` in the piece's original offsets, and the spans (normalised offsets) of the
#: restricted-class ones, which values split across pieces must not overlap.
_Piece = tuple["Normalized", tuple[tuple[str, int, int, float], ...], tuple[tuple[int, int], ...]]


def _has_digit(text: str) -> bool:
    """``\\d`` occurs in ``text``: ten ``in`` checks on ASCII text (C loops, much cheaper than a regex scan)."""
    return any(map(text.__contains__, "0123456789")) if text.isascii() else _DIGIT.search(text) is not None


@dataclass(frozen=True, slots=True)
class Entity:
    """One detected value: its type, its span ``[start, end)`` in text piece number ``source``, and a score."""

    type: str
    start: int
    end: int
    source: int
    score: float


class Classified(Protocol):
    """What the audit record and the metrics read of a classification: a :class:`Classification`, or a summary of
    stored data an operation touched (retrieval collections)."""

    @property
    def data_class(self) -> DataClass: ...

    @property
    def detected_class(self) -> DataClass: ...

    @property
    def adjustment(self) -> str | None: ...

    def counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class Classification:
    """The outcome of classifying a request. ``data_class`` is what routing uses; ``detected_class`` is what the
    content alone implies; ``declared``/``adjustment`` record a caller's declaration (see :func:`apply_declared`)."""

    data_class: DataClass
    detected_class: DataClass
    entities: tuple[Entity, ...]
    declared: DataClass | None = None
    adjustment: str | None = None  # "raised" | "lowered" | None

    def counts(self) -> dict[str, int]:
        """Entity type -> number of occurrences."""
        return dict(Counter(e.type for e in self.entities)) if self.entities else {}

    def summary(self) -> dict[str, Any]:
        """Loggable summary: classes and entity types with counts; never values or spans."""
        return {
            "data_class": self.data_class.label,
            "detected_class": self.detected_class.label,
            "declared": self.declared.label if self.declared is not None else None,
            "adjustment": self.adjustment,
            "entities": dict(sorted(self.counts().items())),
        }


def apply_declared(c: Classification, declared: DataClass | None, *, may_lower: bool) -> Classification:
    """Apply a caller-declared class. Raising is always allowed; lowering below the detected class needs
    ``may_lower`` and is recorded as ``adjustment="lowered"``; otherwise :class:`~fedinf.errors.Forbidden` with code
    ``lowering_not_permitted`` is raised (the message names the classes, never content)."""
    if declared is None:
        return c
    declared = DataClass.parse(declared)
    if declared > c.detected_class:
        return replace(c, data_class=declared, declared=declared, adjustment="raised")
    if declared < c.detected_class:
        if not may_lower:
            raise Forbidden(
                f"the declared data class '{declared.label}' is lower than the detected class "
                f"'{c.detected_class.label}'; lowering needs the permission to lower data classes",
                code="lowering_not_permitted", param="fedinf.data_class",
                details={"declared": declared.label, "detected": c.detected_class.label,
                         "entities": dict(sorted(c.counts().items()))},
            )
        return replace(c, data_class=declared, declared=declared, adjustment="lowered")
    return replace(c, declared=declared, adjustment=None)


class Classifier:
    """Detectors + entity -> class map. Build with :meth:`from_config`; share freely (no per-request state; the
    memo of short pieces is safe to use from several threads).

    ``min_score``: candidates below it are dropped. ``class_min_score``: weaker entities (a single unknown
    capitalised word mid-sentence, score 0.5) are still reported and pseudonymized but do not raise the data class on
    their own: on technical text ("Ollama", "Kafka") they are mostly product names, and classifying every such prompt
    as confidential would keep it from every cloud zone."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        entity_classes: Mapping[str, DataClass] | None = None,
        default_class: DataClass = DataClass.PUBLIC,
        min_score: float = 0.5,
        class_min_score: float = 0.55,
        memo: bool = True,
    ) -> None:
        """``memo``: remember what short pieces yield (see :data:`MEMO_CHARS`); off for benchmarks of the
        detectors themselves."""
        self.detectors = tuple(detectors)
        # pre-filter index: each distinct `needs` string -> the detectors it wakes up (all found in one pass per text)
        self._always: list[int] = []
        self._by_needle: dict[str, list[int]] = {}
        for i, d in enumerate(self.detectors):
            needs = getattr(d, "needs", ())
            if not needs:
                self._always.append(i)
            for n in needs:
                self._by_needle.setdefault(n, []).append(i)
        self._needles = _NeedleSearch(self._by_needle)
        self.entity_classes = dict(_classes.DEFAULT_ENTITY_CLASSES)
        self.entity_classes.update(entity_classes or {})
        self.default_class = default_class
        self.min_score = min_score
        self.class_min_score = class_min_score
        self._normalizer = Normalizer()
        patterns = [d for d in self.detectors if isinstance(d, PatternDetector)]
        # across pieces only the high-value identifiers (cards, IBANs, national ids, accounts, MRNs): generic cues
        # such as "number" in another message must not turn an order number into a phone number
        numbers = [d for d in patterns if d.scope == "digits" and d.context]
        self._split_detectors = tuple(d for d in numbers if self.class_of(d.entity) >= DataClass.RESTRICTED)
        self._split_cues = words_regex(w for d in self._split_detectors for w in d.context)
        self._memo: dict[str, _Piece] = {}  # short pieces seen recently (see MEMO_CHARS); insertion-ordered
        self._memo_on = memo

    @classmethod
    def from_config(cls, governance: "Governance | None" = None, *, memo: bool = True) -> "Classifier":
        """All built-in detectors plus ``governance.custom_patterns``; ``governance.entity_classes`` overrides the
        default map (custom pattern ``class`` entries come first, explicit ``entity_classes`` win)."""
        if governance is None:
            from fedinf.config import Governance
            governance = Governance()
        extra, extra_classes = custom.build(list(governance.custom_patterns))
        classes = {**extra_classes, **governance.entity_classes}
        detectors: list[Detector] = [*build_all()]
        detectors += extra
        return cls(detectors, entity_classes=classes, default_class=governance.default_class, memo=memo)

    def class_of(self, entity_type: str) -> DataClass:
        return self.entity_classes.get(entity_type, _classes.UNKNOWN_ENTITY_CLASS)

    def detect(self, texts: Iterable[str]) -> tuple[Entity, ...]:
        """Entities over all text pieces, in original offsets, sorted by (source, start): each piece on its own,
        encoded blobs decoded (:mod:`~fedinf.privacy.encodings`), then values split over pieces or with their
        context in another piece (:mod:`~fedinf.privacy.context`). Overlapping entities of one piece are merged
        into one span (the higher class names it), so pseudonymization replaces the whole value."""
        pieces = [self._piece(t) for t in texts]
        norms = [p[0] for p in pieces]
        out = [Entity(etype, start, end, i, score) for i, p in enumerate(pieces) for etype, start, end, score in p[1]]
        taken = {i: list(p[2]) for i, p in enumerate(pieces) if p[2]}
        if any(_has_digit(n.text) for n in norms):
            for p in across(self._split_detectors, [n.text for n in norms], taken,
                            split=self._split_detectors, split_cues=self._split_cues):
                if p.score >= self.min_score:
                    start, end = norms[p.source].to_original(p.start, p.end)
                    out.append(Entity(p.entity, start, end, p.source, round(p.score, 3)))
        return self._merged(out)

    def _piece(self, text: str) -> _Piece:
        """What ``text`` yields on its own; remembered for short pieces (see :data:`MEMO_CHARS`)."""
        memo, limit = self._memo, (MEMO_CHARS if self._memo_on else -1)
        if len(text) <= limit:
            got = memo.get(text)
            if got is not None:
                return got
        norm = self._normalizer.normalize(text)
        found: list[tuple[str, int, int, float]] = []
        taken: list[tuple[int, int]] = []
        if norm.text:
            for s in self._spans(norm.text):
                if self.class_of(s.entity) >= DataClass.RESTRICTED:  # weaker ones may be part of a split value
                    taken.append((s.start, s.end))
                start, end = norm.to_original(s.start, s.end)
                found.append((s.entity, start, end, round(s.score, 3)))
            found += [(e.type, e.start, e.end, e.score) for e in self._decoded(text, 0, 0)]
        piece = (norm, tuple(found), tuple(taken))
        if len(text) <= limit:
            if len(memo) >= MEMO_PIECES:
                try:  # the oldest entry (another thread may have dropped it meanwhile)
                    del memo[next(iter(memo))]
                except (KeyError, StopIteration, RuntimeError):
                    pass
            memo[text] = piece
        return piece

    def _spans(self, text: str) -> list[Span]:
        view = TextView(text)
        return _resolve([s for d in self._wanted(view) for s in d.detect(view) if s.score >= self.min_score])

    def _decoded(self, text: str, source: int, depth: int) -> list[Entity]:
        """One entity per encoded blob whose decoded text holds entities (the most sensitive type names it)."""
        out = []
        for blob in decoded_blobs(text):
            norm = self._normalizer.normalize(blob.decoded)
            spans = self._spans(norm.text)
            if blob.offsets is not None:  # URL encoding: each entity keeps its own span
                for s in spans:
                    a, b = norm.to_original(s.start, s.end)
                    out.append(Entity(s.entity, blob.offsets[a], blob.offsets[b], source, round(s.score, 3)))
                continue
            found = [(s.entity, s.score) for s in spans]
            if depth + 1 < MAX_DEPTH:
                found += [(e.type, e.score) for e in self._decoded(blob.decoded, source, depth + 1)]
            if found:
                etype, score = max(found, key=lambda f: (self.class_of(f[0]), f[1]))
                out.append(Entity(etype, blob.start, blob.end, source, round(score, 3)))
        return out

    def _merged(self, entities: list[Entity]) -> tuple[Entity, ...]:
        entities.sort(key=lambda e: (e.source, e.start, -e.end))
        out: list[Entity] = []
        for e in entities:
            last = out[-1] if out else None
            if last is None or last.source != e.source or e.start >= last.end:
                out.append(e)
                continue
            if e.end <= last.end and e.type == last.type:
                continue
            top = max((last, e), key=lambda x: (self.class_of(x.type), x.score))
            out[-1] = Entity(top.type, last.start, max(last.end, e.end), e.source, max(last.score, e.score))
        return tuple(out)

    def _wanted(self, view: TextView) -> list[Detector]:
        """The detectors whose cheap pre-filter passes on this text, in registry order."""
        picked = set(self._always)
        for needle in self._needles.found(view):
            picked.update(self._by_needle[needle])
        return [self.detectors[i] for i in sorted(picked)]

    def classify(self, texts: Sequence[str]) -> Classification:
        """Detect entities and derive the data class (no caller declaration applied)."""
        entities = self.detect(texts)
        level = max(self.entity_class(entities), self.default_class)
        return Classification(data_class=level, detected_class=level, entities=entities)

    def entity_class(self, entities: Iterable[Entity]) -> DataClass:
        """The class the entities imply on their own (combination rules applied; ``public`` when none counts)."""
        found = {e.type for e in entities if e.score >= self.class_min_score}
        level = max((self.class_of(t) for t in found), default=DataClass.PUBLIC)
        for trigger, partners, result in _classes.COMBINATIONS:
            if found & trigger and found & partners:
                level = max(level, result)
        return level


class _NeedleSearch:
    """All the ``needs`` strings of the detectors, searched in one pass over a text (Aho-Corasick) instead of one
    ``needle in text`` scan each: the same answer as :meth:`TextView.contains` for every needle. ``ahocorasick_rs``
    (Rust's aho-corasick crate, a DFA over the built-in detectors' ~115 needles) takes ~2 µs on a 1,000-character
    prompt, where pyahocorasick's iterator took ~10 µs and a scan per needle ~55 µs (bench/gateway_overhead/NOTES.md).
    A text the library cannot take as UTF-8 (a lone surrogate) is scanned needle by needle."""

    def __init__(self, needles: Iterable[str]) -> None:
        self._all = frozenset(needles)
        self._literal = sorted(n for n in self._all if n and n != "#digit")
        self._automaton: Any = None
        if self._literal:
            self._automaton = ahocorasick_rs.AhoCorasick(self._literal,
                                                         implementation=ahocorasick_rs.Implementation.DFA)

    def found(self, view: TextView) -> set[str]:
        """The needles that occur in ``view`` (``"#digit"``: any digit; ``""``: always); recorded in the view, so
        that the detectors' own pre-filters (:meth:`TextView.contains`) do not search again."""
        found: set[str] = set()
        if self._automaton is not None:
            try:
                found.update(self._automaton.find_matches_as_strings(view.lower, overlapping=True))
            except UnicodeEncodeError:  # lone surrogates: not UTF-8
                found.update(n for n in self._literal if n in view.lower)
        if "#digit" in self._all and view.has_digit:
            found.add("#digit")
        if "" in self._all:
            found.add("")
        view.record_needles(self._all, found)
        return found


def _merge_same_type(spans: list[Span]) -> list[Span]:
    """Overlapping spans of the same type become their union (with the higher score)."""
    spans.sort(key=lambda s: (s.entity, s.start))
    out: list[Span] = []
    for s in spans:
        last = out[-1] if out else None
        if last is not None and last.entity == s.entity and s.start < last.end:
            out[-1] = Span(last.start, max(last.end, s.end), s.entity, max(last.score, s.score))
        else:
            out.append(s)
    return out


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: same-type overlaps merged, then highest score first, then the longer span; returned in
    text order."""
    if len(spans) < 2:
        return spans
    spans = _merge_same_type(spans)
    spans.sort(key=lambda s: (-s.score, s.start - s.end, s.start))
    starts: list[int] = []
    taken: list[Span] = []
    for s in spans:
        i = bisect_left(starts, s.start)
        if i > 0 and taken[i - 1].end > s.start:
            continue
        if i < len(taken) and taken[i].start < s.end:
            continue
        starts.insert(i, s.start)
        taken.insert(i, s)
    return taken
