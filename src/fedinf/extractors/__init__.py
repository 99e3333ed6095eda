"""Deterministic (Software 1.0) extractors: dates, amounts, currencies, IBANs, account and invoice numbers, the
issuer, and arithmetic checks. Each takes a :class:`~fedinf.documents.Document` and returns a
:class:`~fedinf.extractors.base.Found` (value + span + score + evidence) or None.

``EXTRACTORS`` maps the names tasks use in their config (``extractors: {field: name}``) to the functions.
"""

from __future__ import annotations

from collections.abc import Callable

from fedinf.documents import Document
from fedinf.extractors import amounts, banking, bill, dates, identifiers, parties
from fedinf.extractors.base import Found
from fedinf.extractors.checks import Check

Extractor = Callable[[Document], "Found | None"]


def _period(index: int) -> Extractor:
    def extract(doc: Document) -> Found | None:
        p = dates.billing_period(doc)
        return p[index] if p else None
    return extract


def _total_currency(doc: Document) -> Found | None:
    total = amounts.total_amount(doc)
    return amounts.document_currency(doc, near=total.span.start if total else None)


EXTRACTORS: dict[str, Extractor] = {
    "invoice_date": dates.invoice_date,
    "due_date": dates.due_date,
    "period_start": _period(0),
    "period_end": _period(1),
    "total_amount": amounts.total_amount,
    "net_amount": amounts.net_amount,
    "tax_amount": amounts.tax_amount,
    "currency": _total_currency,
    "iban": banking.iban,
    "account_number": banking.account_number,
    "invoice_number": identifiers.invoice_number,
    "issuer": parties.issuer,
    # layout-aware, label-driven (utility bills; see fedinf.extractors.bill)
    "bill_provider": bill.provider,
    "bill_account_number": bill.account_number,
    "account_holder": bill.account_holder,
    "service_address": bill.service_address,
    "bill_date": bill.bill_date,
    "bill_due_date": bill.due_date,
    "service_period_start": bill.period_start,
    "service_period_end": bill.period_end,
    "amount_due": bill.amount_due,
    "usage_total": bill.usage_total,
    "usage_unit": bill.usage_unit,
}

__all__ = ["EXTRACTORS", "Check", "Extractor", "Found", "run_extractors"]


def run_extractors(doc: Document, mapping: dict[str, str]) -> dict[str, Found]:
    """Run ``{field: extractor_name}`` over ``doc``; fields whose extractor finds nothing are left out."""
    out = {}
    for field, name in mapping.items():
        hit = EXTRACTORS[name](doc)
        if hit is not None:
            out[field] = hit
    return out
