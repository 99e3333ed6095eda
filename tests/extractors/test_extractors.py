from decimal import Decimal

import pytest

from fedinf.documents import load_bytes
from fedinf.extractors import EXTRACTORS, run_extractors
from fedinf.extractors.amounts import find_amounts, parse_amount
from fedinf.extractors.banking import find_ibans, iban_valid
from fedinf.extractors.checks import date_order, lines_sum, net_plus_tax
from fedinf.extractors.dates import find_dates, parse_date


def doc(text: str, name: str = "d.txt"):
    return load_bytes(text.encode(), name=name)


@pytest.mark.parametrize("text,iso", [
    ("2023-11-13", "2023-11-13"), ("04.07.2023", "2023-07-04"), ("31/08/2022", "2022-08-31"),
    ("8-9-2022", "2022-09-08"), ("Oct 31, 2023", "2023-10-31"), ("April 13, 2023", "2023-04-13"),
    ("19 april 2014", "2014-04-19"), ("02 Juillet 2015", "2015-07-02"), ("7. Mai 2014", "2014-05-07"),
    ("13 Sep, 2022", "2022-09-13"), ("August 3 , 2014", "2014-08-03"), ("1er mars 2021", "2021-03-01"),
    ("12 marca 2021", "2021-03-12"), ("20-10-2015", "2015-10-20"), ("01.05.14", "2014-05-01"),
    ("3 März 2020", "2020-03-03"),
])
def test_date_formats(text, iso):
    assert parse_date(text) == iso


def test_ambiguous_numeric_dates_follow_the_document():
    assert [h.date.isoformat() for h in find_dates("03/20/2023 and 04/05/2023")] == ["2023-03-20", "2023-04-05"]
    assert [h.date.isoformat() for h in find_dates("20/03/2023 and 04/05/2023")] == ["2023-03-20", "2023-05-04"]
    assert find_dates("31/02/2023 and 1999-13-01") == []  # impossible dates are not dates


@pytest.mark.parametrize("text,value", [
    ("1.234,56", "1234.56"), ("1,234.56", "1234.56"), ("1 234,56", "1234.56"), ("1'234.50", "1234.50"),
    ("-9,32", "-9.32"), ("(12.00)", "-12.00"), ("1.234", "1234"), ("0,75", "0.75"), ("12", "12"),
])
def test_parse_amount(text, value):
    assert parse_amount(text) == Decimal(value)


def test_find_amounts_currency_and_skips():
    hits = find_amounts("Totaal € 717,97 / USD 47.90 / 19% / in 2023 / Rs 1939 / 12.00 EUR / on 03.04.2023")
    assert [(h.value, h.currency) for h in hits] == [
        (Decimal("717.97"), "EUR"), (Decimal("47.90"), "USD"), (Decimal("1939"), "INR"), (Decimal("12.00"), "EUR")]


def test_iban_checksum():
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")
    assert not iban_valid("DE89 3704 0044 0532 0130")  # wrong length for DE
    d = doc("Pay to IBAN: GB82 WEST 1234 5698 7654 32 BIC NWBKGB2L\nbad: NL00INGB0000000000")
    ibans = find_ibans(d)
    assert [f.value for f in ibans] == ["GB82WEST12345698765432"]
    assert d.text[ibans[0].span.start:ibans[0].span.end] == "GB82 WEST 1234 5698 7654 32"


INVOICE_DE = """Muster Energie GmbH
Hauptstr. 1, 10115 Berlin
USt-IdNr. DE123456789
Rechnung an:
Erika Mustermann GmbH
Gartenweg 2
12345 Musterstadt
Rechnungsnummer: RE-2023-0042
Rechnungsdatum: 15.03.2023
Fällig am: 29.03.2023
Kundennummer: 1002003
Abrechnungszeitraum 01.02.2023 - 28.02.2023
Pos Beschreibung Betrag
1 Strom 84,03 €
2 Grundgebühr 16,81 €
Zwischensumme 100,84 €
MwSt. 19% 19,16 €
Gesamtbetrag 120,00 €
IBAN: DE89 3704 0044 0532 0130 00
"""


