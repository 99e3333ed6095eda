"""Built-in tasks: ``invoice`` and ``utility_bill``. Their output schemas are pydantic models; both hold personal data
(names, addresses, account numbers), so their policy assumes at least ``confidential``: with the default zones they
run on-prem only.

Amounts are JSON numbers (two decimals after normalisation), dates ISO strings, currency ISO 4217 codes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from fedinf.advisories.schema import ADVISORY_RECORD_SCHEMA
from fedinf.tasks.spec import TaskSpec

Text = Annotated[str, Field(max_length=120)]
Label = Annotated[str, Field(max_length=60)]
Date = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="YYYY-MM-DD")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineItem(_Record):
    description: Label
    quantity: float | None
    unit_price: float | None
    amount: float | None


class Invoice(_Record):
    issuer: Text | None = Field(description="The company that issued the invoice (the seller).")
    invoice_number: Annotated[str, Field(max_length=64)] | None
    invoice_date: Date | None
    due_date: Date | None
    currency: Currency | None
    net_amount: float | None = Field(description="Total before tax.")
    tax_amount: float | None
    total_amount: float | None = Field(description="Total including tax.")
    line_items: list[LineItem] = Field(max_length=10)


class UsageLine(_Record):
    description: Label
    quantity: float | None
    unit: Annotated[str, Field(max_length=16)] | None
    amount: float | None


class UtilityBill(_Record):
    provider: Text | None = Field(description="The utility company that issued the bill.")
    account_holder: Text | None = Field(description="The customer's name.")
    account_number: Annotated[str, Field(max_length=64)] | None
    service_address: Text | None = Field(description="Where the service is supplied.")
    billing_period_start: Date | None
    billing_period_end: Date | None
    bill_date: Date | None
    due_date: Date | None
    amount_due: float | None
    currency: Currency | None
    usage_total: float | None = Field(description="The consumption billed for the period.")
    usage_unit: Annotated[str, Field(max_length=16)] | None = Field(description="kWh, therms, CCF, gallons...")
    usage_lines: list[UsageLine] = Field(max_length=5)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with every property required (so the model always writes every key)."""
    schema = model.model_json_schema()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


_PII_POLICY = {"min_data_class": "confidential"}

INVOICE = TaskSpec.model_validate({
    "name": "invoice",
    "description": "Invoices to records: issuer, number, dates, totals, tax, currency, line items.",
    "inputs": ["pdf", "image", "text", "html", "json"],
    "prompt": "Read this invoice and fill in the JSON record. The issuer is the seller, not the customer.\n\n"
              "Invoice:\n{document}",
    "output_schema": schema_of(Invoice),
    "policy": _PII_POLICY,
    "fields": {
        "issuer": {"extractor": "issuer", "normalize": "text", "min_score": 0.5},
        "invoice_number": {"extractor": "invoice_number", "normalize": "id"},
        "invoice_date": {"extractor": "invoice_date", "normalize": "date"},
        "due_date": {"extractor": "due_date", "normalize": "date"},
        "currency": {"extractor": "currency", "normalize": "currency"},
        "net_amount": {"extractor": "net_amount", "normalize": "amount"},
        "tax_amount": {"extractor": "tax_amount", "normalize": "amount"},
        "total_amount": {"extractor": "total_amount", "normalize": "amount"},
    },
    "validators": [
        {"check": "net_plus_tax", "fields": ["net_amount", "tax_amount", "total_amount"]},
        {"check": "line_items_sum", "items": "line_items", "fields": ["net_amount", "total_amount"]},
        {"check": "date_order", "fields": ["invoice_date", "due_date"]},
        {"check": "required", "fields": ["issuer", "invoice_date", "total_amount", "currency"]},
    ],
    "max_tokens": 512,
    "max_reasks": 0,
    "limits": {"chunk_tokens": 1500, "max_chunks": 3},
})

UTILITY_BILL = TaskSpec.model_validate({
    "name": "utility_bill",
    "description": "Utility bills (energy, water, telecom) to records for customer verification.",
    "inputs": ["pdf", "image", "text", "html", "json"],
    "prompt": "Read this utility bill and fill in the JSON record. The provider is the company that sent the "
              "bill; the account holder is the customer it is addressed to.\n\nBill:\n{document}",
    "output_schema": schema_of(UtilityBill),
    "policy": _PII_POLICY,
    "fields": {
        "provider": {"extractor": "bill_provider", "normalize": "text", "min_score": 0.5},
        "account_holder": {"extractor": "account_holder", "normalize": "text"},
        "account_number": {"extractor": "bill_account_number", "normalize": "id"},
        "service_address": {"extractor": "service_address", "normalize": "text"},
        "billing_period_start": {"extractor": "service_period_start", "normalize": "date"},
        "billing_period_end": {"extractor": "service_period_end", "normalize": "date"},
        "bill_date": {"extractor": "bill_date", "normalize": "date"},
        "due_date": {"extractor": "bill_due_date", "normalize": "date"},
        "amount_due": {"extractor": "amount_due", "normalize": "amount"},
        "currency": {"extractor": "currency", "normalize": "currency"},
        "usage_total": {"extractor": "usage_total", "normalize": "amount"},
        "usage_unit": {"extractor": "usage_unit", "normalize": "text"},
    },
    "validators": [
        {"check": "date_order", "fields": ["billing_period_start", "billing_period_end"]},
        {"check": "date_order", "fields": ["bill_date", "due_date"]},
        {"check": "period_length", "fields": ["billing_period_start", "billing_period_end"]},
        {"check": "bill_after_period", "fields": ["billing_period_end", "bill_date"]},
        {"check": "unique_lines", "items": "usage_lines", "item_amount": "description"},
        {"check": "required", "fields": ["provider", "account_holder", "amount_due", "currency"]},
    ],
    "min_confidence": 0.45,
    "model_input": "snippets",
    "max_tokens": 400,
    "max_reasks": 0,
    "limits": {"chunk_tokens": 1500, "max_chunks": 3},
})

# Security advisories to OSV + remediation (public data: eligible for cloud models; see fedinf.advisories.task)
ADVISORY = TaskSpec.model_validate({
    "name": "advisory",
    "description": "Security advisory text (NVD/CVE, vendor page, GitHub advisory; text, HTML, PDF or JSON) to an "
                   "OSV record plus remediation (upgrade to, workaround, detection).",
    "inputs": ["text", "html", "json", "pdf"],
    "system": "You summarise security advisories into JSON. Use only facts stated in the advisory; null when absent.",
    "output_schema": ADVISORY_RECORD_SCHEMA,
    "policy": {"min_data_class": "public"},
    "builder": "advisory",
    "max_tokens": 256,
    "max_reasks": 0,
    "limits": {"chunk_tokens": 1200, "max_chunks": 1},
})

BUILTIN: dict[str, TaskSpec] = {t.name: t for t in (INVOICE, UTILITY_BILL, ADVISORY)}
