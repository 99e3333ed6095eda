import pytest

from pii_checks import iban_complete, luhn_complete


@pytest.mark.parametrize("card", [
    "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "378282246310005", "6011 1111 1111 1117",
    luhn_complete("453201511283036"), luhn_complete("3530111333300000"[:-1]),
])
def test_card_positive(found, card):
    assert ("CREDIT_CARD", card) in found(f"my card {card} please")


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",          # Luhn-invalid
    "order 1234567812345678",             # Luhn-invalid order number
    "tracking 9400111899223408165321",    # too long
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "card 0000 0000 0000 0000",
])
def test_card_negative(types, text):
    assert "CREDIT_CARD" not in types(text)


@pytest.mark.parametrize("iban", [
    "GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "de89 3704 0044 0532 0130 00",
    iban_complete("FR", "20041010050500013M02606"), iban_complete("NL", "ABNA0417164300"),
])
def test_iban_positive(found, iban):
    assert ("IBAN_CODE", iban) in found(f"Please wire it to {iban} today")


@pytest.mark.parametrize("text", [
    "IBAN GB83WEST12345698765432",  # bad checksum
    "DE89370400440532013001",       # bad checksum
    "XX89370400440532013000",       # unknown country
    "GB82WEST123456987654",         # wrong length
])
def test_iban_negative(types, text):
    assert "IBAN_CODE" not in types(text)


def test_aba_routing_with_context(found):
    assert ("US_BANK_ROUTING", "021000021") in found("routing number 021000021")


def test_aba_negative(types):
    assert "US_BANK_ROUTING" not in types("routing number 021000022")  # checksum
    assert "US_BANK_ROUTING" not in types("the id 021000021")        # no context


def test_bank_account_with_context(found):
    assert ("BANK_ACCOUNT", "12345678901") in found("account number: 12345678901")
    assert not found("we have 12345678901 reasons")


def test_swift(found):
    assert ("SWIFT_BIC", "DEUTDEFF500") in found("SWIFT/BIC: DEUTDEFF500")
