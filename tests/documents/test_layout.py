"""Page layout from PDF character boxes and from plain text; media types by magic bytes."""

import io

import pytest

import pdfgen
from fedinf.documents import load_bytes
from fedinf.documents.layout import CELL_GAP, Word, assemble
from fedinf.errors import NeedsOCR, UnsupportedMediaType


def test_words_become_lines_and_cells_with_exact_offsets():
    words = [Word("Amount", 10, 100, 60, 112), Word("due:", 64, 101, 90, 113), Word("$5.00", 300, 99, 340, 111),
             Word("Next", 10, 120, 40, 132)]
    page = assemble(words, number=1, width=600, height=800)
    assert page.text == f"Amount due:{CELL_GAP}$5.00\nNext"
    cell = page.lines[0].cells[1]
    assert page.text[cell.start:cell.end] == "$5.00"


def test_pdf_text_is_written_from_character_boxes():
    pdf = pdfgen.text_pdf([["Invoice number: A-1", "Total 12.00 EUR"]])
    doc = load_bytes(pdf, name="a.pdf")
    assert doc.layout[0].source == "pdf" and "Invoice number: A-1\nTotal 12.00 EUR" in doc.text
    w = doc.layout[0].lines[0].words[0]
    assert doc.text[w.start:w.end] == "Invoice" and w.x0 < w.x1 and w.y0 < w.y1


def test_text_documents_get_a_character_grid_layout():
    doc = load_bytes(b"Due Date    Amount\n03/04/2026  $5.00\n", name="a.txt")
    cells = doc.layout[0].lines[1].cells
    assert [doc.text[c.start:c.end] for c in cells] == ["03/04/2026", "$5.00"]


@pytest.mark.parametrize("data", [b"PK\x03\x04rest-of-a-docx", b"\x00\x00\x00\x18ftypheic\x00\x00",
                                  b"\x1f\x8b\x08\x00gzip"])
def test_binary_formats_nobody_reads_are_415(data):
    with pytest.raises(UnsupportedMediaType) as exc:
        load_bytes(data, name="upload", media_type="text/plain")
    assert exc.value.status_code == 415


def test_images_are_detected_by_magic_bytes_whatever_the_declared_type():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (50, 50), "white").save(buf, format="JPEG")
    with pytest.raises(NeedsOCR):  # recognised as an image (not "NUL bytes"); OCR off here
        load_bytes(buf.getvalue(), name="photo.txt", media_type="text/plain")


def test_image_only_pdf_pages_are_ocrd_when_an_engine_is_given():
    pytest.importorskip("rapidocr")
    from fedinf.documents.ocr import make_engine
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1200, 400), "white")
    font = ImageFont.load_default(size=48)
    ImageDraw.Draw(img).text((40, 150), "TOTAL DUE 42.50 USD", fill="black", font=font)
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=180)
    doc = load_bytes(bytes(pdf.output()), name="scan.pdf", ocr=make_engine("rapidocr"))
    assert "42.50" in doc.text and doc.layout[0].source == "ocr"
    assert any("OCR" in w for w in doc.warnings)


def test_a_blank_image_is_a_clear_error_not_a_crash():
    pytest.importorskip("rapidocr")
    from PIL import Image

    from fedinf.documents.ocr import make_engine
    from fedinf.errors import InvalidDocument

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buf, format="PNG")
    with pytest.raises(InvalidDocument) as exc:
        load_bytes(buf.getvalue(), name="blank.png", ocr=make_engine("rapidocr"))
    assert exc.value.code == "no_text_found" and exc.value.status_code == 400
