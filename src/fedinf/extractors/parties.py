"""The issuer (seller) of a document, by heuristics a human reviewer would use.

1. A seller label (``Seller:``, ``Service Provider:``, ``Sold by``, ``Verkäufer``, ``Sprzedawca``, ``Fournisseur``,
   ``Leverancier`` ...): the name on the same line after it, or on the next line.
2. Else the first line that looks like a company name - it ends in (or contains, before a separator) a legal form
   (GmbH, AG, Ltd, Limited, Inc, LLC, B.V., S.A., SAS, Pty Ltd, ...) and its words are capitalised - outside the
   recipient's block (the lines after ``Bill to``, ``Rechnung an``, ``Buyer``, ``Klant``... ) and not the recipient
   named elsewhere. A name that also appears next to a VAT id, IBAN or e-mail/web domain scores higher.
3. Else the first non-empty line of the document that is not a title ("Invoice", "Rechnung") or a date/number.
"""

from __future__ import annotations

import re

from fedinf.documents import Document
from fedinf.extractors.base import Found, Line, found, label_pattern, lines

LEGAL = (r"(?:GmbH\s*&\s*Co\.?\s*KG|GmbH|gGmbH|AG|KG|OHG|UG|e\.K\.|Ltd\.?|Limited|Inc\.?|Incorporated|LLC|L\.L\.C\.|"
         r"LLP|PLC|plc|Corp\.?|Corporation|Co\.|B\.\s?V\.?|BV|N\.\s?V\.?|NV|S\.\s?A\.?|SA|SAS|SARL|S\.à\s?r\.l\.|"
         r"S\.r\.l\.|SRL|S\.p\.A\.|SpA|Sp\.\s?z\s?o\.\s?o\.|spółka akcyjna|Oy|AB|ApS|A/S|AS|ASA|Pty\.?\s?Ltd\.?|"
         r"Pvt\.?\s?Ltd\.?|Private Limited|Pte\.?\s?Ltd\.?|SE|KGaA|GesmbH)")
_LEGAL_RE = re.compile(r"^(?P<name>[^\n]{1,80}?\b" + LEGAL + r")(?=$|[\s,;:|•–—(]|\s[-–—])")
_SEP = re.compile(r"\s+[-–—•|·]\s+|\s{3,}|\t|,\s(?=\d)")
SELLER = label_pattern([
    "seller", "vendor", "supplier", "service provider", "sold by", "provided by", "issued by", "from",
    "verkäufer", "lieferant", "rechnungssteller", "sprzedawca", "fournisseur", "vendeur", "émetteur",
    "leverancier", "verkoper", "titulaire du compte", "account holder", "kontoinhaber", "payable to",
    "in favor of", "in favour of", "begünstigter",
])
BUYER = label_pattern([
    "bill to", "billed to", "invoice to", "sold to", "ship to", "customer", "buyer", "client", "to:", "recipient",
    "rechnung an", "rechnungsempfänger", "kunde", "lieferadresse", "nabywca", "odbiorca", "facturé à", "destinataire",
    "factuuradres", "afleveradres", "klant", "t.a.v", "attn", "guest name", "billing address", "shipping address",
    "billing contact", "technical contact",
])
_HEADER_WORDS = {"description", "quantity", "qty", "price", "amount", "total", "unit", "tax", "taxes", "rate", "item",
                 "items", "vat", "discount", "disc", "menge", "preis", "betrag", "beschreibung", "omschrijving",
                 "prijs", "bedrag", "désignation", "montant", "prix", "quantité"}
_BARE_TO = re.compile(r"(?i)^\s*(to|an|à|aan|for)\s*:?\s*$")
_CONNECTORS = {"&", "and", "und", "et", "en", "de", "van", "der", "den", "la", "le", "du", "of", "the", "-", "+",
               "for", "des", "di", "da", "y", "i"}
_TITLE_LINE = re.compile(r"(?i)^\s*(tax\s+)?(invoice|rechnung|facture|factuur|faktura|receipt|quittung|bill|"
                         r"payment receipt|kopie factuur|original)\b")


