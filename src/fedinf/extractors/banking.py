"""IBANs (validated: country length + ISO 13616 mod-97) and account / customer numbers by label."""

from __future__ import annotations

import re

from fedinf.documents import Document
from fedinf.privacy.checksums import iban_ok
from fedinf.extractors.base import Found, found, label_pattern, lines, near_lines

_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]){11,30})\b")


def iban_valid(iban: str) -> bool:
    """True if ``iban`` (spaces allowed) has its country's length and passes the mod-97 check (the same check the
    PII detector uses: one implementation, in :mod:`fedinf.privacy.checksums`)."""
    return iban_ok(iban)


def find_ibans(doc: Document) -> list[Found]:
    """Every valid IBAN, written without spaces. Grouped IBANs may be followed by other text: the longest valid
    prefix of whole characters is taken."""
    out = []
    for m in _IBAN.finditer(doc.text):
        raw = m.group(1)
        compact_positions = [i for i, c in enumerate(raw) if not c.isspace()]
        for n in range(min(34, len(compact_positions)), 14, -1):
            end = compact_positions[n - 1] + 1
            cand = re.sub(r"\s", "", raw[:end])
            if iban_valid(cand):
                out.append(found(doc, cand, m.start(1), m.start(1) + end, score=0.99, evidence="mod-97 valid"))
                break
    return out


def iban(doc: Document) -> Found | None:
    ibans = find_ibans(doc)
    return ibans[0] if ibans else None


ACCOUNT = label_pattern([
    "account number", "account no", "account #", "acct no", "account id", "customer number", "customer no",
    "customer id", "client id", "client number", "id.client", "id client", "numéro de client", "n° client",
    "référence client", "kundennummer", "kundennr", "kunden-nr", "vertragskonto", "vertragsnummer",
    "klantnummer", "klant nummer", "contractnummer", "numer klienta", "billing id", "contract account",
])
_VALUE = re.compile(r"(?<![\w-])([A-Z0-9][A-Z0-9/\-.]{2,30}[A-Z0-9])(?![\w-])", re.IGNORECASE)


def account_number(doc: Document) -> Found | None:
    """The customer/account number: the first id-like token (with a digit) after an account label, on the same line
    or the next two lines."""
    all_lines = lines(doc)
    for line in all_lines:
        m = ACCOUNT.search(line.text)
        if not m:
            continue
        for i, cand_line in enumerate(near_lines(all_lines, line.index, 2)):
            start = line.start + m.end() if i == 0 else cand_line.start
            for v in _VALUE.finditer(doc.text[start:cand_line.end]):
                if (re.search(r"\d", v.group(1)) and not ACCOUNT.search(v.group(1))
                        and not re.fullmatch(r"(?:19|20)\d\d|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", v.group(1))):
                    s = start + v.start(1)
                    return found(doc, v.group(1), s, s + len(v.group(1)), score=0.8 if i == 0 else 0.65,
                                 evidence="label:account number")
    return None
