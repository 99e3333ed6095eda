"""Synthetic US utility bills for the extraction evaluation and the unit tests: rendered PDFs in several layouts
(fpdf2) and phone-photo-like images of them (rasterised with pypdfium2, rotated, blurred, noised, JPEG-compressed).

Everything is generated from a seed (``make_bill(seed)``), so a run is reproducible and nothing is read from disk.
The truth record uses the ``utility_bill`` task's field names; ``usage_total`` is the billed consumption.

Layouts (``LAYOUTS``) differ in where labels sit relative to their values (same line, below, in a right-hand summary
box, in a table header), in date formats (``03/14/2026``, ``Mar 14, 2026``, ``2026-03-14``, ``03/14/26``), in the
label words each utility uses ("Amount Due", "Total Amount Due", "Please Pay", "Balance Due"...), and they carry
distractors: a previous balance, a last-payment date, meter read dates, a remittance stub repeating some values.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Callable

FIRST = ["Maria", "James", "Linda", "Robert", "Patricia", "Michael", "Jennifer", "David", "Elizabeth", "William",
         "Susan", "Carlos", "Aisha", "Wei", "Priya", "Thomas", "Karen", "Daniel", "Nancy", "Kevin"]
LAST = ["Garcia", "Johnson", "Smith", "Williams", "Brown", "Miller", "Davis", "Rodriguez", "Martinez", "Wilson",
        "Anderson", "Taylor", "Nguyen", "Patel", "O'Brien", "Kowalski", "Hughes", "Bennett", "Foster", "Reyes"]
STREETS = ["Maple Ave", "Oak Street", "Pine Rd", "Cedar Lane", "Elm St", "Washington Blvd", "Lakeview Dr",
           "Sunset Ave", "Highland Rd", "Park Place", "River Rd", "Chestnut St", "Willow Way", "Main St"]
CITIES = [("Springfield", "IL", "62704"), ("Columbus", "OH", "43215"), ("Austin", "TX", "78701"),
          ("Portland", "OR", "97205"), ("Raleigh", "NC", "27601"), ("Madison", "WI", "53703"),
          ("Tucson", "AZ", "85701"), ("Albany", "NY", "12207"), ("Boise", "ID", "83702"), ("Tampa", "FL", "33602")]
UTILITIES = [
    ("Northern Lights Electric Company", "kWh", "Electric Service", (380, 1400), 0.14),
    ("Great Plains Gas & Power", "Therms", "Natural Gas Service", (20, 160), 1.15),
    ("City of Riverside Water Department", "Gallons", "Water Service", (2000, 9000), 0.006),
    ("Summit Energy Cooperative", "kWh", "Residential Electric", (450, 1800), 0.12),
    ("Bay Area Municipal Utilities", "CCF", "Water and Sewer", (4, 22), 4.20),
    ("Liberty Natural Gas Inc.", "CCF", "Gas Delivery", (15, 120), 1.05),
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def fmt_date(d: date, style: int) -> str:
    if style == 0:
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    if style == 1:
        return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"
    if style == 2:
        return d.isoformat()
    return f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}"


def money(x: float) -> str:
    return f"${x:,.2f}"


@dataclass
class Bill:
    """One synthetic bill: its values, and ``truth`` in the task's field names."""

    provider: str
    holder: str
    account: str
    street: str
    city: str
    mailing: tuple[str, str]
    bill_date: date
    due: date
    start: date
    end: date
    usage: int
    unit: str
    service: str
    charges: list[tuple[str, float]]
    previous: float
    payment: float
    amount_due: float
    date_style: int
    labels: dict[str, str]

    @property
    def truth(self) -> dict[str, Any]:
        return {"provider": self.provider, "account_holder": self.holder, "account_number": self.account,
                "service_address": f"{self.street}, {self.city}", "bill_date": self.bill_date.isoformat(),
                "due_date": self.due.isoformat(), "billing_period_start": self.start.isoformat(),
                "billing_period_end": self.end.isoformat(), "amount_due": round(self.amount_due, 2),
                "usage_total": float(self.usage), "usage_unit": self.unit}

    def d(self, value: date) -> str:
        return fmt_date(value, self.date_style)


