"""The constraint for steerable backends: what llguidance can enforce, and what is left to validation.

llguidance (v1.0.1, built into xllamacpp) compiles most of JSON Schema into a token-level constraint, but rejects a
schema that uses ``not``, ``if``/``then``/``else``, ``uniqueItems``, ``contains``, ``dependent*``, ``unevaluated*``,
``propertyNames``, ``$dynamicRef``, overlapping ``oneOf``, unknown ``format``\\ s or look-around regexes.
:func:`build_constraint` turns a normalised schema into one llguidance compiles, by

* exact rewrites where JSON Schema itself can say the same thing (``dependentRequired`` / ``dependentSchemas`` as
  ``anyOf`` of "present and ..." / "absent"; ``not: {type}`` / ``not: {required: [k]}`` / ``not: {}``;
  ``unevaluatedProperties`` / ``unevaluatedItems`` as ``additionalProperties`` / ``items`` where the evaluated set is
  static; ``propertyNames: {pattern}`` as ``patternProperties``; ``$dynamicRef`` with a single anchor as ``$ref``);
* sound relaxations otherwise (``oneOf`` -> ``anyOf``; ``if/then/else`` -> ``anyOf[if AND then, else]``;
  ``contains`` -> ``minItems``; dropping what cannot be expressed). A relaxation only ever *widens* the set of
  accepted outputs: the constraint never blocks a valid instance, and validation catches the rest.

Every keyword of the schema is reported as enforced by the constraint, or by validation only.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

LLG_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
ANNOTATIONS = frozenset({"$schema", "$id", "$anchor", "$comment", "title", "description", "default", "examples",
                         "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
                         "contentSchema", "$defs", "$vocabulary"})
_JSON_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
# Default JSON formatting of the constraint: one space after ':' and ','. Deterministic and token-cheap, and it
# keeps small models from looping on whitespace.
X_GUIDANCE = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}


@dataclass
class Constraint:
    """``schema``: the JSON schema to send as ``json_schema`` (with ``x-guidance`` options); ``exact``: True when
    it accepts exactly the original's instances (up to formatting); ``by_constraint`` / ``by_validation``: keyword
    names; ``notes``: what was rewritten or relaxed, with pointers."""

    schema: Any
    exact: bool
    by_constraint: list[str] = field(default_factory=list)
    by_validation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compile_error: str | None = None
    lenient: bool = False


def build_constraint(normalised: Any, *, verify: bool = True, x_guidance: dict[str, Any] | None = None) -> Constraint:
    """The constraint for ``normalised`` (a draft 2020-12 schema). With ``verify`` (and llguidance installed) the
    result is compiled; on a compile error, llguidance's ``lenient`` mode is tried, then an unconstrained ``{}``."""
    xg = dict(X_GUIDANCE if x_guidance is None else x_guidance)
    if isinstance(normalised, bool):
        return Constraint(schema=normalised, exact=True)
    rw = _Rewriter(normalised, keep_one_of=verify)
    schema = rw.node(copy.deepcopy(normalised), "")
    if verify and rw.one_of and _one_of_error(schema, xg):
        rw = _Rewriter(normalised, keep_one_of=False)
        schema = rw.node(copy.deepcopy(normalised), "")
    if isinstance(schema, dict):
        schema.pop("$schema", None)
        schema["x-guidance"] = xg
    original_kw = sorted(_keywords(normalised) - ANNOTATIONS)
    c = Constraint(schema=schema, exact=not rw.relaxed, notes=rw.notes)
    c.by_validation = sorted(rw.relaxed)
    c.by_constraint = [k for k in original_kw if k not in rw.relaxed]
    if verify:
        _verify(c, xg)
    return c


def compile_error(schema: Any) -> str | None:
    """llguidance's compile error for ``schema`` (None when it compiles, or when llguidance is not installed)."""
    try:
        import llguidance
    except ImportError:
        return None
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
    except ValueError as exc:
        return str(exc)
    is_err, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, None)
    if is_err:
        return msgs[0] if msgs else "compile error"
    return None


def _one_of_error(schema: Any, xg: dict[str, Any]) -> bool:
    """True when llguidance refuses ``schema`` because of a ``oneOf`` (overlapping branches)."""
    probe = {**schema, "x-guidance": xg} if isinstance(schema, dict) else schema
    err = compile_error(probe)
    return err is not None and "oneOf" in err


