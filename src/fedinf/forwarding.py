"""What leaves the gateway: the allow-list of request fields forwarded upstream, and every string in them.

Residency holds only if everything that is forwarded has been classified. So a request is forwarded through an
explicit allow-list (top-level fields per backend protocol, fields per message); anything else a client sends is
dropped, never passed on unread, and reported by name (never by value) so the gateway can log it once.
:func:`strings` and :func:`rewrite` walk the forwarded body in one fixed order: the classifier reads exactly the
strings the upstream would receive, and pseudonymization rewrites exactly those (message content, names, tool
function names and schemas, ``user``, ``stop``, ``metadata``, ``prediction``, ``response_format`` ...).

Walk rules: every string value is read; dict keys are read too unless they are protocol or JSON Schema keywords
(``"properties"``, ``"type"``: a property *name* a client chose is data); integers of seven or more digits are read
as their decimal text (a card number can hide in ``metadata`` or a schema ``default``; typed options such as
``seed`` excepted); of a ``data:`` URL only the
part before the comma is read (the payload is binary media, not text).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# OpenAI chat completions request fields a backend speaking the OpenAI protocol receives
OPENAI_FIELDS: frozenset[str] = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "n", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "response_format", "tools", "tool_choice", "parallel_tool_calls", "user", "metadata", "prediction", "functions",
    "function_call", "store", "service_tier", "reasoning_effort", "modalities", "audio", "verbosity",
    # sampling and decoding extras of OpenAI-compatible servers (vLLM, llama.cpp, TGI): read like the rest
    "top_k", "min_p", "repetition_penalty", "typical_p", "min_tokens", "ignore_eos", "skip_special_tokens",
    "guided_json", "guided_regex", "guided_choice", "guided_grammar", "chat_template_kwargs",
})
# fields of one message
MESSAGE_FIELDS: frozenset[str] = frozenset({
    "role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call", "audio",
})
# keys that are protocol or JSON Schema vocabulary, not data: not classified (their values are)
_KEYWORDS = frozenset({
    "role", "content", "name", "type", "text", "tool_calls", "tool_call_id", "refusal", "function_call", "function",
    "arguments", "id", "image_url", "url", "detail", "input_audio", "data", "format", "file", "file_id", "filename",
    "file_data", "audio", "messages", "model", "stream", "stream_options", "include_usage", "max_tokens",
    "max_completion_tokens", "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "user", "metadata", "prediction", "functions", "store", "service_tier", "reasoning_effort", "modalities",
    "verbosity", "voice", "json_schema", "schema", "strict", "description", "parameters", "title", "properties",
    "required", "items", "prefixItems", "additionalProperties", "enum", "const", "default", "examples", "anyOf",
    "oneOf", "allOf", "not", "$ref", "$defs", "definitions", "$schema", "$id", "$anchor", "$comment", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
    "maxProperties", "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "if", "then",
    "else", "nullable", "readOnly", "writeOnly", "deprecated", "contentEncoding", "contentMediaType",
})
_BIG_INT = 1_000_000  # integers from seven digits up are read as text ...
_TYPED = frozenset({"seed", "max_tokens", "max_completion_tokens", "n", "top_logprobs"})  # ... except typed options


def forwarded(body: dict[str, Any], fields: frozenset[str] = OPENAI_FIELDS) -> dict[str, Any]:
    """``body`` (a request as plain JSON data) restricted to ``fields`` and each message to :data:`MESSAGE_FIELDS`.
    Values of ``None`` are dropped; the caller's dict is not modified."""
    out = {k: v for k, v in body.items() if k in fields and v is not None}
    if isinstance(out.get("messages"), list):
        out["messages"] = [{k: v for k, v in m.items() if k in MESSAGE_FIELDS and v is not None}
                           if isinstance(m, dict) else m for m in out["messages"]]
    return out


def dropped(body: dict[str, Any], fields: frozenset[str] = OPENAI_FIELDS) -> list[str]:
    """Names of the fields :func:`forwarded` leaves out (``"foo"``, ``"messages[].bar"``), sorted; never values."""
    out = [k for k in body if k not in fields and k != "fedinf"]
    for m in body.get("messages") or ():
        if isinstance(m, dict):
            for k in m:
                if k not in MESSAGE_FIELDS:
                    out.append(f"messages[].{k}")
    return sorted(set(out)) if out else out


def strings(body: Any) -> list[str]:
    """Every string of ``body`` the walk reads, in walk order (see the module docstring): what :func:`rewrite`
    would pass to its ``fn``, collected without building the rewritten copy."""
    out: list[str] = []
    if not isinstance(body, dict):
        _read(body, out, None)
        return out
    for k, v in body.items():
        if not (k in _TYPED and isinstance(v, int)):
            _read(v, out, k)
    return out


def rewrite(body: Any, fn: Callable[[str], str]) -> Any:
    """A copy of ``body`` with every string the walk reads replaced by ``fn(string)``, called in walk order."""
    if not isinstance(body, dict):
        return _walk(body, fn, None)
    return {k: v if k in _TYPED and isinstance(v, int) else _walk(v, fn, k) for k, v in body.items()}


def _walk(value: Any, fn: Callable[[str], str], key: str | None) -> Any:
    if isinstance(value, str):
        if key == "role":
            return value  # one of six words, checked when the request is parsed
        if key in ("url", "image_url", "file_data", "data") and value.startswith("data:"):
            head, sep, payload = value.partition(",")
            return fn(head) + sep + payload
        return fn(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = k if not isinstance(k, str) or k in _KEYWORDS else fn(k)
            out[name] = _walk(v, fn, k if isinstance(k, str) else None)
        return out
    if isinstance(value, list):
        return [_walk(v, fn, key) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _BIG_INT:
        text = str(value)
        new = fn(text)
        return value if new == text else new
    return value


def _read(value: Any, out: list[str], key: str | None) -> None:
    """:func:`_walk`'s rules, appending what it would pass to ``fn`` to ``out`` (the same strings, the same order;
    tests/governance/test_forwarding.py checks the two agree)."""
    if isinstance(value, str):
        if key == "role":
            return
        if key in ("url", "image_url", "file_data", "data") and value.startswith("data:"):
            out.append(value.partition(",")[0])
            return
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                if k not in _KEYWORDS:
                    out.append(k)
                _read(v, out, k)
            else:
                _read(v, out, None)
    elif isinstance(value, list):
        for v in value:
            _read(v, out, key)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _BIG_INT:
        out.append(str(value))


@dataclass
class FieldWarnings:
    """Logs each dropped field name once per gateway (names only, never values). Lives on the gateway, not in
    a module global: two gateways in one process warn independently."""

    log: logging.Logger = field(default_factory=lambda: logging.getLogger("fedinf.forwarding"))
    seen: set[str] = field(default_factory=set)
    limit: int = 1000  # a client inventing field names cannot grow the set without bound

    def warn(self, names: list[str]) -> None:
        new = [n for n in names if n not in self.seen]
        if not new:
            return
        if len(self.seen) < self.limit:
            self.seen.update(new)
        self.log.warning("request fields not forwarded (not in the allow-list): %s",
                         ", ".join(_printable(n) for n in new))


_IDENT = re.compile(r"(?:messages\[\]\.)?[A-Za-z_][A-Za-z0-9_\-]{0,47}")


def _printable(name: str) -> str:
    """A field name as it may appear in a log line: an identifier with few digits, else a stand-in (a client may
    put data where a field name belongs)."""
    if _IDENT.fullmatch(name) and sum(c.isdigit() for c in name) < 4:
        return name
    return "(a field name that is not an identifier)"