LABELS = {
    "amount": ["Amount Due", "Total Amount Due", "Please Pay", "Total Due", "Amount Due Now", "Balance Due"],
    "due": ["Due Date", "Payment Due Date", "Please Pay By", "Due By", "Payment Due"],
    "bill_date": ["Bill Date", "Statement Date", "Billing Date", "Date Issued", "Invoice Date"],
    "account": ["Account Number", "Account #", "Account No.", "Acct Number", "Customer Account"],
    "service": ["Service Address", "Service Location", "Premises Address", "Service For"],
    "period": ["Billing Period", "Service Period", "Service From", "Billing Cycle"],
    "holder": ["Customer Name", "Account Name", "Name", "Customer"],
}


def make_bill(seed: int) -> Bill:
    rng = random.Random(seed)
    provider, unit, service, (lo, hi), rate = UTILITIES[seed % len(UTILITIES)]
    holder = f"{rng.choice(FIRST)} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {rng.choice(LAST)}" if rng.random() < 0.3 \
        else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    city, state, zip_ = rng.choice(CITIES)
    street = f"{rng.randint(12, 9890)} {rng.choice(STREETS)}" + (f" Apt {rng.randint(1, 40)}" if rng.random() < 0.2
                                                                  else "")
    mailing = (street, f"{city}, {state} {zip_}") if rng.random() < 0.8 else \
        (f"PO Box {rng.randint(100, 9999)}", f"{city}, {state} {zip_}")
    account = rng.choice([lambda: f"{rng.randint(1000, 9999)}-{rng.randint(10000, 99999)}-{rng.randint(1, 9)}",
                          lambda: str(rng.randint(10 ** 9, 10 ** 10 - 1)),
                          lambda: f"{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"])()
    end = date(2025, 1, 1) + timedelta(days=rng.randint(0, 600))
    start = end - timedelta(days=rng.randint(28, 33))
    bill_date = end + timedelta(days=rng.randint(1, 5))
    due = bill_date + timedelta(days=rng.randint(14, 25))
    usage = rng.randint(lo, hi)
    energy = round(usage * rate, 2)
    charges = [("Customer Charge", round(rng.uniform(8, 25), 2)), (f"{service} {usage:,} {unit}", energy),
               ("Delivery Charge", round(energy * rng.uniform(0.1, 0.4), 2))]
    taxes = round(sum(c for _, c in charges) * 0.06, 2)
    charges.append(("Taxes and Fees", taxes))
    current = round(sum(c for _, c in charges), 2)
    previous = round(rng.uniform(40, 300), 2)
    payment = previous if rng.random() < 0.8 else round(previous * 0.5, 2)
    amount_due = round(current + previous - payment, 2)
    labels = {k: rng.choice(v) for k, v in LABELS.items()}
    return Bill(provider=provider, holder=holder, account=account, street=street, city=f"{city}, {state} {zip_}",
                mailing=mailing, bill_date=bill_date, due=due, start=start, end=end, usage=usage, unit=unit,
                service=service, charges=charges, previous=previous, payment=payment, amount_due=amount_due,
                date_style=rng.randint(0, 3), labels=labels)


# ---------------------------------------------------------------------------------------------------- rendering

def _pdf() -> Any:
    from fpdf import FPDF

    pdf = FPDF(format="Letter", unit="pt")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    return pdf


def _text(pdf: Any, x: float, y: float, s: str, size: float = 10, bold: bool = False) -> None:
    pdf.set_font("helvetica", "B" if bold else "", size)
    pdf.text(x, y, s)


def _charges(pdf: Any, b: Bill, x: float, y: float, width: float = 300) -> float:
    _text(pdf, x, y, "Account Summary", 11, True)
    rows = [("Previous Balance", b.previous), ("Payment Received - Thank You", -b.payment)]
    y += 18
    for label, value in rows:
        _text(pdf, x, y, label)
        _text(pdf, x + width, y, money(value))
        y += 14
    y += 6
    _text(pdf, x, y, "Current Charges", 11, True)
    y += 16
    for label, value in b.charges:
        _text(pdf, x, y, label)
        _text(pdf, x + width, y, money(value))
        y += 14
    _text(pdf, x, y, "Total Current Charges", bold=True)
    _text(pdf, x + width, y, money(sum(c for _, c in b.charges)), bold=True)
    return y + 20


