"""Utility-bill fields read from the page layout by their labels (see :mod:`fedinf.extractors.labels`).

Each field has a label vocabulary gathered from US utility bills (electric, gas, water, telecom): "Amount Due",
"Total Amount Due", "Please Pay", "Payment Due Date", "Pay By", "Statement Date", "Service From ... To ...",
"Billing Period", "Account #", "Service Address", "Total Usage"... Dates and amounts are taken only next to their
labels, never as "the first date". Where no label names a field, a structural fallback gives a lower score: the
addressee block (name / street / ``City, ST 12345``) for the account holder and, flagged, for the service address;
the largest text at the top of page 1 for the provider; the only ``date - date`` range for the period; a
``number unit`` reading for the usage.

Every extractor returns a :class:`~fedinf.extractors.base.Found` whose ``score`` is its confidence and whose span is
the value's place in the document text (the evidence names the label and where the value sat).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from fedinf.documents import Document
from fedinf.documents.layout import Cell, PageLayout
from fedinf.extractors import parties
from fedinf.extractors.amounts import AMOUNT, parse_amount
from fedinf.extractors.base import Found, found
from fedinf.extractors.dates import _numeric_order, find_dates
from fedinf.extractors.labels import Candidate, LabelSet, candidates, decide

AMOUNT_DUE = LabelSet({"amount due": 1.0, "total amount due": 1.0, "total due": 0.95, "please pay": 0.95,
                       "balance due": 0.95, "amount due now": 1.0, "pay this amount": 1.0, "total to pay": 0.9,
                       "new balance": 0.8, "amount to pay": 0.95, "total balance due": 1.0, "current amount due": 1.0,
                       "total amount": 0.6},
                      exclude=("previous", "past due", "last payment", "enclosed", "payment received", "prior"))
DUE_DATE = LabelSet({"due date": 1.0, "payment due date": 1.0, "payment due": 0.95, "please pay by": 1.0,
                     "pay by": 0.9, "due by": 0.95, "due": 0.7, "amount due by": 0.95, "payment due by": 1.0,
                     "due on": 0.9},
                    exclude=("past due", "previous", "last payment"))
BILL_DATE = LabelSet({"bill date": 1.0, "statement date": 1.0, "billing date": 1.0, "date issued": 0.95,
                      "issue date": 0.95, "invoice date": 0.9, "date of bill": 1.0, "bill issued": 0.95,
                      "statement issued": 0.95, "date of statement": 1.0, "mailing date": 0.85, "date mailed": 0.9,
                      "bill mailed": 0.9, "bill issue date": 1.0, "statement issue date": 1.0, "date": 0.4},
                     exclude=("previous", "last bill", "next bill", "next read", "last payment", "due", "read date",
                              "prior", "payment received"))
PERIOD = LabelSet({"billing period": 1.0, "service period": 1.0, "service from": 1.0, "billing cycle": 0.95,
                   "service dates": 1.0, "period": 0.75, "for service": 0.85, "billing dates": 1.0,
                   "service": 0.6, "from": 0.5, "meter read dates": 0.75, "bill period": 1.0, "statement period": 1.0},
                  exclude=("previous period", "last year"))
PERIOD_START = LabelSet({"service start": 1.0, "start date": 0.85, "from date": 0.9, "service from": 0.9,
                         "period start": 1.0, "previous read date": 0.85, "prior read date": 0.85,
                         "previous reading date": 0.85, "billing start": 1.0, "from": 0.5},
                        exclude=("due", "bill date", "statement"))
PERIOD_END = LabelSet({"service end": 1.0, "end date": 0.85, "to date": 0.9, "service to": 0.9, "period end": 1.0,
                       "current read date": 0.85, "present read date": 0.85, "current reading date": 0.85,
                       "billing end": 1.0, "to": 0.4, "through": 0.5},
                      exclude=("due", "bill date", "statement"))
ACCOUNT = LabelSet({"account number": 1.0, "account #": 1.0, "account no": 1.0, "acct number": 1.0, "acct #": 1.0,
                    "acct no": 1.0, "customer account": 0.9, "account": 0.75, "customer number": 0.8,
                    "account id": 0.95, "customer account number": 1.0},
                   exclude=("account name", "account summary", "account holder", "account balance", "account type"))
HOLDER = LabelSet({"customer name": 1.0, "account name": 1.0, "account holder": 1.0, "name": 0.8, "customer": 0.65,
                   "bill to": 0.8, "prepared for": 0.9, "customer information": 0.6},
                  exclude=("customer service", "customer charge", "customer account", "customer number"))
SERVICE_ADDRESS = LabelSet({"service address": 1.0, "service location": 1.0, "premises address": 1.0,
                            "service for": 0.8, "premises": 0.85, "property address": 0.95, "location": 0.6,
                            "service at": 0.9, "supply address": 1.0})
USAGE = LabelSet({"total usage": 1.0, "usage": 0.8, "total kwh": 0.95, "energy used": 0.95, "consumption": 0.85,
                  "kwh used": 0.95, "total consumption": 1.0, "billed usage": 1.0, "usage this period": 1.0,
                  "water used": 0.95, "gas used": 0.95},
                 exclude=("average", "last year", "previous", "daily"))

USAGE_IN_UNITS = LabelSet({"kwh used": 1.0, "total kwh": 0.95, "kwh usage": 1.0, "kwh this period": 1.0,
                           "therms used": 1.0, "total therms": 0.95, "ccf used": 1.0, "total ccf": 0.95,
                           "gallons used": 1.0, "total gallons": 0.95, "hcf used": 1.0, "usage kwh": 0.95,
                           "usage in kwh": 1.0, "usage therms": 0.95, "usage ccf": 0.95, "usage gallons": 0.95,
                           "energy used kwh": 1.0, "kwh": 0.6, "therms": 0.6, "ccf": 0.6, "gallons": 0.6},
                          exclude=("average", "per day", "daily", "last year", "previous", "rate", "$"))
_UNITS = {"kwh": "kWh", "therm": "therms", "therms": "therms", "ccf": "CCF", "hcf": "HCF", "gallons": "gallons",
          "gal": "gallons", "kgal": "kgal", "mcf": "MCF", "cf": "CF", "m3": "m3", "cubic feet": "CF", "mwh": "MWh",
          "gb": "GB", "minutes": "minutes", "kgals": "kgal"}
_USAGE_RE = re.compile(r"(?<![\w.$])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*(" + "|".join(
    sorted((re.escape(u) for u in _UNITS), key=len, reverse=True)) + r")(?![A-Za-z])", re.IGNORECASE)
_CSZ = re.compile(r"^[A-Za-z][A-Za-z .'\-]{1,40},?\s+[A-Z]{2}\s*,?\s+\d{5}(?:-\d{4})?$")
_STREET = re.compile(r"^(?:\d{1,6}[A-Za-z]?\s+[A-Za-z0-9].{2,60}|P\.?\s?O\.?\s+Box\s+\d+.*)$", re.IGNORECASE)
_ID = re.compile(r"(?<![\w$])((?:[A-Z]{1,4}[\-/ ]?)?\d[\dA-Z]*(?:[ \-./][\dA-Z]*\d[\dA-Z]*){0,4})(?![\w])")
_NOT_NAME = re.compile(r"(?i)\b(account|service|address|date|amount|due|total|statement|bill|billing|usage|meter|"
                       r"charges?|balance|payment|period|customer|number|page|phone|www|summary|details|electric|"
                       r"energy|gas|water|power|utilit(?:y|ies)|company|department|cooperative|inc|llc|corp|"
                       r"municipal|city of|box|please|thank)\b")
_NAME_TOKEN = re.compile(r"^[A-Z][A-Za-z'\-]*\.?$|^[A-Z]\.$|^&$|^and$")


def _dates(doc: Document) -> bool:
    """The document's numeric date order (True: day first), decided once from all its text."""
    return _numeric_order(doc.text)


