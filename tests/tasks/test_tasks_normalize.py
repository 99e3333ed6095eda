from decimal import Decimal

from fedinf.tasks.normalize import comparable, normalize, same, to_record_value


def test_normalize_kinds():
    assert normalize("date", "4 mars 2021") == "2021-03-04"
    assert normalize("amount", "1.234,56 €") == Decimal("1234.56")
    assert normalize("amount", 12) == Decimal("12.00")
    assert normalize("amount", True) is None
    assert normalize("currency", "€") == "EUR" and normalize("currency", "usd") == "USD"
    assert normalize("currency", "dollars") == "USD" and normalize("currency", "XYZ") is None
    assert normalize("id", "# BLR_1 2") == "BLR_12" and normalize("id", "No. 17") == "17"
    assert normalize("iban", "de89 3704") == "DE893704"
    assert normalize("text", "  a \n b ") == "a b"
    assert normalize("text", "  ") is None
    assert to_record_value("amount", "9,5") == 9.5


def test_comparison_rules():
    assert same("text", "Coolblue B.V.", "COOLBLUE BV")
    assert same("text", "Polski Koncern Naftowy ORLEN S.A.", "Polski Koncern Naftowy ORLEN spółka akcyjna")
    assert same("text", "Netlify, Inc.", "Netlify, Inc")
    assert not same("text", "Netlify", "Netflix")
    assert same("id", "INV-7", "inv-7") and not same("id", None, None)
    assert same("amount", 120, "120,00") and same("date", "2023-01-02", "02.01.2023")
    assert comparable("text", "Café Müller GmbH") == "cafe muller"
