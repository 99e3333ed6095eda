"""Explicit entity-type mappings between the corpus, Presidio and fedinf, onto the canonical types scored.

A type mapped to nothing is not scored: gold spans of that type count as 'O' (no entity), predictions of that type
are ignored (neither right nor wrong). The location family follows presidio-research: street addresses, cities,
countries and postcodes are all LOCATION.
"""

from __future__ import annotations

GOLD: dict[str, str] = {
    "PERSON": "PERSON",
    "STREET_ADDRESS": "LOCATION", "ADDRESS": "LOCATION", "GPE": "LOCATION", "LOCATION": "LOCATION",
    "ZIP_CODE": "LOCATION",
    "PHONE_NUMBER": "PHONE_NUMBER", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE", "DATE_TIME": "DATE_TIME", "NRP": "NRP",
    # not scored: ORGANIZATION, TITLE, AGE, DOMAIN_NAME/URL (neither tool treats them as personal data by default)
}

PRESIDIO: dict[str, str] = {
    "PERSON": "PERSON", "LOCATION": "LOCATION", "PHONE_NUMBER": "PHONE_NUMBER", "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE", "DATE_TIME": "DATE_TIME", "NRP": "NRP",
    # ignored: URL, US_BANK_NUMBER, US_ITIN, US_PASSPORT, UK_NHS, MEDICAL_LICENSE, CRYPTO, MAC_ADDRESS, UUID, ...
}

FEDINF: dict[str, str] = {
    "PERSON": "PERSON", "STREET_ADDRESS": "LOCATION", "POSTAL_CODE": "LOCATION", "PHONE_NUMBER": "PHONE_NUMBER",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS", "DRIVER_LICENSE": "US_DRIVER_LICENSE", "DATE_OF_BIRTH": "DATE_TIME",
    # ignored: secrets, health ids, other government/financial ids (the corpus has none of them)
}

SCOPE_ALL: tuple[str, ...] = ("PERSON", "LOCATION", "PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE",
                              "US_SSN", "IP_ADDRESS", "US_DRIVER_LICENSE", "DATE_TIME", "NRP")
SCOPE_ID: tuple[str, ...] = tuple(t for t in SCOPE_ALL if t not in ("DATE_TIME", "NRP"))


def describe() -> str:
    """The mappings as a Markdown table for the results file."""
    rows = ["| canonical | corpus types | Presidio types | fedinf types |", "| --- | --- | --- | --- |"]
    for canon in SCOPE_ALL:
        cols = [", ".join(sorted(k for k, v in m.items() if v == canon)) or "-" for m in (GOLD, PRESIDIO, FEDINF)]
        rows.append(f"| {canon} | " + " | ".join(cols) + " |")
    rows.append("| (not scored) | ORGANIZATION, TITLE, AGE, DOMAIN_NAME | URL, US_BANK_NUMBER, US_ITIN, US_PASSPORT, "
                "UK_NHS, MEDICAL_LICENSE, CRYPTO, ... | secrets, health ids, other national/financial ids |")
    return "\n".join(rows)
