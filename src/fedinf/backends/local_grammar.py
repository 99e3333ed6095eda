"""Constraint plumbing for the local backend: which llama.cpp request field carries a structured-output constraint.

llama.cpp (through its llguidance integration) accepts three forms, all token-level:

- ``json_schema``: a JSON Schema dict;
- ``grammar``: a Lark grammar prefixed with ``%llguidance {}`` (or a GBNF grammar without that prefix);
- ``response_format``: OpenAI's ``json_object`` / ``json_schema`` shapes.

A regular expression becomes a one-rule Lark grammar. llama.cpp *ignores* an llguidance grammar that fails to compile
(it logs the error and samples unconstrained), so grammars are checked with the ``llguidance`` Python package when it
is installed (the ``conformance`` extra) and rejected with :class:`~fedinf.errors.SchemaError` before any I/O.
"""

from __future__ import annotations

from typing import Any

from fedinf.errors import RequestError, SchemaError

LLGUIDANCE_PREFIX = "%llguidance {}"

# ECMA-262 shorthand classes (what JSON Schema `pattern` and most callers mean) as ASCII classes: llguidance uses
# Rust's regex syntax, where \d and \w are Unicode-aware (\d matches e.g. U+1FBF8 as a digit).
_SHORTHAND_OUTSIDE = {"d": "[0-9]", "D": "[^0-9]", "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]"}
_SHORTHAND_INSIDE = {"d": "0-9", "w": "0-9A-Za-z_"}


def regex_to_lark(regex: str) -> str:
    """A Lark grammar (llguidance dialect) whose language is exactly ``regex``.

    ``\\d`` / ``\\w`` (and their negations outside character classes) are made ASCII as in ECMA-262; ``/`` and line
    breaks are escaped so the regex fits in a Lark ``/.../`` literal.
    """
    out: list[str] = []
    in_class, class_body = False, 0
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            table = _SHORTHAND_INSIDE if in_class else _SHORTHAND_OUTSIDE
            out.append(table.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c == "[" and not in_class:
            in_class, class_body = True, len(out) + 1 + (regex[i + 1:i + 2] == "^")
        elif c == "]" and in_class and len(out) > class_body:  # a `]` first in the class is a literal
            in_class = False
        if c == "/":
            out.append("\\/")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        else:
            out.append(c)
        i += 1
    return f"{LLGUIDANCE_PREFIX}\nstart: /{''.join(out)}/"


def check_grammar(grammar: str, *, param: str) -> None:
    """Reject an llguidance grammar that does not compile (no-op without the ``llguidance`` package, or for GBNF).

    Raises :class:`SchemaError` naming ``param``; llama.cpp reports GBNF errors itself.
    """
    if not grammar.lstrip().startswith("%llguidance"):
        return
    try:
        from llguidance import LLMatcher
    except ImportError:  # optional: without it llama.cpp is the only check (and it fails open, see module doc)
        return
    try:
        error = LLMatcher.validate_grammar(grammar, None)
    except BaseException as exc:  # llguidance's Rust panics surface as pyo3 PanicException (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        error = f"the grammar could not be parsed ({type(exc).__name__})"
    if error:
        raise SchemaError(f"invalid {param}: {error.strip()}", param=param)


def constraint_fields(
    *, extra: dict[str, Any], response_format: dict[str, Any] | None, regex: str | None = None,
    grammar: str | None = None,
) -> dict[str, Any]:
    """The llama.cpp request fields that enforce the request's constraint (empty dict when unconstrained).

    Precedence: a grammar, then a regex, then a JSON schema given by the structured-output layer in ``extra``
    (``grammar``, ``regex``, ``json_schema``), then ``regex`` / ``grammar`` from the request's ``fedinf`` object,
    then ``response_format`` passed through as OpenAI defines it.
    """
    grammar = extra.get("grammar") if isinstance(extra.get("grammar"), str) else grammar
    regex = extra.get("regex") if isinstance(extra.get("regex"), str) else regex
    if grammar:
        check_grammar(grammar, param="grammar")
        return {"grammar": grammar}
    if regex:
        lark = regex_to_lark(regex)
        check_grammar(lark, param="regex")
        return {"grammar": lark}
    schema = extra.get("json_schema")
    if isinstance(schema, dict):
        return {"json_schema": schema}
    return _response_format_fields(response_format)


def _response_format_fields(response_format: dict[str, Any] | None) -> dict[str, Any]:
    if not response_format:
        return {}
    kind = response_format.get("type")
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise SchemaError("response_format.json_schema.schema must be a JSON Schema object",
                              param="response_format.json_schema.schema")
        return {"json_schema": schema}
    raise RequestError(f"response_format.type {kind!r} is not supported: use text, json_object or json_schema",
                       param="response_format.type", code="unsupported_response_format")
