"""Dates in many formats (EN/FR/DE/NL/PL month names, numeric with . / -), normalised to ISO ``YYYY-MM-DD``.

Numeric dates with both parts <= 12 (``03/04/2023``) are ambiguous; :func:`find_dates` settles the order per document:
if any date in the document is unambiguous (``13/04/2023`` or ``04/13/2023``) its order wins, else day-first
(European) unless the separator is ``/`` and the document uses ``$``/``USD`` only, where month-first is assumed.
Two-digit years are 20YY. Years outside 1990-2099 are ignored.

The named dates (invoice date, due date, billing period) are picked by the label next to them (same line, or the
line just above), in English, French, German, Dutch and Polish; failing a label, the invoice date is the first date
in the document that has no other label (due, delivery, order, period).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from fedinf.documents import Document
from fedinf.extractors.base import Found, Line, found, label_pattern, lines

_MONTHS = {
    # en
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "sept": 9,
    # fr
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7, "août": 8,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
    # de
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "juni": 6, "juli": 7, "oktober": 10,
    "dezember": 12,
    # nl
    "januari": 1, "februari": 2, "maart": 3, "mei": 5, "augustus": 8,
    # pl (nominative and genitive)
    "styczeń": 1, "stycznia": 1, "luty": 2, "lutego": 2, "marzec": 3, "marca": 3, "kwiecień": 4, "kwietnia": 4,
    "maj": 5, "maja": 5, "czerwiec": 6, "czerwca": 6, "lipiec": 7, "lipca": 7, "sierpień": 8, "sierpnia": 8,
    "wrzesień": 9, "września": 9, "październik": 10, "października": 10, "listopad": 11, "listopada": 11,
    "grudzień": 12, "grudnia": 12,
}
for _name, _n in list(_MONTHS.items()):
    if len(_name) > 3 and _name[:3] not in _MONTHS:
        _MONTHS[_name[:3]] = _n
_MONTHS.update({"mrz": 3, "okt": 10, "dez": 12, "mär": 3, "mei": 5, "juil": 7, "déc": 12, "févr": 2})

_MON = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_ISO = re.compile(r"(?<!\d)((?:19|20)\d\d)-(\d{1,2})-(\d{1,2})(?!\d)")
_NUM = re.compile(r"(?<![\d.,/-])(\d{1,2})\s?([./-])\s?(\d{1,2})\2\s?((?:19|20)?\d\d)(?![\d])")
_DMY = re.compile(r"(?<![\w])(\d{1,2})(?:st|nd|rd|th|er)?\.?\s*(?:de\s+)?(" + _MON + r")\.?,?\s*((?:19|20)\d\d)(?!\d)",
                  re.IGNORECASE)
_MDY = re.compile(r"(?<![\w])(" + _MON + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s*,?\s*((?:19|20)\d\d)(?!\d)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DateHit:
    date: dt.date
    start: int
    end: int
    ambiguous: bool = False


def _mk(y: int, m: int, d: int) -> dt.date | None:
    if y < 100:
        y += 2000
    if not 1990 <= y <= 2099:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _numeric_order(text: str) -> bool:
    """True if numeric dates in ``text`` read day-first."""
    for m in _NUM.finditer(text):
        a, b = int(m.group(1)), int(m.group(3))
        if a > 12 >= b:
            return True
        if b > 12 >= a:
            return False
    us = ("$" in text or "USD" in text) and "€" not in text and "EUR" not in text
    return not us


def find_dates(text: str, *, offset: int = 0, day_first: bool | None = None) -> list[DateHit]:
    """Every date in ``text``, in order (``offset`` is added to the positions)."""
    if day_first is None:
        day_first = _numeric_order(text)
    hits: list[DateHit] = []
    taken: list[tuple[int, int]] = []

    def add(d: dt.date | None, s: int, e: int, amb: bool = False) -> None:
        if d and not any(s < te and ts < e for ts, te in taken):
            taken.append((s, e))
            hits.append(DateHit(d, s + offset, e + offset, amb))

    for m in _ISO.finditer(text):
        add(_mk(int(m.group(1)), int(m.group(2)), int(m.group(3))), m.start(), m.end())
    for m in _DMY.finditer(text):
        add(_mk(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1))), m.start(), m.end())
    for m in _MDY.finditer(text):
        add(_mk(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2))), m.start(), m.end())
    for m in _NUM.finditer(text):
        a, b, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
        amb = a <= 12 and b <= 12 and a != b
        d = _mk(y, b, a) if (day_first or a > 12) and b <= 12 else _mk(y, a, b)
        add(d, m.start(), m.end(), amb)
    return sorted(hits, key=lambda h: h.start)


def parse_date(text: str, *, day_first: bool = True) -> str | None:
    """The first date in ``text`` as ISO, or None."""
    hits = find_dates(text, day_first=day_first)
    return hits[0].date.isoformat() if hits else None


INVOICE_DATE = label_pattern([
    "invoice date", "date of issue", "date issued", "issued on", "issue date", "bill date", "billing date",
    "statement date", "date of invoice", "rechnungsdatum", "datum", "factuurdatum", "factuur datum", "date facture",
    "date de facture", "date d'émission", "data wystawienia", "date", "dated", "du", "vom", "le",
])
DUE_DATE = label_pattern([
    "due date", "date due", "payment due", "due by", "due on", "pay by", "fällig am", "fällig", "zahlbar bis",
    "fälligkeitsdatum", "vervaldatum", "uiterste betaaldatum", "date limite de paiement", "échéance", "date d'échéance",
    "termin płatności", "due",
])
OTHER_DATE = label_pattern([
    "delivery date", "lieferdatum", "leverdatum", "date of sale", "order date", "orderdatum", "bestelldatum",
    "date de livraison", "check out", "check in", "period", "zeitraum", "leistungszeitraum", "période",
    "next billing date", "activation date", "paid on", "date paid", "prélèvement à partir du",
]) 
PERIOD_LABEL = label_pattern([
    "billing period", "service period", "period", "abrechnungszeitraum", "leistungszeitraum", "zeitraum",
    "période", "periode", "facturatieperiode", "summary for", "du",
])


def _label_before(text_before: str, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The last match of ``pattern`` in ``text_before`` if only separators follow it."""
    last = None
    for m in pattern.finditer(text_before):
        last = m
    if last and re.fullmatch(r"[\s:.#—–\-,()]*(?:\w+[\s:]*)?", text_before[last.end():][-40:] or ""):
        return last
    return None


