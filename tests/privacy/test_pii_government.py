import pytest

from pii_checks import luhn_complete


@pytest.mark.parametrize("text,value", [
    ("Here's my SSN: 460-89-9847", "460-89-9847"),
    ("social security number 536 22 1234", "536 22 1234"),
    ("ssn 536221234", "536221234"),
    ("ID 123-45-6780 on file", "123-45-6780"),
])
def test_ssn_positive(found, text, value):
    assert ("US_SSN", value) in found(text)


@pytest.mark.parametrize("text", [
    "SSN 000-12-3456", "SSN 666-12-3456", "SSN 912-34-5678", "SSN 123-00-4567", "SSN 123-45-0000",
    "the number 536221234",   # bare 9 digits without context
    "SSN 123-45-6789",        # famous fake
    "part 123-45-67890",
])
def test_ssn_negative(types, text):
    assert "US_SSN" not in types(text)


def test_itin(found):
    assert ("US_ITIN", "912-70-1234") in found("my ITIN is 912-70-1234")


def test_passport_and_driver_license(found):
    assert ("PASSPORT_NUMBER", "X12345678") in found("passport number X12345678")
    assert ("DRIVER_LICENSE", "F162823540116") in found("My driver's license number is F162823540116")
    assert ("DRIVER_LICENSE", "5130634") in found("driver license 5130634")


def test_passport_needs_context(types):
    assert "PASSPORT_NUMBER" not in types("item X12345678 in stock")


def test_national_ids(found):
    assert ("UK_NHS", "943 476 5919") in found("NHS number 943 476 5919")
    assert ("UK_NINO", "AB 12 34 56 C") in found("NI number AB 12 34 56 C")
    assert ("ES_NIF", "12345678Z") in found("DNI 12345678Z")
    sin = luhn_complete("13069254")
    assert ("CA_SIN", sin) in found(f"SIN: {sin}")
    assert not [f for f in found("NHS number 943 476 5918") if f[0] == "UK_NHS"]
    assert not [f for f in found("DNI 12345678A") if f[0] == "ES_NIF"]


def test_aadhaar(found):
    from fedinf.privacy.checksums import _VERHOEFF_D, _VERHOEFF_P  # noqa: F401 - table sanity through the API
    # a Verhoeff-valid 12-digit number (check digit computed by brute force over the public checker)
    from fedinf.privacy.checksums import aadhaar_ok
    body = "23412341234"
    num = next(body + str(d) for d in range(10) if aadhaar_ok(body + str(d)))
    assert ("IN_AADHAAR", num) in found(f"Aadhaar {num}")
