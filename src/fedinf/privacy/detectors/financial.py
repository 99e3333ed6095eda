"""Financial identifiers: payment cards (Luhn + issuer prefix), IBAN (mod 97), US ABA routing numbers (checksum),
bank account numbers and SWIFT/BIC codes (with context)."""

from __future__ import annotations

import re

from fedinf.privacy.checksums import aba_ok, digits, iban_ok, luhn_ok
from fedinf.privacy.detector import PatternDetector

# Issuer prefixes (IIN ranges) with their lengths: Visa, Mastercard, Amex, Diners, Discover, JCB, UnionPay, Maestro.
_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}|3[47]\d{13}"
    r"|3(?:0[0-5]|[689]\d)\d{11,16}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
    r"|62\d{14,17}|(?:5[06-9]|6\d)\d{10,17})$"
)
_CARD_CONTEXT = ("card", "credit", "debit", "visa", "mastercard", "amex", "cc", "pan", "payment", "cvv", "expiry")


def _card_ok(value: str) -> bool:
    d = digits(value)
    return 13 <= len(d) <= 19 and len(set(d)) > 1 and luhn_ok(d) and bool(_CARD_PREFIX.match(d))


def _card_any_prefix_ok(value: str) -> bool:
    """With a card cue any Luhn-valid 13-19 digit number is a card: issuer ranges change and private-label cards
    use others."""
    d = digits(value)
    return 13 <= len(d) <= 19 and len(set(d)) > 2 and luhn_ok(d)


def _aba_ok(value: str) -> bool:
    return aba_ok(digits(value))


def _account_ok(value: str) -> bool:
    return 6 <= len(digits(value)) <= 17


DETECTORS = [
    PatternDetector(
        name="payment_card", entity="CREDIT_CARD", needs=("#digit",),
        pattern=r"(?<![\w\-.])(?:\d[ \-]?){12,18}\d(?![\w]|[\-.]\d)",
        validate=_card_ok, context=_CARD_CONTEXT, score=0.9, context_score=1.0, scope="digits", min_digits=13,
    ),
    PatternDetector(  # issuer ranges change; with card context any Luhn-valid 13-19 digit number counts
        name="payment_card_context", entity="CREDIT_CARD", needs=("#digit",),
        pattern=r"(?<![\w\-.])(?:\d[ \-]?){12,18}\d(?![\w]|[\-.]\d)",
        validate=_card_any_prefix_ok, context=_CARD_CONTEXT, context_required=True, context_score=0.95,
        scope="digits", min_digits=13,
    ),
    PatternDetector(
        name="iban", entity="IBAN_CODE", needs=("#digit",),
        pattern=r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Z0-9]{4}){2,7}(?:[ \-]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
        validate=iban_ok, context=("iban", "account", "transfer", "bank", "wire"), score=0.95, context_score=1.0,
        scope="digits", min_digits=2, before=4, after=40,
    ),
    PatternDetector(
        name="aba_routing", entity="US_BANK_ROUTING", needs=("#digit",),
        pattern=r"(?<![\w\-])\d{9}(?![\w\-])",
        validate=_aba_ok, context=("routing", "aba", "rtn", "transit", "wire", "ach"), context_required=True,
        scope="digits", min_digits=9,
    ),
    PatternDetector(
        name="bank_account", entity="BANK_ACCOUNT", needs=("account", "acct", "a/c", "konto", "compte"),
        pattern=r"(?<![\w\-])\d(?:[ \-]?\d){5,16}(?![\w\-])",
        validate=_account_ok, context=("account", "acct", "a/c", "account no", "konto", "kontonummer", "compte"),
        context_required=True, negative=("routing", "card", "phone"), window=32, scope="digits", min_digits=6,
    ),
    PatternDetector(
        name="swift_bic", entity="SWIFT_BIC", needs=("swift", "bic"),
        pattern=r"(?<![A-Za-z0-9])[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?![A-Za-z0-9])",
        context=("swift", "bic"), context_required=True, score=0.8,
    ),
]
