"""Invoice numbers: an id-like token (at least one digit) right after an invoice-number label in EN/FR/DE/NL/PL,
on the same line or the next line; else after a bare ``Invoice``/``Rechnung``/``Facture`` title or ``#``.
The value keeps its own characters (``INV/2023/03/0008``, ``FS/22/09/51``); a leading ``#`` or ``n°`` is dropped."""

from __future__ import annotations

import re

from fedinf.documents import Document
from fedinf.extractors.base import Found, block_value, found, label_pattern, lines, near_lines

INVOICE_NO = label_pattern([
    "invoice number", "invoice no", "invoice nr", "invoice #", "invoice num", "invoice id", "invoice:", "inv no",
    "bill number", "bill no", "receipt number", "receipt no", "document number", "vat invoice no",
    "rechnungsnummer", "rechnungs-nr", "rechnungsnr", "rechnung nr", "rechnung #", "rechnungs nr", "beleg-nr",
    "factuurnummer", "factuur nummer", "factuurnr", "factuur nr", "numéro de facture", "n° de facture",
    "facture n°", "facture no", "facture n", "faktura nr", "faktura vat nr", "numer faktury", "nota nr",
])
REFERENCE = label_pattern([
    "booking id", "booking number", "booking reference", "reservation number", "confirmation number",
    "receipt id", "transaction id", "reference number",
])
TITLE = label_pattern(["invoice", "rechnung", "facture", "factuur", "faktura", "tax invoice"])
_TOKEN = re.compile(r"(?<![\w/-])#?\s?([A-Z0-9][A-Z0-9/_\-.]*[A-Z0-9]|[0-9])(?![\w/])", re.IGNORECASE)
_NOT_ID = re.compile(r"^(?:19|20)\d\d$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$|^\d{4}-\d{2}-\d{2}$")


def _token_after(doc: Document, start: int, end: int) -> tuple[str, int] | None:
    for m in _TOKEN.finditer(doc.text[start:end]):
        tok = m.group(1).rstrip(".")
        if re.search(r"\d", tok) and not _NOT_ID.match(tok) and not INVOICE_NO.fullmatch(tok):
            return tok, start + m.start(1)
    return None


def invoice_number(doc: Document) -> Found | None:
    all_lines = lines(doc)
    for pattern, score in ((INVOICE_NO, 0.9), (TITLE, 0.6), (REFERENCE, 0.45)):
        for line in all_lines:
            m = pattern.search(line.text)
            if not m:
                continue
            if pattern is TITLE:
                t = re.match(r"\s*[:#]?\s*#?\s*([A-Z0-9][\w/\-.]{2,})", line.text[m.end():], re.IGNORECASE)
                if not t or not re.search(r"\d", t.group(1)):
                    continue
            elif not line.text[m.end():].strip(" :#.\t"):
                hit = block_value(all_lines, line.index)
                value = hit.text.strip().lstrip("#").strip() if hit is not None else ""
                if hit is not None and re.search(r"\d", value) and " " not in value:
                    s = hit.start + hit.text.index(value)
                    return found(doc, value, s, s + len(value), score=0.7, evidence="label:invoice number (column)")
            for i, cand in enumerate(near_lines(all_lines, line.index, 0 if pattern is TITLE else 1)):
                start = line.start + m.end() if i == 0 else cand.start
                after = _token_after(doc, start, cand.end)
                if after:
                    tok, s = after
                    return found(doc, tok, s, s + len(tok), score=score if i == 0 else score - 0.15,
                                 evidence={INVOICE_NO: "label:invoice number", TITLE: "title"}.get(
                                     pattern, "label:reference"))
    for line in all_lines:  # a line starting with '#'
        m = re.match(r"\s*#\s?([A-Z0-9][\w/\-.]*)", line.text, re.IGNORECASE)
        if m and re.search(r"\d", m.group(1)):
            s = line.start + m.start(1)
            return found(doc, m.group(1), s, s + len(m.group(1)), score=0.5, evidence="hash")
    return None