def _classify(doc: Document, all_lines: list[Line], hit: DateHit) -> str | None:
    """Which label names this date: 'invoice', 'due', 'other' or None."""
    line = next(l for l in all_lines if l.start <= hit.start <= l.end)
    before = doc.text[line.start:hit.start]
    prev = [l for l in all_lines[max(0, line.index - 2):line.index] if l.text.strip()]
    contexts = [before] + ([prev[-1].text + " "] if not before.strip() and prev else [])
    for ctx in contexts:
        for kind, pat in (("other", OTHER_DATE), ("due", DUE_DATE), ("invoice", INVOICE_DATE)):
            if _label_before(ctx, pat):
                return kind
    return None


def labelled_dates(doc: Document) -> list[tuple[DateHit, str | None]]:
    all_lines = lines(doc)
    return [(h, _classify(doc, all_lines, h)) for h in find_dates(doc.text)]


def invoice_date(doc: Document) -> Found | None:
    """The issue date: a date labelled as such, else the first date with no other label."""
    hits = labelled_dates(doc)
    for h, kind in hits:
        if kind == "invoice":
            return found(doc, h.date.isoformat(), h.start, h.end, score=0.9, evidence="label:invoice date")
    for h, kind in hits:
        if kind is None:
            return found(doc, h.date.isoformat(), h.start, h.end, score=0.6, evidence="first unlabelled date")
    return None


def due_date(doc: Document) -> Found | None:
    for h, kind in labelled_dates(doc):
        if kind == "due":
            return found(doc, h.date.isoformat(), h.start, h.end, score=0.85, evidence="label:due date")
    return None


def billing_period(doc: Document) -> tuple[Found, Found] | None:
    """``(start, end)`` of the first ``<date> - <date>`` range (a labelled one preferred)."""
    hits = find_dates(doc.text)
    best = None
    for a, b in zip(hits, hits[1:]):
        between = doc.text[a.end:b.start]
        if re.fullmatch(r"\s*(?:-|–|—|to|bis|au|tot|t/m|until)\s*", between, re.IGNORECASE) and a.date <= b.date:
            line_start = doc.text.rfind("\n", 0, a.start) + 1
            labelled = bool(PERIOD_LABEL.search(doc.text[max(line_start - 60, 0):a.start]))
            if best is None or (labelled and not best[2]):
                best = (a, b, labelled)
    if best is None:
        return None
    a, b, labelled = best
    score = 0.85 if labelled else 0.6
    return (found(doc, a.date.isoformat(), a.start, a.end, score=score, evidence="date range"),
            found(doc, b.date.isoformat(), b.start, b.end, score=score, evidence="date range"))
