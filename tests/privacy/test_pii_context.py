"""Values split over messages, context words in another message, and encoded values (base64, hex, URL)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from fedinf.data_class import DataClass
from fedinf.privacy import Pseudonymizer
from tests.privacy.pii_checks import iban_complete, luhn_complete

CARD = luhn_complete("453977091453416")
IBAN = iban_complete("DE", "370400440532013000")
SSN = "234-56-7891"
EMAIL = "bob.smith@example.com"


def _types(clf, texts):
    c = clf.classify(texts)
    return c.data_class, [(e.type, texts[e.source][e.start:e.end]) for e in c.entities]


@pytest.mark.parametrize("texts, kind", [
    ([f"my card starts {CARD[:4]}-{CARD[4:8]}", f"ends {CARD[8:12]}-{CARD[12:]}"], "CREDIT_CARD"),
    (["hello", f"my card number starts {CARD[:6]}", "assistant", f"and ends {CARD[6:]}"], "CREDIT_CARD"),
    ([f"card {CARD[:8]} and then, after a pause, {CARD[8:]}"], "CREDIT_CARD"),
    ([f"iban first part {IBAN[:10]}", f"rest {IBAN[10:]}"], "IBAN_CODE"),
    (["my ssn starts 234", "then 56-7891"], "US_SSN"),
])
def test_split_values_count(clf, texts, kind):
    cls, found = _types(clf, texts)
    assert cls == DataClass.RESTRICTED and {t for t, _ in found} == {kind}
    assert len(found) >= 2  # each part is an entity in its own piece (so each is pseudonymized)


def test_context_in_another_message(clf):
    cls, found = _types(clf, ["my account number is in the next message", "user", "000123456789"])
    assert cls == DataClass.RESTRICTED and found == [("BANK_ACCOUNT", "000123456789")]


@pytest.mark.parametrize("texts", [
    ["In 2019 we sold 12345 units", "and 67890 in 2020"],  # no cue: numbers are never joined
    ["what is the order number?", "14534169"],
    ["the version is 1234", "the build is 5678"],
    ["see conv_ops_3d.cc in commit 42033603003965bffac51ae171b51801565e002d#L143-L145"],  # digits in a hash
])
def test_unrelated_numbers_are_not_joined(clf, texts):
    assert clf.classify(texts).data_class <= DataClass.INTERNAL


@pytest.mark.parametrize("encode", [
    lambda t: base64.b64encode(t.encode()).decode(),
    lambda t: base64.urlsafe_b64encode(t.encode()).decode().rstrip("="),
    lambda t: t.encode().hex(),
    lambda t: t.encode().hex().upper(),
    lambda t: quote(t),
    lambda t: base64.b64encode(quote(t).encode()).decode(),  # nested
    lambda t: base64.b64encode(json.dumps({"v": t}).encode()).decode(),
])
@pytest.mark.parametrize("value, kind", [(CARD, "CREDIT_CARD"), (SSN, "US_SSN"), (EMAIL, "EMAIL_ADDRESS")])
def test_encoded_values_are_found(clf, encode, value, kind):
    label = {"CREDIT_CARD": "card", "US_SSN": "ssn", "EMAIL_ADDRESS": "mail"}[kind]
    blob = encode(f"my {label} is {value}")
    text = f"see attachment: {blob} thanks"
    cls, found = _types(clf, [text])
    assert kind in {t for t, _ in found} and cls >= DataClass.CONFIDENTIAL
    safe = Pseudonymizer(clf).pseudonymize([text])[0]
    assert blob not in safe and value not in safe


@pytest.mark.parametrize("text", [
    "internationalization localization",
    "id: 3f2a9c7e1b4d5a6f8e9d0c1b2a3f4e5d",  # a hash
    "data: " + base64.b64encode(bytes(range(64))).decode(),  # binary
    "token aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",  # decodes to harmless text
    "path=/usr/local%20share/docs",
])
def test_harmless_blobs_stay_public(clf, text):
    assert clf.classify([text]).data_class <= DataClass.INTERNAL


def test_url_encoded_value_keeps_its_span(clf):
    text = "GET /search?q=call%20me&mail=bob.smith%40example.com&x=1"
    _, found = _types(clf, [text])
    assert found == [("EMAIL_ADDRESS", "bob.smith%40example.com")]
