import json

import pytest
import yaml

from fedinf.errors import InvalidDocument, PayloadTooLarge, RequestError
from fedinf.documents import DocumentLimits
from fedinf.retrieval import is_osv, load_source

OSV = {
    "id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"], "summary": "Path traversal in demo",
    "details": "demo-lib before 2.4.1 lets an attacker read files outside the upload folder.",
    "affected": [{"package": {"name": "demo-lib", "ecosystem": "PyPI"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.4.1"}]}],
                  "versions": ["1.0", "2.0"]}],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
    "references": [{"type": "WEB", "url": "https://example.org/advisory"}],
    "database_specific": {"cwe_ids": ["CWE-22"]},
}


@pytest.mark.parametrize("name,data", [("a.json", json.dumps(OSV).encode()), ("a.yaml", yaml.safe_dump(OSV).encode()),
                                       ("noext", json.dumps(OSV).encode())])
def test_osv_records_are_rendered_with_their_facts(name: str, data: bytes) -> None:
    src = load_source(data, name=name)
    assert src.kind == "osv" and is_osv(src.record)
    for fact in ("PYSEC-2099-1", "CVE-2099-0001", "demo-lib (ecosystem PyPI)", "fixed versions: 2.4.1",
                 "introduced 0, fixed 2.4.1", "CWE-22", "CVSS:3.1/AV:N", "https://example.org/advisory",
                 "read files outside the upload folder"):
        assert fact in src.text
    assert src.metadata["osv_id"] == "PYSEC-2099-1"
    assert src.metadata["packages"] == [{"name": "demo-lib", "ecosystem": "PyPI"}]


def test_text_markdown_html_and_other_json() -> None:
    md = load_source(b"# Title\n\nSome *markdown* text.", name="n.md")
    assert md.kind == "text" and "markdown" in md.text
    html = load_source(b"<html><body><h1>Advisory</h1><p>Upgrade to 2.0</p><script>x()</script></body></html>",
                       name="p.html")
    assert html.kind == "html" and "Upgrade to 2.0" in html.text and "x()" not in html.text
    other = load_source(b'{"hello": "world"}', name="x.json")
    assert other.kind == "json" and '"hello"' in other.text


def test_pdf_keeps_pages() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    for words in ("first page words", "second page words"):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(0, 10, words)
    src = load_source(bytes(pdf.output()), name="d.pdf")
    assert src.kind == "pdf" and len(src.pages) == 2
    number, start, end = src.pages[1]
    assert number == 2 and "second page" in src.text[start:end]


@pytest.mark.parametrize("name,data,error", [
    ("e.txt", b"   ", InvalidDocument), ("b.json", b"{not json", InvalidDocument),
    ("b.yaml", b"a: [unclosed", InvalidDocument), ("bin.dat", b"\x00\x01\x02" * 100, InvalidDocument),
    ("null.yaml", b"~", InvalidDocument),
])
def test_bad_inputs_are_clear_request_errors(name: str, data: bytes, error: type) -> None:
    with pytest.raises(error) as info:
        load_source(data, name=name)
    assert isinstance(info.value, RequestError) and info.value.status_code < 500


def test_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        load_source(b"x" * 2000, name="big.txt", limits=DocumentLimits(max_bytes=1000))
