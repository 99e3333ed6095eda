"""The schema IR: one JSON Schema, any draft, normalised once to draft 2020-12.

:func:`load_schema` is the only entry point. It

1. detects the draft from ``$schema`` (drafts 4, 6, 7, 2019-09, 2020-12; no ``$schema`` means 2020-12; a custom
   metaschema is never fetched: such a schema is read as 2020-12 and ``notes`` says so),
2. checks the schema against its draft's metaschema (jsonschema-rs) and that every ``$ref`` resolves locally
   (fedinf never fetches a remote reference),
3. proves unsatisfiable schemas unsatisfiable (jsonschema-rs' canonical form) and names the keywords responsible,
4. normalises the schema to draft 2020-12 (:func:`normalise`): draft-4 boolean ``exclusiveMaximum`` /
   ``exclusiveMinimum``, ``id`` -> ``$id``, ``definitions`` -> ``$defs``, array ``items`` -> ``prefixItems`` (and
   ``additionalItems`` -> ``items``), ``dependencies`` -> ``dependentRequired`` / ``dependentSchemas``,
   ``$recursiveRef`` -> ``$ref``, integral decimals (``2.0``) in count keywords -> integers, siblings of ``$ref`` dropped before 2019-09 (they were ignored), every local
   ``$ref`` rewritten to the new locations.

Rejections raise :class:`fedinf.errors.SchemaError` with ``details["problems"]``: a list of
``{"pointer": "/json/pointer", "keyword": "...", "message": "..."}``. Any other schema is served.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from fedinf.errors import SchemaError
from fedinf.structured.satisfiability import unsatisfiable_problems
from fedinf.structured.vocabulary import (ARRAY_KEYWORDS, COUNT_KEYWORDS, DRAFTS, MAP_KEYWORDS, SCHEMA_KEYWORDS,
                                         pointer, refuse_remote)

_VALIDATOR_CLS = {
    "draft4": jsonschema_rs.Draft4Validator,
    "draft6": jsonschema_rs.Draft6Validator,
    "draft7": jsonschema_rs.Draft7Validator,
    "2019-09": jsonschema_rs.Draft201909Validator,
    "2020-12": jsonschema_rs.Draft202012Validator,
}
_OLD_DRAFTS = ("draft4", "draft6", "draft7")
MAX_SCHEMA_BYTES = 1_000_000


def detect_draft(schema: Any) -> str:
    """The draft named by ``$schema`` (``draft4`` ... ``2020-12``); no ``$schema`` means ``2020-12``."""
    if not isinstance(schema, dict) or "$schema" not in schema:
        return "2020-12"
    uri = schema["$schema"]
    if not isinstance(uri, str):
        raise SchemaError("$schema must be a string", param="response_format",
                          details={"problems": [_problem("", "$schema", "$schema must be a string")]})
    norm = uri.strip().rstrip("#").replace("https://", "http://")
    for name, known in DRAFTS.items():
        if norm == known.rstrip("#").replace("https://", "http://"):
            return name
    return "2020-12"  # a custom metaschema is never fetched: the schema is read as 2020-12 (see load_schema)


def is_known_metaschema(schema: Any) -> bool:
    """False when ``$schema`` names a metaschema other than the five drafts."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$schema"), str):
        return True
    norm = schema["$schema"].strip().rstrip("#").replace("https://", "http://")
    return any(norm == k.rstrip("#").replace("https://", "http://") for k in DRAFTS.values())


def _problem(ptr: str, keyword: str, message: str) -> dict[str, str]:
    return {"pointer": ptr, "keyword": keyword, "message": message}


@functools.lru_cache(maxsize=8)
def _meta_validator(draft: str) -> Any:
    return _VALIDATOR_CLS[draft]({"$ref": DRAFTS[draft]}, retriever=refuse_remote)


