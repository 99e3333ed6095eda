"""Utility-bill fields by label on the page layout: synthetic bills in four layouts (text PDFs), a photo of one (OCR),
plain-text bills, and the confidence rules (ambiguity, missing labels)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "extraction_eval"))

import bills  # noqa: E402
from fedinf.documents import load_bytes  # noqa: E402
from fedinf.extractors import run_extractors  # noqa: E402
from fedinf.tasks import UTILITY_BILL  # noqa: E402
from fedinf.tasks.normalize import same  # noqa: E402

MAPPING = {f: r.extractor for f, r in UTILITY_BILL.fields.items() if r.extractor}
KINDS = {f: r.normalize for f, r in UTILITY_BILL.fields.items()}


def _check(doc, truth):
    got = run_extractors(doc, MAPPING)
    wrong = {f: (exp, got[f].value if f in got else None) for f, exp in truth.items()
             if not same(KINDS[f], got[f].value if f in got else None, exp)}
    return got, wrong


@pytest.mark.parametrize("seed", range(8))
def test_every_layout_gives_every_core_field(seed):
    pdf, truth, layout = bills.bill_pdf(seed)
    got, wrong = _check(load_bytes(pdf, name="bill.pdf"), truth)
    assert not wrong, (layout, wrong)
    assert got["amount_due"].evidence.startswith("label:") and got["due_date"].evidence.startswith("label:")
    assert got["amount_due"].score >= 0.8


def test_dates_come_from_their_labels_not_from_position():
    text = ("Acme Power\nLast payment received 01/02/2026\nStatement Date: 01/20/2026\n"
            "Service from 12/15/2025 to 01/14/2026\nPayment Due Date: 02/10/2026\nAmount Due: $88.10\n")
    doc = load_bytes(text.encode(), name="b.txt")
    got = run_extractors(doc, MAPPING)
    assert got["bill_date"].value == "2026-01-20" and got["due_date"].value == "2026-02-10"
    assert (got["billing_period_start"].value, got["billing_period_end"].value) == ("2025-12-15", "2026-01-14")
    assert got["amount_due"].value == "88.10"
    assert doc.text[got["due_date"].span.start:got["due_date"].span.end] == "02/10/2026"


def test_label_above_value_in_columns():
    text = "Account Number        Due Date          Amount Due\n12-3456-789           03/04/2026        $1,204.50\n"
    got = run_extractors(load_bytes(text.encode(), name="b.txt"), MAPPING)
    assert got["account_number"].value == "12-3456-789" and got["amount_due"].value == "1204.50"
    assert got["due_date"].value == "2026-03-04" and got["due_date"].evidence == "label:due date/below"


def test_competing_values_are_ambiguous_and_score_low():
    text = "Amount Due: $10.00\nsomething\nAmount Due: $99.00\n"
    got = run_extractors(load_bytes(text.encode(), name="b.txt"), MAPPING)
    assert got["amount_due"].score <= 0.6 and "ambiguous" in got["amount_due"].evidence


def test_photo_of_a_bill_is_read_by_ocr():
    pytest.importorskip("rapidocr")
    from fedinf.documents.ocr import make_engine

    pdf, truth, _ = bills.bill_pdf(1)
    doc = load_bytes(bills.photo(pdf, 1), name="photo.bin", media_type="application/octet-stream",
                     ocr=make_engine("rapidocr"))
    assert doc.kind == "image" and doc.layout[0].source == "ocr"
    got, wrong = _check(doc, truth)
    assert len(wrong) <= 1, wrong  # OCR may misread one character; the rest must be right


@pytest.mark.parametrize("text, want", [
    ("Amount Due by 01/15/2026 $84.10\n", {"amount_due": "84.10", "due_date": "2026-01-15"}),
    ("Service From: 12/12/2025 To: 01/11/2026\nTotal $5.00\n",
     {"billing_period_start": "2025-12-12", "billing_period_end": "2026-01-11"}),
    ("Service Start: 12/12/2025\nService End: 01/11/2026\nTotal $5.00\n",
     {"billing_period_start": "2025-12-12", "billing_period_end": "2026-01-11"}),
    ("kWh Used: 652\nTotal $5.00\n", {"usage_total": "652", "usage_unit": "kWh"}),
    ("Due Date  Amount Due\n01/15/2026   $84.10\nMeter  Previous  Current  kWh Used\n123    1000      1652     652\n",
     {"amount_due": "84.10", "due_date": "2026-01-15", "usage_total": "652"}),
    ("CITY POWER\n\nJOHN A SMITH\nC/O JANE SMITH\n123 MAIN ST APT 4\nSPRINGFIELD IL 62704-1234\n\nAmount Due $5.00\n",
     {"account_holder": "JOHN A SMITH", "service_address": "123 MAIN ST APT 4, SPRINGFIELD IL 62704-1234"}),
])
def test_label_variants_seen_on_real_bills(text, want):
    got = run_extractors(load_bytes(text.encode(), name="b.txt"), MAPPING)
    assert {k: got[k].value if k in got else None for k in want} == want


def test_a_mailing_address_standing_in_for_the_service_address_is_flagged():
    text = "JOHN A SMITH\n123 MAIN ST\nSPRINGFIELD IL 62704\nAmount Due $5.00\n"
    got = run_extractors(load_bytes(text.encode(), name="b.txt"), MAPPING)
    assert got["service_address"].score < UTILITY_BILL.flag_below
