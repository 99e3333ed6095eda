"""IBANs (validated: country length + ISO 13616 mod-97) and account / customer numbers by label."""

from __future__ import annotations

import re

from fedinf.documents import Document
from fedinf.extractors.base import Found, found, label_pattern, lines, near_lines

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]){11,30})\b")


def iban_valid(iban: str) -> bool:
    """True if ``iban`` (spaces allowed) has its country's length and passes the mod-97 check."""
    s = re.sub(r"\s", "", iban).upper()
    if len(s) < 15 or IBAN_LENGTHS.get(s[:2]) != len(s) or not s.isalnum():
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


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
