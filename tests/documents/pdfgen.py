"""Test PDFs made on the fly with fpdf2 (a dev dependency): nothing is read from disk or the network."""

from __future__ import annotations

import io
import random

from fpdf import FPDF
from fpdf.enums import EncryptionMethod


def _pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("helvetica", size=11)
    return pdf


def text_pdf(pages: list[list[str]]) -> bytes:
    """One PDF page per item of ``pages``, each a list of lines."""
    pdf = _pdf()
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 6, text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def table_pdf(header: list[str], rows: list[list[str]], *, before: list[str] = (), after: list[str] = ()) -> bytes:
    """A page with lines ``before``, a bordered table, then lines ``after``."""
    pdf = _pdf()
    pdf.add_page()
    for line in before:
        pdf.cell(0, 6, text=line, new_x="LMARGIN", new_y="NEXT")
    with pdf.table(text_align="LEFT") as table:
        for r in [header, *rows]:
            row = table.row()
            for cell in r:
                row.cell(cell)
    for line in after:
        pdf.cell(0, 6, text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def image_only_pdf(pages: int = 1) -> bytes:
    """Pages holding only a raster image (like a scan): no text layer."""
    from PIL import Image, ImageDraw

    pdf = _pdf()
    for i in range(pages):
        img = Image.new("RGB", (400, 200), "white")
        ImageDraw.Draw(img).text((20, 80), f"INVOICE {i + 1} total 12.00 EUR", fill="black")
        pdf.add_page()
        pdf.image(img, x=10, y=10, w=180)
    return bytes(pdf.output())


def mixed_pdf() -> bytes:
    """Page 1 has text, page 2 is image-only."""
    from PIL import Image

    pdf = _pdf()
    pdf.add_page()
    pdf.cell(0, 6, text="Invoice number: INV-7", new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.image(Image.new("RGB", (50, 50), "gray"), x=10, y=10, w=50)
    return bytes(pdf.output())


def encrypted_pdf(lines: list[str], *, user_password: str = "secret") -> bytes:
    """A PDF protected with the standard security handler (RC4), opening only with ``user_password``."""
    pdf = _pdf()
    pdf.add_page()
    for line in lines:
        pdf.cell(0, 6, text=line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password,
                       encryption_method=EncryptionMethod.RC4)
    return bytes(pdf.output())


def corrupt_pdf() -> bytes:
    """A PDF header followed by garbage: what a truncated download looks like."""
    good = text_pdf([["Invoice 1"]])
    return good[:200] + bytes(random.Random(7).randrange(256) for _ in range(300))


def huge_pdf(min_bytes: int) -> bytes:
    """A valid PDF of at least ``min_bytes`` (noise images do not compress)."""
    from PIL import Image

    rnd = random.Random(1)
    pdf = _pdf()
    pdf.add_page()
    pdf.cell(0, 6, text="Invoice with a large scan attached", new_x="LMARGIN", new_y="NEXT")
    side = int((min_bytes / 3) ** 0.5) + 16
    img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    pdf.image(buf, x=10, y=20, w=100)
    out = bytes(pdf.output())
    assert len(out) >= min_bytes, (len(out), min_bytes)
    return out
