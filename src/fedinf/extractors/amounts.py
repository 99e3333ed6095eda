"""Money: amounts in European (``1.234,56``) and English (``1,234.56``) notation, currencies, and the totals.

Parsing rules (:func:`parse_amount`): the last ``.`` or ``,`` followed by exactly two digits (or one) is the decimal
mark; the other mark and spaces/apostrophes group thousands; a single mark followed by three digits groups thousands
(``1.234`` = 1234); a leading ``-`` or surrounding parentheses make it negative. Amounts are ``Decimal`` and are
written out as plain decimal strings with two places.

Currencies: ISO codes (EUR, USD, ...) and symbols (``€``, ``$``, ``£``, ``¥``, ``₹``, ``Rs``, ``zł``, ``Fr.``);
``$`` alone means USD. The document currency is the one next to the total, else the most frequent one.

Totals are picked by the label on their line (``Total``, ``Gesamtbetrag``, ``Totaal``, ``Total TTC``, ``Montant
total``, ``Amount due`` ...), strongest label first; net and tax amounts likewise (``Subtotal``, ``Netto``, ``HT``;
``VAT``, ``MwSt``, ``TVA``, ``BTW``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from fedinf.documents import Document
from fedinf.extractors.base import Found, Line, found, label_pattern, lines

SYMBOLS = {"€": "EUR", "$": "USD", "US$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "Rs": "INR", "Rs.": "INR",
           "zł": "PLN", "Fr.": "CHF", "kr": "SEK", "R$": "BRL", "C$": "CAD", "A$": "AUD", "CHF": "CHF"}
CODES = {"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "INR", "PLN", "SEK", "NOK", "DKK", "CZK", "HUF", "CAD", "AUD",
         "NZD", "BRL", "MXN", "ZAR", "SGD", "HKD", "RON", "BGN", "TRY", "ILS", "AED", "RUB", "KRW"}
WORDS = {"euro": "EUR", "euros": "EUR", "dollars": "USD", "złotych": "PLN", "zloty": "PLN"}

_NUM = r"\(?-?\s?(?:\d{1,3}(?:[.,'\u00a0\u202f ]\d{3})+|\d+)(?:[.,]\d{1,2})?\)?(?!\d)"
_CUR = r"(?:US\$|R\$|C\$|A\$|[€$£¥₹]|Rs\.?|zł|Fr\.|\b(?:" + "|".join(sorted(CODES)) + r")\b)"
AMOUNT = re.compile(r"(?P<pre>" + _CUR + r")?\s?(?P<num>(?<![\w.,])" + _NUM + r")(?:\s?(?P<post>" + _CUR + r"))?")


def parse_amount(text: str) -> Decimal | None:
    """Parse one amount (see the module docstring); None when it is not a number."""
    s = text.strip().replace("\u00a0", " ").replace("\u202f", " ")
    neg = s.startswith("-") or (s.startswith("(") and s.endswith(")")) or s.endswith("-")
    s = re.sub(r"[^\d.,' ]", "", s).strip().replace("'", "").replace(" ", "")
    if not s or not re.search(r"\d", s):
        return None
    m = re.search(r"[.,](\d{1,2})$", s)
    if m:
        whole, frac = s[:m.start()], m.group(1)
    else:
        whole, frac = s, "0"
    whole = re.sub(r"[.,]", "", whole)
    try:
        value = Decimal(f"{whole or '0'}.{frac}")
    except InvalidOperation:
        return None
    return -value if neg else value


def fmt(value: Decimal) -> str:
    """A decimal as a plain string with two places (``1234.50``)."""
    return str(value.quantize(Decimal("0.01")))


@dataclass(frozen=True, slots=True)
class AmountHit:
    value: Decimal
    currency: str | None
    start: int
    end: int
    decimals: bool


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    return SYMBOLS.get(token) or (token if token in CODES else None)


def find_amounts(text: str, *, offset: int = 0) -> list[AmountHit]:
    """Every amount-looking number in ``text`` (years, dates, long ids and percentages are skipped)."""
    from fedinf.extractors.dates import find_dates

    out = []
    in_dates = [(h.start, h.end) for h in find_dates(text)]
    for m in AMOUNT.finditer(text):
        if any(s <= m.start("num") < e for s, e in in_dates):
            continue
        num = m.group("num").strip()
        after = text[m.end():m.end() + 2]
        if after.startswith("%") or after.startswith(" %") or re.match(r"[./-]\d", after):
            continue
        digits = re.sub(r"\D", "", num)
        has_dec = bool(re.search(r"[.,]\d{1,2}\)?$", num))
        cur = _currency(m.group("pre")) or _currency(m.group("post"))
        if len(digits) > 12 or (not has_dec and not cur):
            continue  # ids, counts and years: only amounts with decimals or a currency count
        value = parse_amount(num)
        if value is None:
            continue
        s = m.start("num") if not m.group("pre") else m.start()
        out.append(AmountHit(value, cur, s + offset, m.end() + offset, has_dec))
    return out


def document_currency(doc: Document, near: int | None = None) -> Found | None:
    """The currency next to offset ``near`` (the total), else the most frequent one in the document."""
    text = doc.text
    hits: list[tuple[str, int, int]] = []
    for m in re.finditer(_CUR, text):
        cur = _currency(m.group(0))
        if cur:
            hits.append((cur, m.start(), m.end()))
    for m in re.finditer(r"(?i)\b(" + "|".join(WORDS) + r")\b", text):
        hits.append((WORDS[m.group(1).lower()], m.start(), m.end()))
    label = re.search(r"(?i)(?:currency|währung|devise|valuta|waluta)\s*[:\-]?\s*([A-Z]{3})\b", text)
    if label and label.group(1) in CODES:
        return found(doc, label.group(1), label.start(1), label.end(1), score=0.9, evidence="label:currency")
    if not hits:
        return None
    if near is not None:
        line_start, line_end = text.rfind("\n", 0, near) + 1, text.find("\n", near)
        line_end = len(text) if line_end < 0 else line_end
        same = [h for h in hits if line_start <= h[1] <= line_end]
        if same:
            cur, s, e = min(same, key=lambda h: abs(h[1] - near))
            return found(doc, cur, s, e, score=0.85, evidence="next to total")
    counts = Counter(h[0] for h in hits)
    if "USD" in counts and len(counts) > 1 and not any(text[s:e] == "USD" for c, s, e in hits):
        counts.pop("USD")  # a bare $ is weaker evidence than any other currency
    cur = counts.most_common(1)[0][0]
    first = next(h for h in hits if h[0] == cur)
    return found(doc, cur, first[1], first[2], score=0.6, evidence="most frequent currency")


TOTAL_STRONG = label_pattern([
    "grand total", "total amount", "invoice total", "total due", "amount due", "balance due", "total ttc",
    "montant ttc", "somme à payer", "net à payer", "total à payer", "montant total", "gesamtbetrag", "rechnungsbetrag",
    "summe brutto", "bruttobetrag", "endbetrag", "zu zahlen", "gesamtsumme", "totaal", "te betalen",
    "factuur totaal", "totaalbedrag", "należność ogółem", "do zapłaty", "razem do zapłaty", "total incl",
    "total (incl", "total paid", "total at checkout", "amount payable", "total to pay", "invoice amount",
])
TOTAL_WEAK = label_pattern(["total", "gesamt", "summe", "totale", "razem", "bedrag", "montant"])
NET = label_pattern([
    "subtotal", "sub total", "sub-total", "net amount", "total net", "net total", "amount excl", "total excl",
    "zwischensumme", "nettobetrag", "gesamtnetto", "netto", "summe netto", "total ht", "montant ht", "hors taxe",
    "exclusief btw", "excl. btw", "subtotaal", "totaal excl", "wartość netto", "netto razem", "ht",
])
TAX = label_pattern([
    "vat", "tax", "sales tax", "gst", "mwst", "ust", "umsatzsteuer", "mehrwertsteuer", "tva", "montant tva", "btw",
    "btw bedrag", "kwota vat", "podatek",
])
_ZERO_WORDS = label_pattern(["amount due", "balance due", "now due", "ausstehender betrag", "balance", "payments",
                             "payment received", "paid"])


def _line_amounts(doc: Document, line: Line, label_end: int) -> list[AmountHit]:
    return [h for h in find_amounts(doc.text[label_end:line.end], offset=label_end)]


def _labelled(doc: Document, pattern: re.Pattern[str], *,
              exclude: Sequence[re.Pattern[str]] = ()) -> list[tuple[Line, AmountHit]]:
    """(line, amount) pairs where ``pattern`` labels the line and an amount follows the label."""
    out = []
    for line in lines(doc):
        m = pattern.search(line.text)
        if not m or any(x.search(line.text) for x in exclude):
            continue
        hits = _line_amounts(doc, line, line.start + m.end())
        if hits:
            out.append((line, max(hits, key=lambda h: h.value)))
    return out


def total_amount(doc: Document) -> Found | None:
    """The grand total: strongest total label, else the largest amount in the document."""
    for pattern, score, exclude in ((TOTAL_STRONG, 0.9, [NET]), (TOTAL_WEAK, 0.75, [NET])):
        cands = [(l, h) for l, h in _labelled(doc, pattern, exclude=exclude) if h.value != 0]
        if cands:
            line, hit = cands[0]
            if pattern is TOTAL_WEAK:  # several "Total" lines: the largest is the grand total
                line, hit = max(cands, key=lambda c: c[1].value)
            return found(doc, fmt(hit.value), hit.start, hit.end, score=score,
                         evidence=f"label:{'total' if pattern is TOTAL_WEAK else 'grand total'}", currency=hit.currency)
    hits = [h for h in find_amounts(doc.text) if h.decimals or h.currency]
    if not hits:
        return None
    hit = max(hits, key=lambda h: h.value)
    return found(doc, fmt(hit.value), hit.start, hit.end, score=0.5, evidence="largest amount", currency=hit.currency)


def _first_after(doc: Document, pattern: re.Pattern[str], exclude: Sequence[re.Pattern[str]],
                 last: bool = False) -> list[AmountHit]:
    out = []
    for line in lines(doc):
        m = pattern.search(line.text)
        if not m or any(x.search(line.text) for x in exclude):
            continue
        hits = _line_amounts(doc, line, line.start + m.end())
        if hits:
            out.append(hits[-1] if last else hits[0])
    return out


_TAX_IDS = label_pattern(["tax id", "vat id", "vat number", "vat no", "ust-id", "ustid", "ust-idnr", "btw nummer",
                          "vat#", "tax invoice", "n° tva", "tva intra", "steuernummer", "vat reg", "tax number"])


def _net_tax_candidates(doc: Document) -> tuple[list[AmountHit], list[AmountHit]]:
    nets = _first_after(doc, NET, [TAX])
    nets += _first_after(doc, NET, [])
    taxes = _first_after(doc, TAX, [_TAX_IDS, NET, TOTAL_STRONG], last=True)
    return nets, taxes


def _consistent(doc: Document) -> tuple[AmountHit, AmountHit] | None:
    """A (net, tax) pair that adds up to the total, if the document has one: labelled net and tax amounts, else a
    summary row of three columns ``net tax gross`` (``Total 24.99 5.00 29.99``) whose gross is the total."""
    total = total_amount(doc)
    if total is None:
        return None
    t = Decimal(total.value)
    cent = Decimal("0.02")
    nets, taxes = _net_tax_candidates(doc)
    for n in nets:
        for x in taxes:
            if abs(n.value + x.value - t) <= cent and n.value != t:
                return n, x
    for line in lines(doc):
        hits = [h for h in find_amounts(line.text, offset=line.start) if h.decimals]
        for a, b, c in zip(hits, hits[1:], hits[2:]):
            if abs(c.value - t) <= cent and abs(a.value + b.value - c.value) <= cent and b.value > 0 \
                    and a.value > b.value:
                return a, b
    return None


def net_amount(doc: Document) -> Found | None:
    """The net amount: one that adds up with a tax amount to the total if any, else the first labelled one."""
    pair = _consistent(doc)
    hit = pair[0] if pair else next((h for h in _net_tax_candidates(doc)[0] if h.value), None)
    if hit is None:
        return None
    return found(doc, fmt(hit.value), hit.start, hit.end, score=0.9 if pair else 0.6, evidence="label:net",
                 currency=hit.currency)


def tax_amount(doc: Document) -> Found | None:
    """The tax amount: the last amount on a tax-labelled line (after the rate and base), preferring one that adds up
    with the net amount to the total."""
    pair = _consistent(doc)
    hit = pair[1] if pair else next(iter(_net_tax_candidates(doc)[1]), None)
    if hit is None:
        return None
    return found(doc, fmt(hit.value), hit.start, hit.end, score=0.9 if pair else 0.6, evidence="label:tax",
                 currency=hit.currency)
