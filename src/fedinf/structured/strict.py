"""OpenAI strict mode: transform a normalised schema where the transform is exact.

Strict mode accepts a subset of JSON Schema (object root; ``additionalProperties: false`` and every property in
``required`` on every object; ``type``, ``properties``, ``items``, ``enum``, ``const``, ``anyOf``, ``$ref`` /
``$defs``, ``pattern``, some ``format``\\ s, numeric bounds, ``minItems`` / ``maxItems``; no ``allOf``, ``not``,
``if``, ``oneOf``, ``dependent*``, ``patternProperties``, ...).

:func:`to_strict` returns ``(strict_schema, None)`` when every output the strict schema admits is - after
:func:`denull` removes the ``null`` it added for optional properties - valid against the original, and
``(None, reason)`` otherwise (the plan then instructs, validates and re-asks instead).

Exactness here means *soundness*: strict outputs are always valid. The strict schema may be narrower than the
original (``additionalProperties: false`` where extra keys were allowed), never wider.
"""

from __future__ import annotations

import copy
from typing import Any

ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
                         "writeOnly", "$schema", "$id", "$anchor", "contentMediaType", "contentEncoding"})
STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_SCALAR_KEYWORDS = frozenset({"type", "enum", "const", "pattern", "format", "minimum", "maximum",
                              "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems"})
_STRUCT_KEYWORDS = frozenset({"properties", "required", "additionalProperties", "items", "anyOf", "$ref", "$defs"})
_KEEP_ANNOTATIONS = ("title", "description")


class NotExact(Exception):
    """The schema uses something strict mode cannot express exactly."""


def to_strict(schema: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(strict_schema, None)`` or ``(None, reason)``. ``schema`` is a normalised (2020-12) schema."""
    if not isinstance(schema, dict):
        return None, "root must be an object schema"
    try:
        out = _node(copy.deepcopy(schema), "", root=True)
        if out.get("type") != "object":
            raise NotExact("strict mode needs an object root (`type: object`)")
        return out, None
    except NotExact as exc:
        return None, str(exc)


def _node(node: Any, where: str, *, root: bool = False) -> dict[str, Any]:
    if node is True or node == {}:
        raise NotExact(f"{where or '/'}: an unconstrained value (`{{}}` / `true`) has no strict equivalent")
    if node is False:
        raise NotExact(f"{where or '/'}: `false` has no strict equivalent")
    if not isinstance(node, dict):
        raise NotExact(f"{where or '/'}: not a schema")
    unknown = set(node) - _SCALAR_KEYWORDS - _STRUCT_KEYWORDS - ANNOTATIONS
    if unknown:
        raise NotExact(f"{where or '/'}: {', '.join(sorted(unknown))} not supported by strict mode")
    if "format" in node and node["format"] not in STRICT_FORMATS:
        raise NotExact(f"{where}/format: format {node['format']!r} not supported by strict mode")
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _SCALAR_KEYWORDS or k in _KEEP_ANNOTATIONS}
    if "$ref" in node:
        if set(node) - ANNOTATIONS - {"$ref", "$defs"}:
            raise NotExact(f"{where}/$ref: keywords beside $ref not supported by strict mode")
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise NotExact(f"{where}/$ref: only local references")
        out["$ref"] = ref
    if "$defs" in node:
        if not root:
            raise NotExact(f"{where}/$defs: $defs only at the root")
        out["$defs"] = {k: _node(v, f"{where}/$defs/{k}") for k, v in node["$defs"].items()}
    if "anyOf" in node:
        out["anyOf"] = [_node(v, f"{where}/anyOf/{i}") for i, v in enumerate(node["anyOf"])]
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in node
    if is_object:
        _object(node, out, where)
    elif "required" in node or "additionalProperties" in node:
        raise NotExact(f"{where}: object keywords without `type: object`")
    if "items" in node:
        out["items"] = _node(node["items"], f"{where}/items")
    elif types == "array" or (isinstance(types, list) and "array" in types):
        raise NotExact(f"{where}: array without `items`")
    if not ({"type", "enum", "const", "anyOf", "$ref"} & set(out)):
        raise NotExact(f"{where or '/'}: no `type` (strict mode needs one)")
    return out


def _object(node: dict[str, Any], out: dict[str, Any], where: str) -> None:
    props = node.get("properties") or {}
    if not props:
        raise NotExact(f"{where or '/'}: an object without `properties` (a free-form map) has no strict equivalent")
    extra = node.get("additionalProperties", True)
    if extra is not False and extra != {} and extra is not True:
        raise NotExact(f"{where}/additionalProperties: a schema for extra keys has no strict equivalent")
    required = set(node.get("required") or [])
    if required - set(props):
        raise NotExact(f"{where}/required: a required key not listed in `properties`")
    out["type"] = node.get("type", "object")
    if out["type"] != "object":
        raise NotExact(f"{where}/type: an object that may be another type")
    out["properties"] = {}
    for key, sub in props.items():
        strict_sub = _node(sub, f"{where}/properties/{key}")
        out["properties"][key] = strict_sub if key in required else _nullable(strict_sub)
    out["required"] = list(props)
    out["additionalProperties"] = False


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` or ``null`` (for an optional property made required). Marked so :func:`denull` can undo it."""
    if _admits_null(node):
        return node
    return {"anyOf": [node, {"type": "null"}]}


def _admits_null(node: dict[str, Any]) -> bool:
    t = node.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return "enum" not in node or None in node["enum"]
    return any(b.get("type") == "null" for b in node.get("anyOf", ()) if isinstance(b, dict))


def denull(value: Any, schema: Any, root: Any | None = None) -> Any:
    """Undo :func:`_nullable`: drop ``"key": null`` where ``key`` is optional in ``schema`` (the normalised
    original) and its schema does not admit ``null``. Returns a new value; ``value`` is not changed."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, dict) and isinstance(schema, dict):
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out = {}
        for k, v in value.items():
            sub = props.get(k)
            if v is None and sub is not None and k not in required and not _null_ok(_resolve(sub, root)):
                continue
            out[k] = denull(v, sub, root) if sub is not None else v
        if "anyOf" in schema and len(schema["anyOf"]) == 1:
            return denull(out, schema["anyOf"][0], root)
        return out
    if isinstance(value, list) and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
        return [denull(v, schema["items"], root) for v in value]
    return value


def _null_ok(node: Any) -> bool:
    if node is True or not isinstance(node, dict):
        return node is not False
    if "type" in node or "enum" in node or "const" in node:
        return _admits_null(node) or node.get("const", 0) is None or None in node.get("enum", [0])
    return "anyOf" not in node or any(_null_ok(b) for b in node["anyOf"])


def _resolve(node: Any, root: Any) -> Any:
    for _ in range(32):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#")):
            return node
        target = root
        for part in [p for p in node["$ref"][1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, list):
                target = target[int(part)]
            elif isinstance(target, dict) and part in target:
                target = target[part]
            else:
                return node
        node = target
    return node
