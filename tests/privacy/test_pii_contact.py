import pytest


@pytest.mark.parametrize("text,value", [
    ("write to jane.doe+tag@example.co.uk today", "jane.doe+tag@example.co.uk"),
    ("MinikJeremiassen@gustr.com", "MinikJeremiassen@gustr.com"),
    ("mail john [at] example [dot] com please", "john [at] example [dot] com"),
    ("contact: ops(at)corp.example.org", "ops(at)corp.example.org"),
])
def test_email_positive(found, text, value):
    assert ("EMAIL_ADDRESS", value) in found(text)


@pytest.mark.parametrize("text", [
    "the decorator @property is used", "user@localhost", "version 1.2@beta", "meet at noon at the cafe",
])
def test_email_negative(types, text):
    assert "EMAIL_ADDRESS" not in types(text)


@pytest.mark.parametrize("text,value", [
    ("call me at +44 20 7946 0958", "+44 20 7946 0958"),
    ("Fax: +41 (0)62 585 51 90", "+41 (0)62 585 51 90"),
    ("office (415) 555-2671 ext 12", "(415) 555-2671 ext 12"),
    ("my number is 618-226-1460", "618-226-1460"),
    ("stop receiving messages to 0688 872 49 99", "0688 872 49 99"),
    ("Phone: 451 5986", "451 5986"),
    ("mobile 0049 30 901820", "0049 30 901820"),
    ("call +33 1 42 68 53 00 tomorrow", "+33 1 42 68 53 00"),
])
def test_phone_positive(found, text, value):
    assert ("PHONE_NUMBER", value) in found(text)


@pytest.mark.parametrize("text", [
    "order number 12345678 shipped", "released on 2024-05-17", "version 10.2.3 is out", "pi is 3.14159265",
    "invoice 555-123-4567 is overdue", "the year 1999 and 2004",
])
def test_phone_negative(types, text):
    assert "PHONE_NUMBER" not in types(text)