def date_parser(day_first: bool) -> Any:
    def parse(text: str) -> tuple[str, int, int] | None:
        head = text[:40]
        hits = find_dates(head, day_first=day_first)
        if not hits or head[:hits[0].start].strip(" :.-#\t"):
            return None
        return hits[0].date.isoformat(), hits[0].start, hits[0].end
    return parse


def period_parser(day_first: bool) -> Any:
    def parse(text: str) -> tuple[tuple[str, str], int, int] | None:
        hits = find_dates(text[:80], day_first=day_first)
        for a, b in zip(hits, hits[1:]):
            between = re.sub(r"[\s:]+", " ", text[a.end:b.start]).strip().lower()
            if between in ("-", "–", "—", "to", "through", "thru", "until", "and", "-to-", "- to", "to -") \
                    and a.date < b.date:
                return (a.date.isoformat(), b.date.isoformat()), a.start, b.end
        return None
    return parse


_DATE_PREFIX = re.compile(r"^\s*(?:by|on|before)?\s*[:\-]?\s*(?:[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}/\d{1,2}/\d{2,4}|"
                          r"\d{4}-\d{2}-\d{2})\s*[:\-]?", re.IGNORECASE)


def parse_money(text: str) -> tuple[str, int, int] | None:
    """An amount at the start of ``text`` (after ``:``, ``#``, ``$``), with a currency or two decimals; a leading
    "by <date>" is skipped ("Amount due by 01/15/2026 $84.10")."""
    skip = _DATE_PREFIX.match(text)
    offset = skip.end() if skip else 0
    head = text[offset:offset + 40]
    for m in AMOUNT.finditer(head):
        num = m.group("num")
        if head[:m.start()].strip(" :.-#\t$") or not (m.group("pre") or m.group("post") or re.search(r"[.,]\d\d\)?$",
                                                                                                     num)):
            return None
        value = parse_amount(m.group(0))
        if value is None:
            return None
        return str(value.quantize(Decimal("0.01"))), offset + m.start(), offset + m.end()
    return None