BILL_EXTRACTORS = {"bill_provider", "bill_account_number", "account_holder", "service_address", "bill_date",
                   "bill_due_date", "service_period_start", "service_period_end", "amount_due", "usage_total",
                   "usage_unit"}


def test_invoice_fields_with_spans():
    d = doc(INVOICE_DE)
    got = run_extractors(d, {k: k for k in EXTRACTORS if k not in BILL_EXTRACTORS})
    values = {k: f.value for k, f in got.items()}
    assert values == {
        "invoice_date": "2023-03-15", "due_date": "2023-03-29", "period_start": "2023-02-01",
        "period_end": "2023-02-28", "total_amount": "120.00", "net_amount": "100.84", "tax_amount": "19.16",
        "currency": "EUR", "iban": "DE89370400440532013000", "account_number": "1002003",
        "invoice_number": "RE-2023-0042", "issuer": "Muster Energie GmbH",
    }
    for f in got.values():  # every value points at the text it came from
        assert d.text[f.span.start:f.span.end] == f.raw
    assert got["total_amount"].raw.startswith("120,00")


def test_labels_in_other_languages_and_layouts():
    fr = doc("ACME SAS\nFacture n° F-2021-77 du 02 juillet 2021\nTotal HT : 100,00 €\nTVA 20% : 20,00 €\n"
             "Total TTC : 120,00 €\n")
    assert EXTRACTORS["invoice_number"](fr).value == "F-2021-77"
    assert EXTRACTORS["invoice_date"](fr).value == "2021-07-02"
    assert EXTRACTORS["total_amount"](fr).value == "120.00"
    assert EXTRACTORS["net_amount"](fr).value == "100.00"
    nl = doc("Factuur\nFactuurnummer: 993548900\nFactuurdatum: 19 april 2014\nTotaal € 717,97\n")
    assert EXTRACTORS["invoice_number"](nl).value == "993548900"
    assert EXTRACTORS["invoice_date"](nl).value == "2014-04-19"
    cols = doc("Invoice\nInvoice Number:\nInvoice Date:\nCurrency:\nINV04789023\n2023-11-13\nUSD\nTotal: 75.87\n")
    assert EXTRACTORS["invoice_number"](cols).value == "INV04789023"
    assert EXTRACTORS["currency"](cols).value == "USD"


def test_issuer_skips_the_recipient_block():
    d = doc("Invoice\nBill to:\nCustomer Corp GmbH\nStreet 1\n12345 Town\nGermany\nVAT DE1\nPage 1\n"
            "Brightwater Works Ltd.\nsales@brightwater.com\n")
    assert EXTRACTORS["issuer"](d).value == "Brightwater Works Ltd."
    labelled = doc("Faktura nr 1\nSprzedawca: Polski Koncern S.A.\nNabywca: Urząd Sp. z o.o.\n")
    assert EXTRACTORS["issuer"](labelled).value == "Polski Koncern S.A."


def test_checks():
    assert net_plus_tax("100.84", "19.16", "120.00", names=("net", "tax", "total")).passed
    bad = net_plus_tax("100", "19", "120", names=("net", "tax", "total"))
    assert not bad.passed and "differs" in bad.message
    assert net_plus_tax(None, "1", "2", names=("a", "b", "c")) is None
    assert lines_sum(["84.03", "16.81"], "100.84", names=("line_items", "net")).passed
    assert lines_sum(["1", "2"], "10", names=("l", "net"), alt="3", alt_name="total").fields == ("l", "total")
    assert not lines_sum(["1", "2"], "10", names=("l", "net")).passed
    assert not date_order("2023-03-15", "2023-01-01", names=("bill_date", "due_date")).passed


def test_issuer_fallback_skips_table_headers():
    d = doc("Invoice INV/2023/03/0008\nDescription Quantity Unit Price Taxes Amount\nNorthwind Traders\n")
    assert EXTRACTORS["issuer"](d).value == "Northwind Traders"
