"""Proving a schema unsatisfiable, and naming the keywords responsible.

jsonschema-rs' canonical form answers ``satisfiability()`` with YES / NO / UNKNOWN; only NO is a proof, and only a
proof leads to a rejection (UNKNOWN schemas are served: validation catches what cannot be produced). To tell the
caller *where* the contradiction is, each keyword (and each ``false`` subschema) is removed in turn: the ones whose
removal makes the schema satisfiable are reported with their JSON pointer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs

from fedinf.structured.vocabulary import SCHEMA_KEYWORDS, pointer, refuse_remote

_DRAFT_NUM = {"draft4": 4, "draft6": 6, "draft7": 7, "2019-09": 19, "2020-12": 20}
_NOT_CONSTRAINTS = frozenset({"$schema", "$id", "id", "$defs", "definitions", "$comment", "title", "description",
                              "default", "examples", "$anchor", "$dynamicAnchor", "deprecated", "readOnly",
                              "writeOnly"})
MAX_PROBES = 300
# canonicalisation is superlinear (1.4 s for a 130 KB schema here): larger schemas skip the proof and are served;
# an unsatisfiable one then ends in a 422 from validation instead of a 400.
MAX_PROOF_BYTES = 32_000


def is_unsatisfiable(schema: Any, draft: str) -> bool:
    """True only when jsonschema-rs proves no JSON value satisfies ``schema``."""
    if schema is False:
        return True
    if len(json.dumps(schema)) > MAX_PROOF_BYTES:
        return False
    try:
        canon = jsonschema_rs.canonicalize(schema, draft=_DRAFT_NUM[draft], retriever=refuse_remote)
        return str(canon.satisfiability()).lower().endswith("no")
    except Exception:  # noqa: BLE001 - an engine limitation is "unknown", never a rejection
        return False


def unsatisfiable_problems(schema: Any, draft: str) -> list[dict[str, str]]:
    """Empty when ``schema`` may be satisfiable; else the keywords whose removal would make it satisfiable."""
    if not is_unsatisfiable(schema, draft):
        return []
    if schema is False:
        return [{"pointer": "", "keyword": "false", "message": "the schema `false` admits no value"}]
    out = []
    for n, (parts, key) in enumerate(_candidates(schema)):
        if n >= MAX_PROBES:
            break
        probe = copy.deepcopy(schema)
        parent = _get(probe, parts[:-1]) if key == "false" else _get(probe, parts)
        if key == "false":
            parent[parts[-1]] = True
        else:
            del parent[key]
        if not is_unsatisfiable(probe, draft):
            where = pointer(parts)
            what = "a `false` subschema" if key == "false" else f"`{key}`"
            out.append({"pointer": where, "keyword": key,
                        "message": f"{what} here contradicts the rest of the schema"})
    if not out:
        out.append({"pointer": "", "keyword": "", "message": "the schema admits no value"})
    return out


def _candidates(node: Any, parts: list[str | int] | None = None) -> Iterator[tuple[list[str | int], str]]:
    """(path of a schema node, keyword) pairs worth removing; ``false`` subschemas as keyword ``false``."""
    parts = parts or []
    if node is False and parts:
        yield parts, "false"
        return
    if not isinstance(node, dict):
        return
    for key in node:
        if key not in _NOT_CONSTRAINTS:
            yield parts, key
    for key, value in node.items():
        if key in ("$defs", "definitions", "enum", "const", "required", "type", "examples", "default"):
            continue
        if isinstance(value, dict) and key in ("properties", "patternProperties", "dependentSchemas",
                                               "dependencies"):
            for k, sub in value.items():
                yield from _candidates(sub, [*parts, key, k])
        elif isinstance(value, list) and key in ("allOf", "anyOf", "oneOf", "prefixItems", "items"):
            for i, sub in enumerate(value):
                yield from _candidates(sub, [*parts, key, i])
        elif isinstance(value, (dict, bool)) and key in SCHEMA_KEYWORDS:
            yield from _candidates(value, [*parts, key])


def _get(node: Any, parts: list[str | int]) -> Any:
    for p in parts:
        node = node[p]
    return node