def parse_id(text: str) -> tuple[str, int, int] | None:
    head = text[:48]
    m = _ID.search(head)
    if m is None or head[:m.start()].strip(" :.#\t").lower() not in ("", "no", "number"):
        return None
    value = m.group(1).strip(" -./")
    if sum(c.isdigit() for c in value) < 5 or find_dates(value) or re.fullmatch(r"\d{3}[ .\-]\d{3}[ .\-]\d{4}",
                                                                                value) and "-" in value:
        return None
    return value, m.start(1), m.start(1) + len(value)


def parse_name(text: str) -> tuple[str, int, int] | None:
    stripped = text.strip(" :\t")
    start = text.find(stripped) if stripped else -1
    tokens = stripped.split()
    if start < 0 or not 2 <= len(tokens) <= 6 or _NOT_NAME.search(stripped) or any(c.isdigit() for c in stripped):
        return None
    if not all(_NAME_TOKEN.match(t) or re.fullmatch(r"[A-Z][A-Z'\-]*\.?", t) for t in tokens):
        return None
    return stripped, start, start + len(stripped)


def parse_usage(text: str) -> tuple[tuple[str, str], int, int] | None:
    m = _USAGE_RE.search(text[:48])
    if m is None or text[:m.start()].strip(" :\t"):
        return None
    qty = m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else "")
    return (qty, _UNITS[m.group(3).lower()]), m.start(), m.end()


# ------------------------------------------------------------------------------------------------ the extractors

def amount_due(doc: Document) -> Found | None:
    best = decide(candidates(doc, AMOUNT_DUE, parse_money), key=lambda v: Decimal(v))
    return best.to_found(doc) if best else None


def bill_date(doc: Document) -> Found | None:
    best = decide(candidates(doc, BILL_DATE, date_parser(_dates(doc)), pages=2))
    return best.to_found(doc) if best else None


def due_date(doc: Document) -> Found | None:
    best = decide(candidates(doc, DUE_DATE, date_parser(_dates(doc))))
    return best.to_found(doc) if best else None


def _period(doc: Document) -> Candidate | None:
    parse = period_parser(_dates(doc))
    best = decide(candidates(doc, PERIOD, parse, pages=2))
    if best is not None:
        return best
    ranges = []  # unlabelled: a lone plausible date range
    for page in doc.layout[:2]:
        for line in page.lines:
            for cell in line.cells:
                text = cell.text
                for i in range(len(text)):
                    if i and text[i - 1] != " ":
                        continue
                    got = parse(text[i:])
                    if got is not None:
                        (a, b), s, e = got
                        start, end = cell.span_of(i + s, i + e)
                        ranges.append(Candidate((a, b), start, end, 0.6, "range"))
                        break
    plausible = [c for c in ranges if 20 <= _days(*c.value) <= 40]
    return decide(plausible) if plausible else _split_period(doc)


def _split_period(doc: Document) -> Candidate | None:
    """Start and end under labels of their own ("Service Start" / "Service End", "Previous Read Date" / "Current
    Read Date"): both found, in order, 1-100 days apart."""
    parse = date_parser(_dates(doc))
    start = decide(candidates(doc, PERIOD_START, parse, pages=2))
    end = decide(candidates(doc, PERIOD_END, parse, pages=2))
    if start is None or end is None or not 1 <= _days(start.value, end.value) <= 100:
        return None
    return Candidate((start.value, end.value), min(start.start, end.start), max(start.end, end.end),
                     0.95 * min(start.score, end.score), f"{start.evidence}+{end.evidence}")


