"""Hypothesis strategies for sensitive values of known type (so the test knows each request's true data class),
and for the ways callers hide them: formats, casing, Unicode tricks, JSON, tool arguments, several messages."""

from __future__ import annotations

import base64
import json
import string
from urllib.parse import quote

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


# every place of the OpenAI chat schema a caller can put text into, plus split values and encodings
PLACES = ("user_msg", "assistant", "json", "tool", "name", "tool_fn_name", "user", "stop", "metadata",
          "prediction", "tool_description", "tool_parameters", "response_format", "function_call", "refusal",
          "split", "base64", "hex", "urlencoded")
SPLIT_CUES = {"CREDIT_CARD": "card number", "IBAN_CODE": "iban"}


def _encoded(how: str, text: str) -> str:
    if how == "base64":
        return base64.b64encode(text.encode()).decode()
    if how == "hex":
        return text.encode().hex()
    return quote(text)


@st.composite
def _place(draw: st.DrawFn, body: dict, kind: str, value: str) -> list[str]:
    """Put ``value`` (disguised) somewhere in ``body``; return the raw strings that must never reach a zone above
    the request's clearance (the value, or for split values each part)."""
    messages: list[dict] = body["messages"]
    shown = draw(disguised(kind, value))
    where = draw(st.sampled_from(PLACES))
    lead = draw(st.sampled_from(CONTEXT))
    if where == "split" and kind in SPLIT_CUES:
        cut = draw(st.integers(6, len(value) - 6))
        messages.append({"role": "user", "content": f"my {SPLIT_CUES[kind]} starts {value[:cut]}"})
        messages.append({"role": draw(st.sampled_from(["user", "assistant"])), "content": f"and ends {value[cut:]}"})
        return [value[:cut], value[cut:]]
    if where in ("base64", "hex", "urlencoded"):
        messages.append({"role": "user", "content": f"{lead}: {_encoded(where, f'{lead}: {value}')}"})
        return [value]
    if where == "json":
        messages.append({"role": "user", "content": json.dumps({"note": lead, "field": shown},
                                                              ensure_ascii=draw(st.booleans()))})
    elif where in ("tool", "tool_fn_name"):
        name, args = ("lookup", json.dumps({"value": shown})) if where == "tool" else (shown, "{}")
        messages.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]})
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": "ok"})
    elif where == "function_call":  # the legacy single function call
        messages.append({"role": "assistant", "content": None,
                         "function_call": {"name": "lookup", "arguments": json.dumps({"value": shown})}})
        messages.append({"role": "function", "name": "lookup", "content": "ok"})
    elif where == "refusal":
        messages.append({"role": "assistant", "content": [{"type": "refusal", "refusal": f"{lead}: {shown}"}]})
    elif where == "name":
        messages.append({"role": "user", "name": shown, "content": lead})
    elif where == "user":
        body["user"] = f"{body.get('user', '')} {shown}".strip()
    elif where == "stop":
        body["stop"] = [*body.get("stop", []), shown]
    elif where == "metadata":
        meta = body.setdefault("metadata", {})
        meta[f"note{len(meta)}"] = shown
    elif where == "prediction":
        before = body.get("prediction", {}).get("content", "")
        body["prediction"] = {"type": "content", "content": f"{before} {lead}: {shown}".strip()}
    elif where in ("tool_description", "tool_parameters"):
        desc, param = (f"{lead}: {shown}", "a value") if where == "tool_description" else ("look up", shown)
        body.setdefault("tools", []).append({"type": "function", "function": {
            "name": "lookup", "description": desc,
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": param}}}}})
    elif where == "response_format":
        rf = body.setdefault("response_format", {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
            "type": "object", "properties": {}, "required": [], "additionalProperties": False}}})
        schema = rf["json_schema"]["schema"]
        prop = f"a{len(schema['properties'])}"
        schema["properties"][prop] = {"type": "string", "description": f"{lead}: {shown}"}
        schema["required"].append(prop)
    else:
        messages.append({"role": "user" if where == "user_msg" else where, "content": f"{lead}: {shown}"})
    return [value]


@st.composite
def sensitive_request(draw: st.DrawFn) -> tuple[dict, DataClass, list[str]]:
    """A chat body with 0-3 sensitive values hidden anywhere the schema allows text (message content, names, tool
    calls and definitions, legacy function calls, refusals, ``user``, ``stop``, ``metadata``, ``prediction``,
    ``response_format``), split over two messages, or encoded (base64, hex, URL encoding); returns (body, true
    class, raw strings that must not leak)."""
    n = draw(st.integers(0, 3))
    kinds = [draw(st.sampled_from(sorted(KINDS))) for _ in range(n)]
    values = [(k, draw(KINDS[k][0])) for k in kinds]
    true_class = max([KINDS[k][1] for k in kinds], default=DataClass.PUBLIC)
    body: dict = {"messages": [{"role": "system", "content": draw(st.sampled_from(CONTEXT))}]}
    secret: list[str] = []
    for kind, value in values:
        secret += draw(_place(body, kind, value))
    body["messages"].append({"role": "user", "content": draw(st.sampled_from(CONTEXT))})
    return body, true_class, secret