def metaschema_problems(schema: Any, draft: str) -> list[dict[str, str]]:
    """Every place where ``schema`` breaks its draft's metaschema (empty when valid)."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [_problem("", "type", "a schema must be a JSON object or a boolean")]
    out = []
    for err in _meta_validator(draft).iter_errors(schema):
        parts = list(err.instance_path)
        keyword = next((str(p) for p in reversed(parts) if isinstance(p, str)), "")
        out.append(_problem(pointer(parts), keyword, err.message))
    return out


def build_validator(schema: Any, draft: str) -> Any:
    """A jsonschema-rs validator with format assertion on, remote references refused.

    Raises :class:`SchemaError` when a ``$ref`` does not resolve.
    """
    try:
        return _VALIDATOR_CLS[draft](schema, validate_formats=True, retriever=refuse_remote)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        msg = str(exc).split("\n", 1)[0]
        raise SchemaError(f"schema reference cannot be resolved: {msg}", param="response_format",
                          details={"problems": [_problem("", "$ref", msg)]}) from None


@dataclass(frozen=True)
class Schema:
    """A validated schema: the caller's ``original`` (validation runs against it, in its own draft) and its draft
    2020-12 ``normalised`` form (what constraints and remote backends get)."""

    original: Any
    draft: str
    normalised: Any
    validator: Any = field(repr=False, compare=False)
    name: str = "response"
    notes: tuple[str, ...] = ()

    def is_valid(self, instance: Any) -> bool:
        return bool(self.validator.is_valid(instance))

    def errors(self, instance: Any, limit: int = 8) -> list[str]:
        """Human-readable validation errors, each prefixed with the instance location."""
        out = []
        for err in self.validator.iter_errors(instance):
            where = pointer(list(err.instance_path)) or "/"
            out.append(f"at {where}: {err.message}")
            if len(out) >= limit:
                break
        return out


def load_schema(schema: Any, *, name: str = "response") -> Schema:
    """Check, prove satisfiable-or-unknown, normalise. Raises :class:`SchemaError` (400) with problems listed."""
    if not isinstance(schema, (dict, bool)):
        raise SchemaError("the JSON schema must be an object or a boolean", param="response_format",
                          details={"problems": [_problem("", "type", "not an object or a boolean")]})
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise SchemaError("the JSON schema is larger than 1 MB", param="response_format",
                          details={"problems": [_problem("", "", "schema too large")]})
    draft = detect_draft(schema)
    notes = []
    if isinstance(schema, dict) and not is_known_metaschema(schema):
        notes.append(f"unknown $schema {schema['$schema']!r} (not fetched): read as draft 2020-12")
        schema = {k: v for k, v in schema.items() if k != "$schema"}
    problems = metaschema_problems(schema, draft)
    if problems:
        raise SchemaError(_summary("is not a valid JSON Schema", problems), param="response_format",
                          details={"problems": problems, "draft": draft})
    validator = build_validator(schema, draft)
    problems = unsatisfiable_problems(schema, draft)
    if problems:
        raise SchemaError(_summary("cannot be satisfied by any value", problems), param="response_format",
                          details={"problems": problems, "draft": draft})
    return Schema(original=schema, draft=draft, normalised=normalise(schema, draft), validator=validator, name=name,
                  notes=tuple(notes))


def _summary(what: str, problems: list[dict[str, str]]) -> str:
    where = "; ".join(f"{p['keyword'] or '(schema)'} at {p['pointer'] or '/'}: {p['message']}" for p in problems[:5])
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"response_format schema {what}: {where}{more}"


# ---------------------------------------------------------------------------------------------------------------
# normalisation to 2020-12


def normalise(schema: Any, draft: str) -> Any:
    """A draft 2020-12 schema with the same meaning as ``schema`` (of ``draft``). Pure: the input is not changed."""
    if isinstance(schema, bool):
        return schema
    moves: dict[str, str] = {}
    out = _norm_node(copy.deepcopy(schema), draft, [], [], moves)
    if moves:
        _rewrite_refs(out, moves)
    if isinstance(out, dict):
        out["$schema"] = DRAFTS["2020-12"]
    return out


def _norm_node(node: Any, draft: str, old: list[Any], new: list[Any], moves: dict[str, str]) -> Any:
    if not isinstance(node, dict):
        return node
    if old != new:
        moves[pointer(old)] = pointer(new)
    if old:
        node.pop("$schema", None)
    if draft == "draft4":
        _norm_draft4(node)
    for k in COUNT_KEYWORDS:
        if isinstance(node.get(k), float) and node[k].is_integer():
            node[k] = int(node[k])
    origin: dict[str, str] = {}
    if draft in _OLD_DRAFTS and "$ref" in node:
        origin.update(_park_ref_siblings(node))
    from_definitions: set[str] = set()
    if isinstance(node.get("definitions"), dict):
        defs: dict[str, Any] = node.pop("definitions")
        own_defs = node.get("$defs")
        own: dict[str, Any] = own_defs if isinstance(own_defs, dict) else {}
        from_definitions = set(defs) - set(own)
        node["$defs"] = {**defs, **own}
    if draft != "2020-12":
        origin.update(_norm_items(node))
        origin.update(_norm_dependencies(node))
        if "$recursiveRef" in node:
            node["$ref"] = node.pop("$recursiveRef")
        node.pop("$recursiveAnchor", None)
    _norm_children(node, origin, from_definitions, draft, old, new, moves)
    return node


def _norm_children(node: dict[str, Any], origin: dict[str, str], from_definitions: set[str], draft: str,
                   old: list[Any], new: list[Any], moves: dict[str, str]) -> None:
    for key, value in list(node.items()):
        old_key = origin.get(key, key)
        if key in SCHEMA_KEYWORDS:
            node[key] = _norm_node(value, draft, [*old, old_key], [*new, key], moves)
        elif key in MAP_KEYWORDS and isinstance(value, dict):
            for k, sub in value.items():
                if key == "$defs" and k == IGNORED:
                    _norm_children(sub, {}, set(), draft, old, [*new, key, k], moves)
                    continue
                ok = "definitions" if key == "$defs" and k in from_definitions else old_key
                value[k] = _norm_node(sub, draft, [*old, ok, k], [*new, key, k], moves)
        elif key in ARRAY_KEYWORDS and isinstance(value, list):
            for i, sub in enumerate(value):
                value[i] = _norm_node(sub, draft, [*old, old_key, i], [*new, key, i], moves)


IGNORED = "fedinf-ref-siblings"


def _park_ref_siblings(node: dict[str, Any]) -> dict[str, str]:
    """Before 2019-09 the siblings of ``$ref`` were ignored, yet a ``$ref`` may still point into them: they move to
    ``$defs["fedinf-ref-siblings"]`` (unevaluated there) when they hold subschemas, and are dropped otherwise."""
    keep = ("$ref", "definitions", "$defs", "$schema")
    siblings = {k: v for k, v in node.items() if k not in keep}
    for k in siblings:
        del node[k]
    if any(isinstance(v, (dict, list)) for v in siblings.values()):
        node.setdefault("$defs", {})
        if not isinstance(node["$defs"], dict):
            node["$defs"] = {}
        node["$defs"][IGNORED] = siblings
    return {}


def _norm_draft4(node: dict[str, Any]) -> None:
    if "id" in node and isinstance(node["id"], str) and "$id" not in node:
        node["$id"] = node.pop("id")
    for excl, bound in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
        flag = node.get(excl)
        if isinstance(flag, bool):
            del node[excl]
            if flag and bound in node:
                node[excl] = node.pop(bound)


def _norm_items(node: dict[str, Any]) -> dict[str, str]:
    """``items: [...]`` -> ``prefixItems``, ``additionalItems`` -> ``items``. Returns new keyword -> old keyword."""
    if isinstance(node.get("items"), list):
        node["prefixItems"] = node.pop("items")
        if "additionalItems" in node:
            node["items"] = node.pop("additionalItems")
            return {"prefixItems": "items", "items": "additionalItems"}
        return {"prefixItems": "items"}
    node.pop("additionalItems", None)
    return {}


def _norm_dependencies(node: dict[str, Any]) -> dict[str, str]:
    deps = node.pop("dependencies", None)
    if not isinstance(deps, dict):
        return {}
    for k, v in deps.items():
        key = "dependentRequired" if isinstance(v, list) else "dependentSchemas"
        node.setdefault(key, {})[k] = v
    return {"dependentSchemas": "dependencies"}


def _rewrite_refs(node: Any, moves: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node["$ref"] = "#" + _moved(_unescape_uri(ref[1:]), moves)
        for v in node.values():
            _rewrite_refs(v, moves)
    elif isinstance(node, list):
        for v in node:
            _rewrite_refs(v, moves)


def _unescape_uri(ptr: str) -> str:
    from urllib.parse import unquote

    return unquote(ptr)


def _moved(ptr: str, moves: dict[str, str]) -> str:
    """Apply the longest matching moved prefix (repeatedly: a node may move, then its parent)."""
    best = ""
    for src in moves:
        if (ptr == src or ptr.startswith(src + "/")) and len(src) > len(best):
            best = src
    if not best:
        return ptr
    return moves[best] + ptr[len(best):]
