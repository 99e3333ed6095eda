"""The JSON Schema vocabulary fedinf works with: drafts, keyword families, JSON pointers, the no-fetch retriever.

A leaf module (imports nothing from fedinf): :mod:`fedinf.structured.schema` (loading, normalising) and
:mod:`fedinf.structured.satisfiability` (unsatisfiability proofs) both build on it without importing each other
the other way round.
"""

from __future__ import annotations

from typing import NoReturn

DRAFTS: dict[str, str] = {
    "draft4": "http://json-schema.org/draft-04/schema#",
    "draft6": "http://json-schema.org/draft-06/schema#",
    "draft7": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}

# Keywords whose value is a subschema / a map of subschemas / an array of subschemas (all drafts, after renaming).
SCHEMA_KEYWORDS = ("not", "if", "then", "else", "items", "additionalItems", "additionalProperties", "contains",
                   "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
ARRAY_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains",
                  "maxContains")


def refuse_remote(uri: str) -> NoReturn:
    """jsonschema-rs retriever: fedinf never fetches schemas (no SSRF, no hidden latency)."""
    raise ValueError(f"remote reference {uri!r} is not fetched: inline it under $defs")


def pointer(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """RFC 6901 JSON pointer from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