def _usage(pdf: Any, b: Bill, x: float, y: float) -> float:
    _text(pdf, x, y, "Meter Reading Details", 11, True)
    y += 16
    prev_read = 10000 + (b.usage * 7) % 50000
    cols = ["Meter", "Read Date", "Previous", "Current", "Usage"]
    xs = [x, x + 80, x + 170, x + 250, x + 330]
    for cx, c in zip(xs, cols):
        _text(pdf, cx, y, c, 9, True)
    y += 14
    vals = [f"M{(b.usage * 13) % 9000 + 1000}", b.d(b.end), f"{prev_read:,}", f"{prev_read + b.usage:,}",
            f"{b.usage:,} {b.unit}"]
    for cx, v in zip(xs, vals):
        _text(pdf, cx, y, v, 9)
    y += 16
    _text(pdf, x, y, f"Total Usage: {b.usage:,} {b.unit}", 10, True)
    return y + 20


def _stub(pdf: Any, b: Bill, y: float) -> None:
    pdf.dashed_line(36, y, 576, y)
    _text(pdf, 40, y + 20, "Please return this portion with your payment", 9)
    _text(pdf, 40, y + 38, b.provider, 9)
    _text(pdf, 40, y + 52, "PO Box 4400, Processing Center", 9)
    _text(pdf, 360, y + 20, f"Account: {b.account}", 9)
    _text(pdf, 360, y + 34, f"Due: {b.d(b.due)}", 9)
    _text(pdf, 360, y + 48, f"Amount Enclosed: $__________", 9)
    _text(pdf, 80, y + 80, b.holder, 9)
    _text(pdf, 80, y + 92, b.mailing[0], 9)
    _text(pdf, 80, y + 104, b.mailing[1], 9)


def layout_classic(b: Bill) -> bytes:
    """Logo top-left, summary box top-right with label: value pairs on the same line."""
    pdf = _pdf()
    _text(pdf, 40, 50, b.provider, 15, True)
    _text(pdf, 40, 64, "Customer Service 1-800-555-0199  www.example-utility.com", 8)
    pdf.rect(340, 36, 236, 100)
    rows = [(b.labels["account"], b.account), (b.labels["bill_date"], b.d(b.bill_date)),
            (b.labels["due"], b.d(b.due)), (b.labels["amount"], money(b.amount_due))]
    for i, (k, v) in enumerate(rows):
        _text(pdf, 348, 56 + i * 20, k + ":", 10, k == b.labels["amount"])
        _text(pdf, 480, 56 + i * 20, v, 10, k == b.labels["amount"])
    _text(pdf, 60, 120, b.holder)
    _text(pdf, 60, 133, b.mailing[0])
    _text(pdf, 60, 146, b.mailing[1])
    _text(pdf, 40, 180, f"{b.labels['service']}: {b.street}, {b.city}")
    _text(pdf, 40, 196, f"{b.labels['period']}: {b.d(b.start)} - {b.d(b.end)}  ({(b.end - b.start).days} days)")
    y = _charges(pdf, b, 40, 230)
    y = _usage(pdf, b, 40, y + 10)
    _text(pdf, 40, y + 6, f"Last payment received {b.d(b.bill_date - timedelta(days=27))}. Thank you.", 8)
    _stub(pdf, b, 640)
    return bytes(pdf.output())


def layout_stacked(b: Bill) -> bytes:
    """Labels above their values in a band of columns; service period written "from ... to ..."."""
    pdf = _pdf()
    _text(pdf, 40, 46, b.provider.upper(), 14, True)
    _text(pdf, 400, 46, "STATEMENT", 14, True)
    cols = [(b.labels["account"], b.account), (b.labels["bill_date"], b.d(b.bill_date)),
            (b.labels["due"], b.d(b.due)), (b.labels["amount"], money(b.amount_due))]
    for i, (k, v) in enumerate(cols):
        x = 40 + i * 135
        _text(pdf, x, 84, k, 8, True)
        _text(pdf, x, 100, v, 11)
    pdf.line(36, 110, 576, 110)
    _text(pdf, 40, 134, b.labels["holder"], 8, True)
    _text(pdf, 40, 148, b.holder)
    _text(pdf, 300, 134, b.labels["service"], 8, True)
    _text(pdf, 300, 148, b.street)
    _text(pdf, 300, 161, b.city)
    _text(pdf, 40, 190, f"Service from {b.d(b.start)} to {b.d(b.end)}")
    y = _usage(pdf, b, 40, 220)
    y = _charges(pdf, b, 40, y + 6)
    _text(pdf, 40, y + 8, f"Previous bill date {b.d(b.bill_date - timedelta(days=30))}", 8)
    _stub(pdf, b, 640)
    return bytes(pdf.output())


