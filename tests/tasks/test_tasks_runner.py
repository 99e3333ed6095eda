import pytest

import pdfgen
from fedinf.errors import NeedsOCR, PolicyViolation
from fedinf.tasks import INVOICE, UTILITY_BILL, TaskRegistry, TaskRunner
from fedinf.errors import ConfigError, NotFound

from scripted_client import ScriptedClient

INVOICE_LINES = [
    "Brightwater Energy GmbH", "Hauptstr. 1, 10115 Berlin", "USt-IdNr. DE123456789",
    "Rechnung an:", "Erika Mustermann", "Gartenweg 2", "12345 Musterstadt", "",
    "Rechnungsnummer: RE-2023-0042", "Rechnungsdatum: 15.03.2023", "Fällig am: 29.03.2023",
]
TOTALS = ["Zwischensumme 100,84 EUR", "MwSt. 19% 19,16 EUR", "Gesamtbetrag 120,00 EUR"]


def invoice_pdf() -> bytes:
    return pdfgen.table_pdf(["Pos", "Beschreibung", "Betrag"], [["1", "Strom", "84,03"], ["2", "Grundgebuehr", "16,81"]],
                            before=INVOICE_LINES, after=TOTALS)


def model_answer(**over):
    rec = {"issuer": "Brightwater Energy GmbH", "invoice_number": "RE-2023-0042", "invoice_date": "2023-03-15",
           "due_date": "2023-03-29", "currency": "EUR", "net_amount": 100.84, "tax_amount": 19.16,
           "total_amount": 120.0, "line_items": [{"description": "Strom", "quantity": 1, "unit_price": 84.03,
                                                  "amount": 84.03},
                                                 {"description": "Grundgebuehr", "quantity": 1,
                                                  "unit_price": 16.81, "amount": 16.81}]}
    rec.update(over)
    return rec


async def test_invoice_from_pdf_table_agrees_and_points_to_sources():
    client = ScriptedClient(lambda body: model_answer())
    result = await TaskRunner(client).run_bytes(INVOICE, invoice_pdf(), name="inv.pdf")
    r = result.to_dict()
    assert r["record"]["total_amount"] == 120.0 and r["record"]["invoice_date"] == "2023-03-15"
    assert r["fields"]["total_amount"]["source"] == "agree"
    assert r["fields"]["invoice_number"]["source"] == "agree"
    assert r["fields"]["total_amount"]["span"]["page"] == 1
    assert {c["name"]: c["passed"] for c in r["checks"]} == {
        "net_plus_tax_equals_total": True, "line_items_sum": True, "date_order": True}
    assert r["metadata"]["schema_valid"] and r["metadata"]["model"] == "scripted-1"
    assert r["metadata"]["data_class"] == "confidential"
    body = client.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == INVOICE.output_schema
    assert body["fedinf"] == {"data_class": "confidential", "max_reasks": 0}
    assert "RE-2023-0042" in body["messages"][-1]["content"]
    assert r["warnings"] == []


async def test_disagreement_and_failed_check_are_reported_per_field():
    client = ScriptedClient(lambda body: model_answer(total_amount=210.0, issuer="Erika Mustermann",
                                                      line_items=[]))
    r = (await TaskRunner(client).run_bytes(INVOICE, invoice_pdf(), name="inv.pdf")).to_dict()
    total = r["fields"]["total_amount"]
    assert total["source"] == "disagree" and total["model_value"] == 210.0 and total["extractor_value"] == 120.0
    assert r["record"]["total_amount"] == 120.0  # the extractor (a labelled total) wins, and says so
    assert r["fields"]["issuer"]["source"] == "disagree"
    assert any("total_amount: model and extractor disagree" in w for w in r["warnings"])


async def test_failed_check_is_attached_to_fields():
    pdf = pdfgen.text_pdf([["ACME Ltd.", "Invoice number: 7", "Subtotal 100.00 EUR", "VAT 15.00 EUR",
                            "Total 120.00 EUR"]])
    r = (await TaskRunner(ScriptedClient(lambda b: model_answer(net_amount=None, tax_amount=None,
                                                                total_amount=None, line_items=[])))
         .run_bytes(INVOICE, pdf, name="x.pdf")).to_dict()
    assert r["record"]["net_amount"] == 100.0 and r["record"]["tax_amount"] == 15.0
    failed = [c for c in r["fields"]["total_amount"]["checks"] if not c["passed"]]
    assert failed and failed[0]["name"] == "net_plus_tax_equals_total"
    assert any("net_plus_tax_equals_total failed" in w for w in r["warnings"])


async def test_model_only_values_failing_a_check_are_rejected_not_hidden():
    pdf = pdfgen.text_pdf([["ACME Ltd.", "Invoice number: 7", "Invoice date: 2024-03-01", "Total 120.00 EUR"]])
    answer = model_answer(net_amount=100.0, tax_amount=50.0, due_date="2024-01-01", line_items=[])
    r = (await TaskRunner(ScriptedClient(lambda b: answer)).run_bytes(INVOICE, pdf, name="x.pdf")).to_dict()
    assert r["record"]["net_amount"] is None and r["record"]["tax_amount"] is None
    assert r["fields"]["net_amount"] == {"value": None, "source": "rejected", "model_value": 100.0,
                                         "confidence": 0.3, "uncertain": False,
                                         "checks": r["fields"]["net_amount"]["checks"]}
    assert r["record"]["due_date"] is None and r["fields"]["due_date"]["model_value"] == "2024-01-01"
    assert r["record"]["total_amount"] == 120.0  # extractor-backed values stay
    assert sum("rejected because check" in w for w in r["warnings"]) == 3
    keep = INVOICE.model_copy(update={"reject_failed_model_values": False})
    r2 = (await TaskRunner(ScriptedClient(lambda b: answer)).run_bytes(keep, pdf, name="x.pdf")).to_dict()
    assert r2["record"]["net_amount"] == 100.0 and r2["fields"]["net_amount"]["source"] == "model"