def _verify(c: Constraint, xg: dict[str, Any]) -> None:
    err = compile_error(c.schema)
    if err is None:
        return
    c.compile_error = err
    c.notes.append(f"llguidance compile error, retried lenient: {err[:200]}")
    c.schema["x-guidance"] = {**xg, "lenient": True}
    c.lenient, c.exact = True, False
    err = compile_error(c.schema)
    if err is None:
        c.by_validation = sorted(set(c.by_validation) | {"(lenient)"})
        return
    c.notes.append(f"lenient compile error, unconstrained JSON: {err[:200]}")
    c.schema = {"x-guidance": xg}
    c.by_validation = sorted(set(c.by_validation) | set(c.by_constraint))
    c.by_constraint = []


def _keywords(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            if k in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(v, dict):
                for sub in v.values():
                    out |= _keywords(sub)
            elif k in ("enum", "const", "required", "dependentRequired", "examples", "default"):
                continue
            else:
                out |= _keywords(v)
    elif isinstance(node, list):
        for v in node:
            out |= _keywords(v)
    return out


class _Rewriter:
    """One pass over a schema copy; ``relaxed`` collects keywords the constraint does not fully enforce."""

    def __init__(self, root: Any, *, keep_one_of: bool) -> None:
        self.root = root
        self.keep_one_of = keep_one_of
        self.one_of = False
        self.relaxed: set[str] = set()
        self.notes: list[str] = []
        self.anchors = _dynamic_anchors(root)

    def relax(self, kw: str, where: str, how: str) -> None:
        self.relaxed.add(kw)
        self.notes.append(f"{where or '/'}: {kw} {how}")

    def node(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict):
            return node
        for k in ("$dynamicAnchor", "contentSchema"):
            node.pop(k, None)
        if node.get("not") is True or node.get("not") == {}:
            self.notes.append(f"{where or '/'}: not {{}} -> false")
            return False
        self._dynamic_ref(node, where)
        self._format_and_pattern(node, where)
        self._not(node, where)
        self._dependent(node, where)
        self._if_then_else(node, where)
        self._unevaluated(node, where)
        self._property_names(node, where)
        self._arrays(node, where)
        if "oneOf" in node and self.keep_one_of:
            self.one_of = True
        elif "oneOf" in node:
            node["anyOf" if "anyOf" not in node else "allOf"] = (
                node.pop("oneOf") if "anyOf" not in node else [*node.get("allOf", []), {"anyOf": node.pop("oneOf")}])
            self.relax("oneOf", where, "-> anyOf (exclusivity checked by validation)")
        self._children(node, where)
        return node

    def _children(self, node: dict[str, Any], where: str) -> None:
        for k, v in list(node.items()):
            if k in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(v, dict):
                for name, sub in v.items():
                    v[name] = self.node(sub, f"{where}/{k}/{name}")
            elif k in ("allOf", "anyOf", "prefixItems") and isinstance(v, list):
                node[k] = [self.node(sub, f"{where}/{k}/{i}") for i, sub in enumerate(v)]
            elif k in ("items", "additionalProperties", "then", "else", "if", "not", "contains",
                       "propertyNames", "unevaluatedItems", "unevaluatedProperties"):
                node[k] = self.node(v, f"{where}/{k}")

    def _dynamic_ref(self, node: dict[str, Any], where: str) -> None:
        ref = node.get("$dynamicRef")
        if not isinstance(ref, str):
            return
        del node["$dynamicRef"]
        name = ref.rsplit("#", 1)[-1]
        targets = self.anchors.get(name, [])
        if ref.startswith("#") and len(targets) == 1 and "$ref" not in node:
            node["$ref"] = "#" + targets[0]
            self.notes.append(f"{where or '/'}: $dynamicRef -> $ref (single anchor)")
        else:
            self.relax("$dynamicRef", where, "dropped")

    def _format_and_pattern(self, node: dict[str, Any], where: str) -> None:
        fmt = node.get("format")
        if fmt is not None and fmt not in LLG_FORMATS:
            del node["format"]
            self.relax("format", where, f"{fmt!r} dropped (llguidance does not know it)")
        pat = node.get("pattern")
        if isinstance(pat, str) and not _regex_ok(pat):
            del node["pattern"]
            self.relax("pattern", where, "dropped (regex not supported by llguidance)")
        pp = node.get("patternProperties")
        if isinstance(pp, dict):
            bad = [p for p in pp if not _regex_ok(p)]
            for p in bad:
                del pp[p]
            if bad:
                self.relax("patternProperties", where, "unsupported regex dropped")
                if node.pop("additionalProperties", None) is not None:
                    self.relax("additionalProperties", where, "dropped with an unsupported patternProperties")

    def _not(self, node: dict[str, Any], where: str) -> None:
        neg = node.pop("not", False)
        if neg is False:
            return
        if isinstance(neg, dict) and set(neg) == {"type"}:
            excluded = {neg["type"]} if isinstance(neg["type"], str) else set(neg["type"])
            if "number" in excluded:
                excluded.add("integer")
            keep = [t for t in _JSON_TYPES if t not in excluded and t != "integer"]
            if "integer" in excluded and "number" not in excluded:
                self.relax("not", where, "{type: integer}: non-integer numbers only by validation")
            node["allOf"] = [*node.get("allOf", []), {"type": keep}]
            return
        if isinstance(neg, dict) and set(neg) == {"required"} and len(neg["required"]) == 1:
            node["allOf"] = [*node.get("allOf", []), {"properties": {neg["required"][0]: False}}]
            return
        self.relax("not", where, "dropped (checked by validation)")

    def _dependent(self, node: dict[str, Any], where: str) -> None:
        extra = []
        for key, deps in (node.pop("dependentRequired", None) or {}).items():
            if deps:
                extra.append({"anyOf": [{"required": [key, *deps]}, {"properties": {key: False}}]})
        for key, sub in (node.pop("dependentSchemas", None) or {}).items():
            if sub is not True and sub != {}:
                extra.append({"anyOf": [{"required": [key], "allOf": [sub]}, {"properties": {key: False}}]})
        if extra:
            node["allOf"] = [*node.get("allOf", []), *extra]

    def _if_then_else(self, node: dict[str, Any], where: str) -> None:
        cond, then, other = node.pop("if", None), node.pop("then", None), node.pop("else", None)
        if cond is None:
            return
        if then is None or other is None:
            self.relax("if", where, "with only one branch: dropped (checked by validation)")
            return
        node["allOf"] = [*node.get("allOf", []), {"anyOf": [{"allOf": [cond, then]}, other]}]
        self.relax("if", where, "-> anyOf[if AND then, else] (the else branch's 'not if' by validation)")

    def _unevaluated(self, node: dict[str, Any], where: str) -> None:
        for kw, fn in (("unevaluatedProperties", self._uneval_props), ("unevaluatedItems", self._uneval_items)):
            if kw in node:
                value = node.pop(kw)
                if value is not True and value != {}:
                    fn(node, value, where)

    def _uneval_props(self, node: dict[str, Any], value: Any, where: str) -> None:
        if "additionalProperties" in node:
            return  # every property is evaluated: a no-op
        names, patterns, state = self._evaluated_props(node, 0)
        if state == "all":
            return
        if state == "unknown":
            self.relax("unevaluatedProperties", where, "dropped (checked by validation)")
            return
        props = node.setdefault("properties", {})
        for n in names:
            props.setdefault(n, {})
        if patterns:
            pp = node.setdefault("patternProperties", {})
            for p in patterns:
                pp.setdefault(p, {})
        node["additionalProperties"] = value
        if state == "conditional":
            self.relax("unevaluatedProperties", where, "-> additionalProperties over every branch's properties")

    def _evaluated_props(self, node: Any, depth: int) -> tuple[set[str], set[str], str]:
        """Property names / patterns in-place subschemas may evaluate, and a state: ``static`` (exact),
        ``conditional`` (a union over branches), ``all`` (every property evaluated) or ``unknown``."""
        node = self._deref(node)
        if not isinstance(node, dict):
            return set(), set(), "static"
        if depth > 16:
            return set(), set(), "unknown"
        if depth > 0 and ("additionalProperties" in node or "unevaluatedProperties" in node):
            return set(), set(), "all"
        names = set(node.get("properties") or {})
        patterns = set(node.get("patternProperties") or {})
        state = "static"
        for key, subs in _in_place(node):
            for sub in subs:
                n, p, st = self._evaluated_props(sub, depth + 1)
                if st in ("all", "unknown"):
                    return set(), set(), st
                names |= n
                patterns |= p
                if st == "conditional" or key in ("anyOf", "oneOf", "if", "then", "else", "dependentSchemas"):
                    state = "conditional"
        return names, patterns, state

    def _uneval_items(self, node: dict[str, Any], value: Any, where: str) -> None:
        if "items" in node:
            return  # every item is evaluated: a no-op
        n, state = self._evaluated_prefix(node, 0)
        if state == "all":
            return
        if state == "unknown":
            self.relax("unevaluatedItems", where, "dropped (checked by validation)")
            return
        prefix = node.setdefault("prefixItems", [])
        prefix.extend({} for _ in range(n - len(prefix)))
        node["items"] = value
        if state == "conditional":
            self.relax("unevaluatedItems", where, "-> items after every branch's prefixItems")

    def _evaluated_prefix(self, node: Any, depth: int) -> tuple[int, str]:
        node = self._deref(node)
        if not isinstance(node, dict):
            return 0, "static"
        if depth > 16 or "contains" in node:
            return 0, "unknown"
        if depth > 0 and ("items" in node or "unevaluatedItems" in node):
            return 0, "all"
        best, state = len(node.get("prefixItems") or []), "static"
        for key, subs in _in_place(node):
            for sub in subs:
                n, st = self._evaluated_prefix(sub, depth + 1)
                if st in ("all", "unknown"):
                    return 0, st
                best = max(best, n)
                if st == "conditional" or key in ("anyOf", "oneOf", "if", "then", "else", "dependentSchemas"):
                    state = "conditional"
        return best, state

    def _deref(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/") \
                and len(node) == 1 and seen < 32:
            node = _lookup(self.root, node["$ref"])
            seen += 1
        return node

    def _property_names(self, node: dict[str, Any], where: str) -> None:
        if "propertyNames" not in node:
            return
        names = node.pop("propertyNames")
        if names is True or names == {}:
            return
        if names is False:
            node["maxProperties"] = 0
            return
        regex = _names_regex(names)
        extra_ok = node.get("additionalProperties", True) in (True, {}) or not node.get("properties")
        if regex is None or "patternProperties" in node or not extra_ok:
            self.relax("propertyNames", where, "dropped (checked by validation)")
            return
        extra = node.pop("additionalProperties", {})
        props = node.get("properties") or {}
        for k in list(props):
            if not re.search(regex, k):
                props[k] = False
        node["patternProperties"] = {regex: extra}
        node["additionalProperties"] = False

    def _arrays(self, node: dict[str, Any], where: str) -> None:
        if "contains" in node:
            contains = node.pop("contains")
            lo = node.pop("minContains", 1)
            node.pop("maxContains", None)
            if contains is not False and isinstance(lo, int) and lo > node.get("minItems", 0):
                node["minItems"] = lo
            self.relax("contains", where, "-> minItems (which items match: validation)")
        else:
            node.pop("minContains", None)
            node.pop("maxContains", None)
        if node.pop("uniqueItems", False):
            self.relax("uniqueItems", where, "checked by validation")


def _in_place(node: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """The in-place applicators of ``node`` (whose annotations count as evaluated), as (keyword, subschemas)."""
    out: list[tuple[str, list[Any]]] = []
    for k in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(k), list):
            out.append((k, node[k]))
    for k in ("if", "then", "else"):
        if k in node:
            out.append((k, [node[k]]))
    if isinstance(node.get("$ref"), str):
        out.append(("$ref", [{"$ref": node["$ref"]}]))
    if isinstance(node.get("dependentSchemas"), dict):
        out.append(("dependentSchemas", list(node["dependentSchemas"].values())))
    return out


def _names_regex(names: Any) -> str | None:
    """A regex matching exactly the strings ``names`` (a propertyNames schema) admits, when simple enough."""
    if not isinstance(names, dict):
        return None
    keys = set(names) - {"type", "description", "title"}
    if names.get("type", "string") != "string":
        return None
    if keys == {"pattern"} and _regex_ok(names["pattern"]):
        return str(names["pattern"])
    if keys <= {"minLength", "maxLength"} and keys:
        lo, hi = names.get("minLength", 0), names.get("maxLength", "")
        return f"^[\\s\\S]{{{lo},{hi}}}$"
    if keys == {"enum"} and all(isinstance(v, str) for v in names["enum"]):
        return "^(" + "|".join(re.escape(v) for v in names["enum"]) + ")$" if names["enum"] else None
    return None


def _regex_ok(pattern: str) -> bool:
    if re.search(r"\(\?[=!<]|\\[1-9]|\\k<|\(\?<[=!]|\\[pP]\{", pattern):
        return False
    err = compile_error({"type": "string", "pattern": pattern})
    return err is None


def _dynamic_anchors(root: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def walk(node: Any, ptr: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$dynamicAnchor"), str):
                out.setdefault(node["$dynamicAnchor"], []).append(ptr)
            for k, v in node.items():
                if k not in ("enum", "const", "default", "examples"):
                    walk(v, f"{ptr}/{k.replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{ptr}/{i}")

    walk(root, "")
    return out


def _lookup(root: Any, ref: str) -> Any:
    from urllib.parse import unquote

    node = root
    for part in unquote(ref[2:]).split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return {}
    return node


def dumps(value: Any) -> str:
    """The serialisation matching :data:`X_GUIDANCE` (for token walks and tests)."""
    return json.dumps(value, ensure_ascii=False)