def _looks_like_name(name: str) -> bool:
    words = name.replace(",", " ").split()
    if not 1 <= len(words) <= 8 or "@" in name or "http" in name.lower() or "www." in name.lower():
        return False
    return all(w.lower() in _CONNECTORS or re.search(r"[A-Z0-9À-Ý&]", w) for w in words)


def _clean(name: str) -> str:
    name = _SEP.split(name.strip())[0]
    return name.strip(" :,;.-–—•|").strip() + ("." if name.strip().endswith(".") and
                                                 re.search(r"\b(?:Inc|Ltd|Co|B\.V|N\.V|S\.A)\.$", name.strip())
                                                 else "")


def _buyer_lines(all_lines: list[Line]) -> set[int]:
    """Indexes of lines in a recipient's block: the label's line (its text after the label) and the next 5."""
    out: set[int] = set()
    for line in all_lines:
        if BUYER.search(line.text) or _BARE_TO.match(line.text):
            out.update(range(line.index, line.index + 6))
    return out


def _seller_label(doc: Document, all_lines: list[Line]) -> Found | None:
    for line in all_lines:
        m = SELLER.search(line.text)
        if not m or BUYER.search(line.text[:m.start()]):
            continue
        after = line.text[m.end():]
        if not (re.match(r"\s*(?::|$)", after) or " " in m.group(0).strip()):
            continue  # a single word ("Seller", "From") is a label only before a colon or alone on its line
        rest = after.strip(" :#-–—")
        cands = [(rest, line.start + line.text.index(rest))] if rest else []
        nxt = next((l for l in all_lines[line.index + 1:line.index + 4] if l.text.strip()), None)
        if nxt is not None:
            cands.append((nxt.text.strip(), nxt.start + nxt.text.index(nxt.text.strip())))
        for text, start in cands:
            name = _clean(text)
            if name and _looks_like_name(name) and not _TITLE_LINE.match(name):
                return found(doc, name, start, start + len(name), score=0.85, evidence="label:seller")
    return None


def _legal_candidates(doc: Document, all_lines: list[Line]) -> list[Found]:
    buyer = _buyer_lines(all_lines)
    recipients = {(_clean(all_lines[i].text)).lower() for i in buyer if i < len(all_lines)}
    out = []
    for line in all_lines:
        text = line.text.strip()
        m = _LEGAL_RE.match(text)
        if not m:
            continue
        name = _clean(m.group("name"))
        if not _looks_like_name(name) or (line.index in buyer) or name.lower() in recipients:
            continue
        start = line.start + line.text.index(text)
        score = 0.75 - min(line.index, 50) * 0.002
        word = re.sub(r"[^a-z0-9]", "", name.split()[0].lower())
        if len(word) >= 3 and re.search(r"(?:@|www\.|https?://)[\w.-]*" + re.escape(word), doc.text, re.IGNORECASE):
            score += 0.1  # its own web or mail domain appears
        if doc.text.count(name) > 1:
            score += 0.05
        out.append(found(doc, name, start, start + len(name), score=score, evidence="legal form"))
    return out


def issuer(doc: Document) -> Found | None:
    all_lines = lines(doc)
    hit = _seller_label(doc, all_lines)
    if hit:
        return hit
    cands = _legal_candidates(doc, all_lines)
    if cands:
        return max(cands, key=lambda f: f.score)
    buyer = _buyer_lines(all_lines)
    for line in all_lines:
        text = line.text.strip()
        words = {re.sub(r"[^\w]", "", w).lower() for w in text.split()}
        if len(words & _HEADER_WORDS) >= 2:
            continue  # a table header row, not a name
        if (text and line.index not in buyer and not _TITLE_LINE.match(text) and _looks_like_name(_clean(text))
                and re.search(r"[A-Za-z]{3}", text) and not re.search(r"\d{3}", text)):
            name = _clean(text)
            start = line.start + line.text.index(text)
            return found(doc, name, start, start + len(name), score=0.4, evidence="first line")
    return None