async def test_model_only_fields_and_located_spans():
    text = ("Northwind Power Ltd.\nAccount number: AC-99812\nBill date: 02/01/2024\nService address: 1 Elm Road, "
            "Springfield\nPeriod 01/12/2023 - 31/12/2023\nAmount due: 56.20 GBP\nDue date: 20/01/2024\n")
    answer = {"provider": "Northwind Power Ltd.", "account_holder": "Jane Doe", "account_number": "AC-99812",
              "service_address": "1 Elm Road, Springfield", "billing_period_start": "2023-12-01",
              "billing_period_end": "2023-12-31", "bill_date": "2024-01-02", "due_date": "2024-01-20",
              "amount_due": 56.2, "currency": "GBP", "usage_lines": []}
    r = (await TaskRunner(ScriptedClient(lambda b: answer)).run_bytes(UTILITY_BILL, text.encode(),
                                                                       name="bill.txt")).to_dict()
    f = r["fields"]
    # a model-only name the document does not contain is below the task's threshold: null with a warning
    assert f["account_holder"]["source"] == "low_confidence" and r["record"]["account_holder"] is None
    assert any(w.startswith("account_holder:") and "below the threshold" in w for w in r["warnings"])
    assert f["service_address"]["span"]["start"] == text.index("1 Elm Road")
    assert all(f[k]["source"] == "agree" for k in ("provider", "account_number", "billing_period_start",
                                                     "billing_period_end", "bill_date", "due_date", "amount_due",
                                                     "currency")), f
    assert r["metadata"]["schema_valid"]


async def test_bad_model_output_degrades_to_extractors_with_warning():
    from fedinf.errors import OutputValidationError

    client = ScriptedClient(fail=OutputValidationError("no valid JSON after 2 re-asks"))
    r = (await TaskRunner(client).run_bytes(INVOICE, invoice_pdf(), name="inv.pdf")).to_dict()
    assert r["record"]["total_amount"] == 120.0 and r["fields"]["total_amount"]["source"] == "extractor"
    assert any("model output rejected" in w for w in r["warnings"])
    assert r["metadata"]["schema_valid"]


async def test_document_errors_propagate():
    runner = TaskRunner(ScriptedClient())
    with pytest.raises(NeedsOCR):  # only with OCR off
        await runner.run_bytes(INVOICE.model_copy(update={"ocr": "off"}), pdfgen.image_only_pdf(), name="scan.pdf")


async def test_long_documents_are_split_and_combined():
    pages = [["Invoice number: 5", "filler " * 200], ["more " * 300], ["Total 9.99 EUR"]]
    spec = INVOICE.model_copy(update={"limits": INVOICE.limits.model_copy(update={"chunk_tokens": 400})})
    calls = []

    def reply(body):
        calls.append(body)
        return model_answer(issuer="Acme" if len(calls) == 2 else None, line_items=[])

    r = (await TaskRunner(ScriptedClient(reply)).run_bytes(spec, pdfgen.text_pdf(pages), name="long.pdf")).to_dict()
    assert 1 < len(calls) <= spec.limits.max_chunks
    assert r["record"]["issuer"] is not None
    assert r["metadata"]["model_calls"] == len(calls)


async def test_allowed_zones_fail_closed():
    spec = UTILITY_BILL.model_copy(update={"policy": UTILITY_BILL.policy.model_copy(
        update={"allowed_zones": ["onprem"]})})
    client = ScriptedClient()
    with pytest.raises(PolicyViolation):  # the client cannot tell zones: refuse
        await TaskRunner(client).run_bytes(spec, b"Amount due 1.00 EUR", name="b.txt")

    class Zoned(ScriptedClient):
        def targets(self, route):
            return [("gpt-x", "cloud")]

    zoned = Zoned()
    with pytest.raises(PolicyViolation):
        await TaskRunner(zoned).run_bytes(spec, b"Amount due 1.00 EUR", name="b.txt")
    assert zoned.bodies == []  # nothing was sent


def test_registry_config_tasks(tmp_path):
    (tmp_path / "po.yaml").write_text(
        "name: purchase_order\nprompt: 'PO: {document}'\noutput_schema:\n  type: object\n  properties:\n"
        "    po: {type: [string, 'null']}\n    total: {type: [number, 'null']}\n  required: [po, total]\n"
        "fields:\n  total: {extractor: total_amount, normalize: amount}\npolicy: {min_data_class: internal}\n")
    reg = TaskRegistry.from_entries([{"file": "po.yaml"}], base_dir=tmp_path)
    assert reg.names() == ["advisory", "invoice", "purchase_order", "utility_bill"]
    assert reg.get("purchase_order").policy.min_data_class.label == "internal"
    with pytest.raises(NotFound):
        reg.get("nope")
    bad = {"name": "x", "output_schema": {"type": "object", "properties": {"a": {}}},
           "fields": {"a": {"extractor": "no_such"}}}
    with pytest.raises(ConfigError) as exc:
        TaskRegistry.from_entries([{**bad, "bogus": 1}])
    assert "tasks[0].bogus" in exc.value.message
    with pytest.raises(ConfigError) as exc:
        TaskRegistry.from_entries([bad])
    assert "no_such" in exc.value.message


def test_builtins_are_confidential():
    assert INVOICE.policy.min_data_class.label == "confidential"
    assert UTILITY_BILL.policy.min_data_class.label == "confidential"