def layout_table(b: Bill) -> bytes:
    """A bordered two-column key table (fpdf2 table), addressee block first, totals at the bottom."""
    pdf = _pdf()
    pdf.set_xy(40, 36)
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 20, b.provider, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    pdf.set_x(40)
    for line in (b.holder, *b.mailing):
        pdf.set_x(40)
        pdf.cell(0, 13, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(12)
    rows = [(b.labels["account"], b.account), (b.labels["service"], f"{b.street}, {b.city}"),
            (b.labels["period"], f"{b.d(b.start)} to {b.d(b.end)}"), (b.labels["bill_date"], b.d(b.bill_date)),
            (b.labels["due"], b.d(b.due)), (b.labels["amount"], money(b.amount_due))]
    pdf.set_x(40)
    with pdf.table(col_widths=(160, 320), width=480, align="LEFT", first_row_as_headings=False) as table:
        for k, v in rows:
            row = table.row()
            row.cell(k)
            row.cell(v)
    y = _charges(pdf, b, 40, pdf.get_y() + 30)
    _usage(pdf, b, 40, y + 6)
    _stub(pdf, b, 640)
    return bytes(pdf.output())


def layout_compact(b: Bill) -> bytes:
    """A statement with a right-hand box that puts the value below the label, ISO-ish dates in the text."""
    pdf = _pdf()
    _text(pdf, 40, 50, b.provider, 13, True)
    _text(pdf, 40, 80, b.holder, 10)
    _text(pdf, 40, 93, b.mailing[0], 10)
    _text(pdf, 40, 106, b.mailing[1], 10)
    pdf.rect(380, 36, 196, 150)
    pairs = [(b.labels["amount"], money(b.amount_due)), (b.labels["due"], b.d(b.due)),
             (b.labels["account"], b.account)]
    for i, (k, v) in enumerate(pairs):
        _text(pdf, 390, 56 + i * 42, k, 9, True)
        _text(pdf, 390, 72 + i * 42, v, 12 if i == 0 else 10, i == 0)
    _text(pdf, 40, 140, f"{b.labels['bill_date']} {b.d(b.bill_date)}")
    _text(pdf, 40, 156, f"{b.labels['period']} {b.d(b.start)} through {b.d(b.end)}")
    _text(pdf, 40, 172, f"{b.labels['service']}")
    _text(pdf, 40, 185, f"{b.street}, {b.city}")
    y = _charges(pdf, b, 40, 220, width=260)
    y = _usage(pdf, b, 40, y + 6)
    _stub(pdf, b, 640)
    return bytes(pdf.output())


LAYOUTS: dict[str, Callable[[Bill], bytes]] = {
    "classic": layout_classic, "stacked": layout_stacked, "table": layout_table, "compact": layout_compact,
}


def bill_pdf(seed: int) -> tuple[bytes, dict[str, Any], str]:
    """``(pdf_bytes, truth, layout_name)`` for ``seed``."""
    bill = make_bill(seed)
    name = list(LAYOUTS)[(seed + seed // len(UTILITIES)) % len(LAYOUTS)]
    return LAYOUTS[name](bill), bill.truth, name


def photo(pdf: bytes, seed: int, *, scale: float = 2.0, fmt: str = "JPEG") -> bytes:
    """A phone-photo-like image of page 1: rendered at ``scale`` (72 dpi x scale), slightly rotated, on a grey
    background with uneven light, blurred, noised, JPEG-compressed."""
    import numpy as np
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    doc = pdfium.PdfDocument(pdf)
    try:
        img = doc[0].render(scale=scale).to_pil().convert("RGB")
    finally:
        doc.close()
    img = img.rotate(rng.uniform(-2.5, 2.5), resample=Image.BICUBIC, expand=True, fillcolor=(120, 118, 112))
    arr = np.asarray(img).astype(np.float32)
    h, w = arr.shape[:2]
    light = np.linspace(rng.uniform(0.78, 0.9), 1.0, w)[None, :, None] * np.linspace(1.0, rng.uniform(0.85, 0.95),
                                                                                      h)[:, None, None]
    arr = arr * light + np.random.default_rng(seed).normal(0, 7, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.4,
                                                                                                             0.9)))
    out = io.BytesIO()
    img.save(out, format=fmt, quality=rng.randint(60, 80)) if fmt == "JPEG" else img.save(out, format=fmt)
    return out.getvalue()
