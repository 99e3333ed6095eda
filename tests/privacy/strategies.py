"""Hypothesis strategies for sensitive values, obfuscations and carrier text (for privacy and residency tests).

``sensitive()`` draws ``(value, entity_type, minimum_class)``; ``obfuscated(value)`` applies tricks a detector must
see through (zero-width characters, fullwidth or Arabic-Indic digits, Cyrillic look-alikes); ``carrier(value)`` puts
a value into text (prose, ``key: value`` lines, JSON with and without ASCII escapes). Values are check-digit valid.
"""

from __future__ import annotations

import json
import string

from hypothesis import strategies as st

from fedinf.data_class import DataClass
from fedinf.privacy.detectors.contact import _personal_mailbox
from tests.privacy.pii_checks import iban_complete, luhn_complete

_WORDS = ("please", "check", "the", "record", "for", "our", "customer", "and", "reply", "today", "thanks", "update",
          "note", "details", "below", "ticket", "about", "this", "issue", "again")


digits = st.text(alphabet=string.digits, min_size=1, max_size=1)
alnum = string.ascii_letters + string.digits


@st.composite
def card(draw) -> str:
    prefix = draw(st.sampled_from(["4", "51", "52", "55", "37", "6011"]))
    length = 15 if prefix == "37" else 16
    body = draw(st.text(alphabet=string.digits, min_size=length - len(prefix) - 1,
                        max_size=length - len(prefix) - 1))
    num = luhn_complete(prefix + body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(num[i:i + 4] for i in range(0, len(num), 4)) if sep else num


@st.composite
def ssn(draw) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    group, serial = draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    sep = draw(st.sampled_from(["-", " "]))
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


@st.composite
def iban(draw) -> str:
    country, n = draw(st.sampled_from([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14)]))
    if country == "GB":
        bban = draw(st.text(alphabet=string.ascii_uppercase, min_size=4, max_size=4)) + draw(
            st.text(alphabet=string.digits, min_size=14, max_size=14))
    elif country == "NL":
        bban = draw(st.text(alphabet=string.ascii_uppercase, min_size=4, max_size=4)) + draw(
            st.text(alphabet=string.digits, min_size=10, max_size=10))
    else:
        bban = draw(st.text(alphabet=string.digits, min_size=n, max_size=n))
    return iban_complete(country, bban)


@st.composite
def email(draw) -> str:
    # not a role mailbox (www@, info@, cert@) or a protocol name (ssh.rsa@): those name no person and are
    # deliberately not class-raising (fedinf.privacy.detectors.contact)
    local = draw(st.from_regex(r"[a-z][a-z0-9]{1,8}(\.[a-z0-9]{1,6})?", fullmatch=True).filter(
        lambda x: _personal_mailbox(x + "@example.org")))
    domain = draw(st.from_regex(r"[a-z][a-z0-9]{1,10}", fullmatch=True))
    tld = draw(st.sampled_from(["com", "org", "de", "co.uk", "io"]))
    value = f"{local}@{domain}.{tld}"
    return value.upper() if draw(st.booleans()) and draw(st.booleans()) else value


@st.composite
def phone(draw) -> str:
    cc = draw(st.sampled_from(["+44 20", "+49 30", "+33 1", "+1 415", "+41 62"]))
    rest = " ".join(draw(st.text(alphabet=string.digits, min_size=3, max_size=4)) for _ in range(2))
    return f"{cc} {rest}"


def _prefixed(prefix: str, n: int, alphabet: str = alnum):
    return st.text(alphabet=alphabet, min_size=n, max_size=n).map(lambda s: prefix + s)


aws_key = _prefixed("AKIA", 16, string.ascii_uppercase + string.digits)
github_token = _prefixed("ghp_", 36)
ipv4 = st.tuples(*[st.integers(1, 254)] * 4).map(lambda t: ".".join(map(str, t)))

#: (strategy, entity type, the class the request must reach at least, whether obfuscating digits keeps it valid)
SENSITIVE = [
    (card(), "CREDIT_CARD", DataClass.RESTRICTED),
    (ssn(), "US_SSN", DataClass.RESTRICTED),
    (iban(), "IBAN_CODE", DataClass.RESTRICTED),
    (email(), "EMAIL_ADDRESS", DataClass.CONFIDENTIAL),
    (phone(), "PHONE_NUMBER", DataClass.CONFIDENTIAL),
    (aws_key, "AWS_ACCESS_KEY", DataClass.RESTRICTED),
    (github_token, "GITHUB_TOKEN", DataClass.RESTRICTED),
    (ipv4, "IP_ADDRESS", DataClass.INTERNAL),
]

#: context that makes each value unambiguous to a human reader (a label before it)
LABELS = {"CREDIT_CARD": "card", "US_SSN": "SSN", "IBAN_CODE": "IBAN", "EMAIL_ADDRESS": "email",
          "PHONE_NUMBER": "phone", "AWS_ACCESS_KEY": "key", "GITHUB_TOKEN": "token", "IP_ADDRESS": "server ip"}


@st.composite
def sensitive(draw) -> tuple[str, str, DataClass]:
    strategy, etype, cls = draw(st.sampled_from(SENSITIVE))
    return draw(strategy), etype, cls


_FULLWIDTH = {c: chr(0xFF10 + int(c)) for c in string.digits}
_ARABIC = {c: chr(0x0660 + int(c)) for c in string.digits}
_LOOKALIKE = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р"}  # Cyrillic


@st.composite
def obfuscated(draw, value: str) -> str:
    """``value`` with invisible characters inserted and/or characters swapped for look-alikes."""
    trick = draw(st.sampled_from(["none", "zero_width", "fullwidth", "arabic", "lookalike", "mixed"]))
    chars = list(value)
    if trick in ("fullwidth", "mixed"):
        chars = [_FULLWIDTH.get(c, c) for c in chars]
    if trick == "arabic":
        chars = [_ARABIC.get(c, c) for c in chars]
    if trick in ("lookalike",):
        chars = [_LOOKALIKE.get(c, c) if draw(st.booleans()) else c for c in chars]
    if trick in ("zero_width", "mixed") and len(chars) > 2:
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(1, len(chars) - 1))
            chars.insert(i, draw(st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])))
    return "".join(chars)


@st.composite
def carrier(draw, value: str, label: str) -> str:
    """Text that contains ``value`` after ``label``, in prose, a ``key: value`` line or a JSON document."""
    words = draw(st.lists(st.sampled_from(_WORDS), min_size=0, max_size=12))
    before, after = " ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])
    form = draw(st.sampled_from(["prose", "line", "json", "json_ascii"]))
    if form == "prose":
        return f"{before} {label} {value}, {after}".strip()
    if form == "line":
        return f"{before}\n{label}: {value}\n{after}"
    doc = {"text": before, label: value, "more": after}
    return json.dumps(doc, ensure_ascii=(form == "json_ascii"))
