"""Government identifiers: US SSN/ITIN (invalid ranges rejected), passports and driver licences (with context),
UK NHS number and NINO, Spanish DNI/NIE, India Aadhaar, Canada SIN."""

from __future__ import annotations

import re

from fedinf.privacy.checksums import aadhaar_ok, digits, es_nif_ok, luhn_ok, ssn_ok, uk_nhs_ok
from fedinf.privacy.detector import PatternDetector

_SSN_CONTEXT = ("ssn", "social security", "social", "ss#", "ss #", "ssa", "taxpayer", "tin", "itin")


def _ssn(value: str) -> bool:
    d = digits(value)
    return ssn_ok(d) and not d.startswith("9")


def _itin(value: str) -> bool:
    d = digits(value)
    return len(d) == 9 and d[0] == "9" and (50 <= int(d[3:5]) <= 65 or 70 <= int(d[3:5]) <= 99)


def _nhs(value: str) -> bool:
    return uk_nhs_ok(digits(value))


def _aadhaar(value: str) -> bool:
    return aadhaar_ok(digits(value))


def _sin(value: str) -> bool:
    d = digits(value)
    return len(d) == 9 and d[0] not in "08" and luhn_ok(d)


_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino(value: str) -> bool:
    s = value.replace(" ", "").upper()
    return s[:2] not in _NINO_BAD_PREFIX and s[0] not in "DFIQUV" and s[1] not in "DFIOQUV"


DETECTORS = [
    PatternDetector(  # dashed/spaced SSN is distinctive enough alone; bare 9 digits need context.
        # Scored above the "00"-prefixed international phone shape: 001-23-4567 is an SSN, not +1 23 4567.
        name="us_ssn", entity="US_SSN", needs=("#digit",),
        pattern=r"(?<![\w\-.])\d{3}([ \-.])\d{2}\1\d{4}(?![\w\-]|\.\d)",
        validate=_ssn, context=_SSN_CONTEXT, score=0.9, context_score=1.0, scope="digits", min_digits=9,
    ),
    PatternDetector(
        name="us_ssn_bare", entity="US_SSN", needs=("#digit",),
        pattern=r"(?<![\w\-.])\d{9}(?![\w\-]|\.\d)",
        validate=_ssn, context=_SSN_CONTEXT, context_required=True, scope="digits", min_digits=9,
    ),
    PatternDetector(
        name="us_itin", entity="US_ITIN", needs=("#digit",),
        pattern=r"(?<![\w\-.])9\d{2}[ \-]?\d{2}[ \-]?\d{4}(?![\w\-])",
        validate=_itin, context=("itin", "taxpayer", "tax id", "tin"), context_required=True, scope="digits",
        min_digits=9,
    ),
    PatternDetector(
        name="passport", entity="PASSPORT_NUMBER", needs=("passport", "passeport", "reisepass", "pasaporte"),
        pattern=r"(?<![\w\-])[A-Z0-9]{0,2}\d{6,9}(?![\w\-])",
        context=("passport", "passeport", "reisepass", "pasaporte", "passport no", "passport number"),
        context_required=True, window=40, scope="digits", min_digits=6,
    ),
    PatternDetector(
        name="driver_license", entity="DRIVER_LICENSE",
        needs=("licen", "dl", "driving", "driver", "führerschein", "permis"),
        pattern=r"(?<![\w\-])(?:[A-Z]{1,2}[\- ]?\d{4,14}|\d{6,14}|[A-Z]\d{3}-\d{4}-\d{4}(?:-\d{1,2})?)(?![\w\-])",
        context=("driver's license", "drivers license", "driver license", "driver's licence", "driving licence",
                 "driving license", "licence number", "license number", "license no", "dl", "dl#", "lic",
                 "führerschein", "permis de conduire"),
        context_required=True, window=40, scope="digits", min_digits=4, before=4,
    ),
    PatternDetector(
        name="uk_nhs", entity="UK_NHS", needs=("#digit",),
        pattern=r"(?<![\w\-.])\d{3}[ \-]?\d{3}[ \-]?\d{4}(?![\w\-])",
        validate=_nhs, context=("nhs", "national health", "health service", "patient"), context_required=True,
        scope="digits", min_digits=10,
    ),
    PatternDetector(
        name="uk_nino", entity="UK_NINO", needs=("#digit",), flags=re.IGNORECASE,
        pattern=r"(?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])",
        validate=_nino, context=("national insurance", "nino", "ni number", "nin"), score=0.6, scope="digits",
        min_digits=6, before=4, after=4,
    ),
    PatternDetector(
        name="es_nif", entity="ES_NIF", needs=("#digit",), flags=re.IGNORECASE,
        pattern=r"(?<![A-Za-z0-9])[XYZ0-9]\d{7}[ \-]?[A-Z](?![A-Za-z0-9])",
        validate=es_nif_ok, context=("dni", "nie", "nif", "documento"), score=0.75, scope="digits", min_digits=7,
        before=2, after=3,
    ),
    PatternDetector(
        name="in_aadhaar", entity="IN_AADHAAR", needs=("#digit",),
        pattern=r"(?<![\w\-])[2-9]\d{3}[ \-]?\d{4}[ \-]?\d{4}(?![\w\-])",
        validate=_aadhaar, context=("aadhaar", "aadhar", "uidai", "uid"), context_required=True, scope="digits",
        min_digits=12,
    ),
    PatternDetector(
        name="ca_sin", entity="CA_SIN", needs=("#digit",),
        pattern=r"(?<![\w\-])\d{3}[ \-]?\d{3}[ \-]?\d{3}(?![\w\-])",
        validate=_sin, context=("sin", "social insurance", "numéro d'assurance sociale", "nas"),
        context_required=True, scope="digits", min_digits=9,
    ),
]