def _days(a: str, b: str) -> int:
    import datetime as dt

    return (dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days


def _period_side(doc: Document, index: int) -> Found | None:
    p = _period(doc)
    if p is None:
        return None
    hits = find_dates(doc.text[p.start:p.end], day_first=_dates(doc))
    start, end = (p.start + hits[index].start, p.start + hits[index].end) if len(hits) >= 2 else (p.start, p.end)
    return found(doc, p.value[index], start, end, score=p.score, evidence=p.evidence)


def period_start(doc: Document) -> Found | None:
    return _period_side(doc, 0)


def period_end(doc: Document) -> Found | None:
    return _period_side(doc, 1)


def account_number(doc: Document) -> Found | None:
    best = decide(candidates(doc, ACCOUNT, parse_id), key=lambda v: re.sub(r"[\s\-./]", "", v))
    return best.to_found(doc) if best else None


def _address_blocks(doc: Document) -> list[tuple[list[Cell], Cell, Cell, PageLayout]]:
    """Addressee-like blocks: name cell(s), a street cell, a ``City, ST 12345`` cell, stacked left-aligned (the
    name is the line above the street, or the one above that when a second name or "c/o" line intervenes)."""
    out = []
    for page in doc.layout[:2]:
        for line in page.lines[2:]:
            for cell in line.cells:
                if not _CSZ.match(cell.text.strip()):
                    continue
                above = [_aligned(page, line.index - k, cell) for k in (1, 2, 3)]
                if above[0] is None or above[1] is None:
                    continue
                if _STREET.match(above[0].text.strip()):
                    out.append(([c for c in above[1:] if c is not None], above[0], cell, page))
    return out


def _aligned(page: PageLayout, index: int, ref: Cell) -> Cell | None:
    if index < 0:
        return None
    line = page.lines[index]
    tol = max(line.height, 1.0) * 1.5
    return next((c for c in line.cells if abs(c.x0 - ref.x0) <= tol), None)


def account_holder(doc: Document) -> Found | None:
    cands = candidates(doc, HOLDER, parse_name)
    for names, _, _, page in _address_blocks(doc):
        name_cell = next((c for c in names if parse_name(c.text) is not None), names[0])
        got = parse_name(name_cell.text)
        if got is not None:
            v, s, e = got
            top = page.number == 1 and name_cell.words[0].y0 < 0.5 * page.height
            a, b = name_cell.span_of(s, e)
            cands.append(Candidate(v, a, b, (0.8 if top else 0.7) * name_cell.conf, "addressee block"))
    best = decide(cands, key=lambda v: re.sub(r"\W+", " ", v).casefold().strip())
    return best.to_found(doc) if best else None


def _street_and_city(doc: Document, text: str) -> tuple[str, int, int] | None:
    stripped = text.strip(" :\t")
    if not _STREET.match(stripped):
        return None
    start = text.find(stripped)
    return stripped, start, start + len(stripped)


def service_address(doc: Document) -> Found | None:
    cands = candidates(doc, SERVICE_ADDRESS, lambda t: _street_and_city(doc, t))
    out = []
    for c in cands:
        value, end = c.value, c.end
        if not re.search(r"\b[A-Z]{2}\s+\d{5}", value):  # the city line is below the street line
            cont = _continuation(doc, c)
            if cont is not None:
                value, end = f"{value}, {cont.text.strip()}", max(cont.end, c.end)
        out.append(Candidate(value, c.start, end, c.score, c.evidence))
    best = decide(out, key=_addr_key)
    if best is not None:
        return found(doc, best.value, best.start, best.end, score=best.score, evidence=best.evidence)
    blocks = _address_blocks(doc)
    if not blocks:
        return None
    _, street, city, _ = blocks[0]  # no service address named: the mailing address, flagged by its score
    value = f"{street.text.strip()}, {city.text.strip()}"
    return found(doc, value, street.start, max(city.end, street.end), score=0.55, evidence="mailing address (no service address "
                                                                          "label)")


def _continuation(doc: Document, c: Candidate) -> Cell | None:
    for page in doc.layout:
        for line in page.lines:
            for cell in line.cells:
                if cell.start <= c.start < cell.end + 1:
                    nxt = _aligned(page, line.index + 1, cell) if line.index + 1 < len(page.lines) else None
                    if nxt is not None and _CSZ.match(nxt.text.strip()):
                        return nxt
                    return None
    return None


def _addr_key(v: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", v.casefold())


def parse_quantity(text: str) -> tuple[str, int, int] | None:
    m = re.match(r"^[\s:]*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d/.,]*\d)(?!\s*[/%$])", text)
    if m is None:
        return None
    return m.group(1).replace(",", "") + (m.group(2) or ""), m.start(1), m.end(2) if m.group(2) else m.end(1)


def _unit_labelled(doc: Document) -> list[Candidate]:
    """A bare number under a label that names the unit ("kWh Used: 652", "Total Therms" / "48")."""
    out = []
    for c in candidates(doc, USAGE_IN_UNITS, parse_quantity):
        label = c.evidence.split(":", 1)[1].split("/", 1)[0]
        unit = next((u for k, u in _UNITS.items() if re.search(rf"(?<![a-z]){re.escape(k)}(?![a-z])", label)), None)
        if unit is not None:
            out.append(Candidate((c.value, unit), c.start, c.end, c.score, c.evidence))
    return out


def _usage(doc: Document) -> Candidate | None:
    best = decide(candidates(doc, USAGE, parse_usage) + _unit_labelled(doc), key=lambda v: (Decimal(v[0]), v[1]))
    if best is not None:
        return best
    seen: dict[tuple[Decimal, str], list[Candidate]] = {}
    for m in _USAGE_RE.finditer(doc.text):
        qty = m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else "")
        key = (Decimal(qty), _UNITS[m.group(3).lower()])
        seen.setdefault(key, []).append(Candidate((qty, key[1]), m.start(), m.end(), 0.55, "unit reading"))
    if not seen:
        return None
    ranked = sorted(seen.values(), key=len, reverse=True)
    if len(ranked) > 1 and len(ranked[1]) == len(ranked[0]):
        return Candidate(ranked[0][0].value, ranked[0][0].start, ranked[0][0].end, 0.4, "unit reading/ambiguous")
    return ranked[0][0]


def usage_total(doc: Document) -> Found | None:
    u = _usage(doc)
    return found(doc, u.value[0], u.start, u.end, score=u.score, evidence=u.evidence) if u else None


def usage_unit(doc: Document) -> Found | None:
    u = _usage(doc)
    return found(doc, u.value[1], u.start, u.end, score=u.score, evidence=u.evidence) if u else None


_NOT_PROVIDER = re.compile(r"(?i)\b(statement|bill|billing|invoices?|rechnung|factuur|facture|faktura|receipt|page|"
                           r"summary|details|account|customer|amount|total|payment|service|due|date|dear|hello)\b")


def _issuer_fallback(doc: Document) -> Found | None:
    """The invoice issuer heuristic, capped below the flag line on bills (it was tuned on invoices)."""
    hit = parties.issuer(doc)
    if hit is None or re.search(r"\d{2}", str(hit.value)) or _NOT_PROVIDER.search(str(hit.value)):
        return None
    return Found(hit.value, hit.raw, hit.span, min(hit.score, 0.6), hit.evidence + " (issuer heuristic)", hit.extra)


def provider(doc: Document) -> Found | None:
    """The largest name-like text at the top of page 1 (a logo line, at least 1.25 x the typical text height);
    failing that, the invoice issuer heuristic (seller labels, legal forms)."""
    fallback = _issuer_fallback(doc)
    if doc.layout and doc.layout[0].source != "text":
        page = doc.layout[0]
        cells = [(c, max(w.height for w in c.words)) for line in page.lines for c in line.cells
                 if c.words[0].y0 < 0.3 * page.height]
        heights = sorted(h for _, h in cells)
        typical = heights[len(heights) // 2] if heights else 0.0
        for cell, h in sorted(cells, key=lambda t: -t[1])[:4]:
            text = cell.text.strip(" .:")
            if h < 1.25 * typical:
                break
            if sum(ch.isalpha() for ch in text) < 4 or _NOT_PROVIDER.search(text) or re.search(r"\d{3}", text):
                continue

            return found(doc, text, cell.start, cell.end, score=0.85 * cell.conf,
                         evidence="largest text at the top of page 1")
    return fallback
