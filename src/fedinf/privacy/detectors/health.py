"""Health identifiers: medical record numbers, health-plan/member ids, Medicare MBI, NPI (Luhn with the 80840
prefix), DEA numbers, ICD-10 codes. Most need context: the numbers alone look like any other number."""

from __future__ import annotations

import re

from fedinf.privacy.checksums import dea_ok, digits, npi_ok
from fedinf.privacy.detector import PatternDetector

_MRN_CONTEXT = ("mrn", "medical record", "med rec", "record number", "patient id", "patient number", "chart",
                "chart number", "hospital number", "case number", "patient no")
_PLAN_CONTEXT = ("member id", "member number", "member no", "member #", "member", "membership", "subscriber id", "subscriber", "policy number",
                 "policy no", "health plan", "insurance id", "beneficiary", "medicaid", "medicare", "group number",
                 "plan id", "insurance number", "hicn", "insured")
_ICD_CONTEXT = ("icd", "icd-10", "icd10", "diagnosis", "diagnoses", "diagnosed", "dx", "diagnostic code",
                "condition code", "assessment", "impression", "problem list", "history of", "hx")


def _npi(value: str) -> bool:
    return npi_ok(digits(value))


def _icd_dotted_ok(value: str) -> bool:
    """ICD-10-CM chapters: the letter and two digits; the part after the dot has a digit or is a 7th-character
    extension (``S72.001A``)."""
    head, tail = value.split(".", 1)
    return any(c.isdigit() for c in tail) and not (head[0] in "Tt" and head[1:] == "00")


def _id_ok(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= 4


DETECTORS = [
    PatternDetector(
        name="medical_record_number", entity="MEDICAL_RECORD_NUMBER",
        needs=("mrn", "medical", "record", "patient", "chart", "hospital", "case"),
        pattern=r"(?<![\w\-])[A-Z]{0,3}[\-#]?\d[\d\-]{3,14}\d(?![\w\-])",
        validate=_id_ok, context=_MRN_CONTEXT, context_required=True, window=32, scope="digits", min_digits=4,
        before=5, after=2,
    ),
    PatternDetector(
        name="health_plan_id", entity="HEALTH_PLAN_ID",
        needs=("member", "subscriber", "policy", "plan", "insur", "beneficiar", "medicaid", "medicare", "hicn",
               "group"),
        pattern=r"(?<![\w\-])[A-Z]{0,4}[\-]?\d[A-Z0-9\-]{4,17}(?![\w\-])",
        validate=_id_ok, context=_PLAN_CONTEXT, context_required=True, window=32,
        negative=("version", "release", "since", "years", "year"),
    ),
    PatternDetector(  # Medicare Beneficiary Identifier: a fixed, distinctive 11-character format
        name="us_mbi", entity="HEALTH_PLAN_ID", needs=("#digit",),
        pattern=r"(?<![A-Za-z0-9])[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d"
        r"-?[AC-HJKMNP-RT-Y]{2}\d{2}(?![A-Za-z0-9])",
        context=_PLAN_CONTEXT, score=0.75, scope="digits", before=1, after=13,
    ),
    PatternDetector(
        name="npi", entity="NPI", needs=("npi", "provider", "prescriber", "physician"),
        pattern=r"(?<![\w\-])[12]\d{9}(?![\w\-])",
        validate=_npi, context=("npi", "national provider", "provider", "prescriber", "physician"),
        context_required=True, scope="digits", min_digits=10,
    ),
    PatternDetector(
        name="dea", entity="DEA_NUMBER", needs=("dea",),
        pattern=r"(?<![A-Za-z0-9])[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}(?![A-Za-z0-9])",
        validate=dea_ok, context=("dea",), context_required=True,
    ),
    PatternDetector(
        name="icd10", entity="ICD10_CODE", needs=("icd", "diagnos", "dx", "code", "assessment", "impression"),
        pattern=r"(?<![A-Za-z0-9.])[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?(?![A-Za-z0-9])",
        context=_ICD_CONTEXT, context_required=True, window=40, flags=re.IGNORECASE,
    ),
    PatternDetector(  # the dotted form is distinctive without a keyword: "E11.9", "J45.909" (not "V1.2": versions)
        name="icd10_dotted", entity="ICD10_CODE", needs=("#digit",),
        pattern=r"(?<![\w.\-/])[A-TW-Z]\d{2}\.[0-9A-Z]{1,4}(?![\w]|[.\-/]\w)",
        validate=_icd_dotted_ok, context=_ICD_CONTEXT, score=0.7, context_score=0.95, scope="digits", before=4,
        after=2, negative=("version", "release", "python", "rfc", "section", "step", "cve", "table", "figure"),
    ),
]


