"""Hypothesis strategies for sensitive values of known type (so the test knows each request's true data class),
and for the ways callers hide them: formats, casing, Unicode tricks, JSON, tool arguments, several messages."""

from __future__ import annotations

import json
import string

from hypothesis import strategies as st

from fedinf.data_class import DataClass
from tests.privacy.pii_checks import iban_complete, luhn_complete

ZW = "\u200b"  # zero-width space
FULLWIDTH = {d: chr(0xFF10 + int(d)) for d in string.digits}


def iban_de(bban: str) -> str:
    return iban_complete("DE", bban)


word = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=8)
emails = st.builds(lambda a, b, c, tld: f"{a}.{b}@{c}.{tld}", word, word, word, st.sampled_from(["com", "org", "de"]))
cards = st.builds(lambda body: luhn_complete("4" + body), st.text(alphabet=string.digits, min_size=14, max_size=14))
ssns = st.builds(lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}",
                 st.integers(1, 665).filter(lambda a: a != 666), st.integers(1, 99), st.integers(1, 9999))
ibans = st.builds(iban_de, st.text(alphabet=string.digits, min_size=18, max_size=18))
aws = st.builds(lambda s: "AKIA" + s, st.text(alphabet=string.ascii_uppercase + "234567", min_size=16, max_size=16))
github = st.builds(lambda s: "ghp_" + s, st.text(alphabet=string.ascii_letters + string.digits, min_size=36,
                                                  max_size=36))
ips = st.builds(lambda a, b, c: f"10.{a}.{b}.{c}", st.integers(0, 255), st.integers(0, 255), st.integers(1, 254))

# (entity type, strategy, true class, formatters allowed)
KINDS = {
    "EMAIL_ADDRESS": (emails, DataClass.CONFIDENTIAL),
    "CREDIT_CARD": (cards, DataClass.RESTRICTED),
    "US_SSN": (ssns, DataClass.RESTRICTED),
    "IBAN_CODE": (ibans, DataClass.RESTRICTED),
    "AWS_ACCESS_KEY": (aws, DataClass.RESTRICTED),
    "GITHUB_TOKEN": (github, DataClass.RESTRICTED),
    "IP_ADDRESS": (ips, DataClass.INTERNAL),
}


def _group(value: str, sep: str) -> str:
    return sep.join(value[i:i + 4] for i in range(0, len(value), 4))


@st.composite
def disguised(draw: st.DrawFn, kind: str, value: str) -> str:
    """The value as a caller might write it: reformatted, re-cased or Unicode-obfuscated (still the same value)."""
    trick = draw(st.sampled_from(["plain", "case", "zw", "fullwidth", "group"]))
    if trick == "case" and kind in ("EMAIL_ADDRESS", "IBAN_CODE"):
        return value.upper() if draw(st.booleans()) else value.title()
    if trick == "zw":
        pos = draw(st.integers(1, len(value) - 1))
        return value[:pos] + ZW + value[pos:]
    if trick == "fullwidth" and kind in ("CREDIT_CARD", "US_SSN", "IBAN_CODE"):
        return "".join(FULLWIDTH.get(c, c) for c in value)
    if trick == "group" and kind in ("CREDIT_CARD", "IBAN_CODE"):
        return _group(value, draw(st.sampled_from([" ", "-"])) if kind == "CREDIT_CARD" else " ")
    return value


CONTEXT = ["please process this", "the customer wrote", "see below", "ticket update", "as discussed",
           "forwarding the details", "hello team"]


@st.composite
def sensitive_request(draw: st.DrawFn) -> tuple[dict, DataClass, list[str]]:
    """A chat body with 0-3 sensitive values hidden in it; returns (body, true class, raw values)."""
    n = draw(st.integers(0, 3))
    kinds = [draw(st.sampled_from(sorted(KINDS))) for _ in range(n)]
    values = [(k, draw(KINDS[k][0])) for k in kinds]
    true_class = max([KINDS[k][1] for k in kinds], default=DataClass.PUBLIC)
    messages: list[dict] = [{"role": "system", "content": draw(st.sampled_from(CONTEXT))}]
    for kind, value in values:
        shown = draw(disguised(kind, value))
        where = draw(st.sampled_from(["user", "assistant", "json", "tool"]))
        lead = draw(st.sampled_from(CONTEXT))
        if where == "json":
            messages.append({"role": "user", "content": json.dumps({"note": lead, "field": shown},
                                                                  ensure_ascii=draw(st.booleans()))})
        elif where == "tool":
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"value": shown})}}]})
            messages.append({"role": "tool", "tool_call_id": "call_1", "content": "ok"})
        else:
            messages.append({"role": where, "content": f"{lead}: {shown}"})
    messages.append({"role": "user", "content": draw(st.sampled_from(CONTEXT))})
    return {"messages": messages}, true_class, [v for _, v in values]
