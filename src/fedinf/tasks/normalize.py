"""Normalisation of field values, shared by the merge (to compare model and extractor values) and the evaluation.

- ``date``: any date format -> ISO ``YYYY-MM-DD`` (see :mod:`fedinf.extractors.dates`)
- ``amount``: ``"1.234,56 €"``, ``1234.56``, ``"$1,234.56"`` -> ``Decimal('1234.56')``, written as a number with
  two decimals in records
- ``currency``: symbols and codes -> ISO 4217 (``€`` -> ``EUR``)
- ``id``: strip, drop a leading ``#``/``No.``/``n°``, remove inner spaces; compared case-insensitively
- ``iban``: spaces removed, upper case
- ``text``: whitespace collapsed; compared case-insensitively without punctuation and legal-form suffixes
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from fedinf.extractors.amounts import CODES, SYMBOLS, WORDS, parse_amount
from fedinf.extractors.dates import parse_date
from fedinf.extractors.parties import LEGAL


def normalize(kind: str, value: Any) -> Any:
    """The canonical value of ``value`` for ``kind``; None for empty or unparseable values."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind == "none":
        return value
    if kind == "date":
        return parse_date(str(value))
    if kind == "amount":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float, Decimal)):
            return Decimal(str(value)).quantize(Decimal("0.01"))
        d = parse_amount(str(value))
        return d.quantize(Decimal("0.01")) if d is not None else None
    if kind == "currency":
        s = str(value).strip()
        if s.upper() in CODES:
            return s.upper()
        return SYMBOLS.get(s) or WORDS.get(s.lower())
    if kind == "id":
        s = re.sub(r"^(?:#|no\.?|nr\.?|n°|nº)\s*", "", str(value).strip(), flags=re.IGNORECASE)
        return re.sub(r"\s+", "", s) or None
    if kind == "iban":
        return re.sub(r"\s+", "", str(value)).upper()
    return re.sub(r"\s+", " ", str(value)).strip()


_LEGAL_TAIL = re.compile(r"(?:[\s,]+" + LEGAL + r")+\.?\s*$", re.IGNORECASE)


def comparable(kind: str, value: Any) -> Any:
    """A key for equality: normalised, then case- and punctuation-insensitive for ids and text."""
    v = normalize(kind, value)
    if v is None:
        return None
    if kind == "id":
        return v.casefold()
    if kind == "text":
        s = _LEGAL_TAIL.sub("", v).strip() or v
        s = unicodedata.normalize("NFKD", s)
        s = "".join(c for c in s if not unicodedata.combining(c))
        return re.sub(r"[^\w]+", " ", s.casefold()).strip()
    return v


def same(kind: str, a: Any, b: Any) -> bool:
    ca, cb = comparable(kind, a), comparable(kind, b)
    return ca is not None and ca == cb


def to_record_value(kind: str, value: Any) -> Any:
    """The value as it goes into a JSON record (amounts as numbers with two decimals)."""
    v = normalize(kind, value)
    if kind == "amount" and v is not None:
        return float(v)
    return v
