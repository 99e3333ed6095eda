import json

import pytest

from fedinf.documents import DocumentLimits, detect_kind, load_bytes, load_path, split_document
from fedinf.errors import EncryptedDocument, InvalidDocument, NeedsOCR, PayloadTooLarge, RequestError

import pdfgen


def test_multi_page_pdf_keeps_pages_and_offsets():
    data = pdfgen.text_pdf([["ACME Energy Ltd", "Account number: 12345678"], ["Amount due: 42.10 EUR"], ["End"]])
    doc = load_bytes(data, name="bill.pdf")
    assert doc.kind == "pdf" and len(doc.pages) == 3
    assert doc.page_text(2).strip() == "Amount due: 42.10 EUR"
    i = doc.text.index("42.10")
    span = doc.span(i, i + 5)
    assert span.page == 2
    d = span.to_dict()
    assert doc.page_text(2)[d["page_start"]:d["page_end"]] == "42.10"
    assert doc.page_at(doc.text.index("End")).number == 3
    assert doc.summary()["pages"] == 3 and "ACME" not in json.dumps(doc.summary())


def test_table_pdf_text_is_extracted_in_rows():
    data = pdfgen.table_pdf(["Item", "Qty", "Price"], [["Widget", "2", "10.00"], ["Gadget", "1", "5.50"]],
                            before=["Invoice INV-9"], after=["Total 25.50"])
    doc = load_bytes(data, name="t.pdf")
    for word in ("Widget", "Gadget", "10.00", "5.50", "Total 25.50"):
        assert word in doc.text
    assert doc.text.index("Widget") < doc.text.index("Gadget")


def test_image_only_pdf_needs_ocr():
    with pytest.raises(NeedsOCR) as exc:
        load_bytes(pdfgen.image_only_pdf(2), name="scan.pdf")
    assert exc.value.code == "needs_ocr" and exc.value.details["pages"] == 2
    assert isinstance(exc.value, RequestError)


def test_partly_image_pdf_warns_about_the_page():
    doc = load_bytes(pdfgen.mixed_pdf(), name="m.pdf")
    assert "INV-7" in doc.text
    assert doc.warnings and "2" in doc.warnings[0]


def test_corrupt_pdf_is_invalid_document():
    with pytest.raises(InvalidDocument) as exc:
        load_bytes(pdfgen.corrupt_pdf(), name="broken.pdf")
    assert exc.value.code == "invalid_document"


def test_encrypted_pdf_is_reported():
    with pytest.raises(EncryptedDocument) as exc:
        load_bytes(pdfgen.encrypted_pdf(["secret invoice"]), name="locked.pdf")
    assert exc.value.code == "encrypted_document"


def test_huge_pdf_beyond_limit(tmp_path):
    data = pdfgen.huge_pdf(300_000)
    with pytest.raises(PayloadTooLarge) as exc:
        load_bytes(data, name="big.pdf", limits=DocumentLimits(max_bytes=200_000))
    assert exc.value.status_code == 413
    p = tmp_path / "big.pdf"
    p.write_bytes(data)
    with pytest.raises(PayloadTooLarge):
        load_path(p, limits=DocumentLimits(max_bytes=200_000))
    assert "large scan" in load_path(p).text  # under the default limit it loads


def test_page_limit():
    data = pdfgen.text_pdf([["p"]] * 4)
    with pytest.raises(PayloadTooLarge):
        load_bytes(data, name="x.pdf", limits=DocumentLimits(max_pages=3))


def test_html_json_text():
    html = b"<html><head><style>p{}</style><script>var x=1</script><title>Bill</title></head><body>" \
           b"<h1>ACME</h1><p>Amount&nbsp;due: <b>12.00</b></p><table><tr><td>a</td><td>b</td></tr></table></body></html>"
    doc = load_bytes(html, name="bill.html")
    assert doc.kind == "html"
    assert "var x" not in doc.text and "p{}" not in doc.text
    assert "ACME" in doc.text and "Amount due: 12.00" in doc.text.replace("\xa0", " ")
    j = load_bytes(b'{"total": 12.5, "name": "Zo\xc3\xab"}', name="x")
    assert j.kind == "json" and j.data == {"total": 12.5, "name": "Zoë"} and "Zoë" in j.text
    t = load_bytes(b"line1\r\nline2\fpage2", name="x.txt")
    assert t.kind == "text" and len(t.pages) == 2 and t.page_text(1) == "line1\nline2"
    assert load_bytes("caf\xe9".encode("cp1252"), name="x.txt").text == "café"


def test_bad_inputs():
    with pytest.raises(InvalidDocument):
        load_bytes(b"", name="x.txt")
    with pytest.raises(InvalidDocument):
        load_bytes(b"\x00\x01\x02binary", name="x.bin")
    with pytest.raises(InvalidDocument):
        load_bytes(b'{"a": ', name="x.json")
    with pytest.raises(InvalidDocument):
        load_bytes(b"hello", name="x.pdf")


def test_detect_kind():
    assert detect_kind(b"%PDF-1.7 ...") == "pdf"
    assert detect_kind(b"<!DOCTYPE html><html>") == "html"
    assert detect_kind(b"[1, 2]") == "json"
    assert detect_kind(b"[not json") == "text"
    assert detect_kind(b"x", media_type="application/pdf; q=1") == "pdf"
    assert detect_kind(b"x", filename="A.HTM") == "html"


def test_split_respects_budget_and_boundaries():
    pages = [[f"Paragraph {p}.{i} " + "word " * 30 for i in range(6)] for p in range(3)]
    doc = load_bytes(pdfgen.text_pdf(pages), name="long.pdf")
    chunks = split_document(doc, max_tokens=120)
    assert len(chunks) > 3
    assert all((len(c.text) + 3) // 4 <= 120 for c in chunks)
    squash = lambda t: "".join(t.split())  # noqa: E731 - only page breaks may fall between chunks
    assert squash("".join(c.text for c in chunks)) == squash(doc.text)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    assert all(c.text == doc.text[c.start:c.end] for c in chunks)
    assert chunks[-1].last_page == 3
    assert len(split_document(doc, max_tokens=100_000)) == 1
    tiny = load_bytes(b"x" * 1000, name="t.txt")
    assert all(len(c.text) <= 40 for c in split_document(tiny, max_tokens=10))
