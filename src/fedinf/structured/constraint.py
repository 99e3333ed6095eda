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

# Formats llguidance enforces *soundly* (checked against the suite's optional/format tests: no instance that
# jsonschema-rs accepts is blocked). Its "email" (no quoted local parts, no IP literals) and "ipv6" (no embedded
# IPv4) are narrower than the RFCs: those two are left to validation.
LLG_FORMATS = frozenset({"date-time", "time", "date", "duration", "hostname", "ipv4", "uuid"})
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

    def lark(self) -> str:
        """The constraint as an llguidance Lark grammar (what llama.cpp's ``grammar`` field takes)."""
        return "%llguidance {}\nstart: %json " + json.dumps(self.schema, ensure_ascii=False)


DROPPABLE = ("multipleOf", "pattern", "format", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
             "maxProperties", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "patternProperties",
             "enum", "const")


def build_constraint(normalised: Any, *, verify: bool = True, x_guidance: dict[str, Any] | None = None) -> Constraint:
    """The constraint for ``normalised`` (a draft 2020-12 schema). With ``verify`` (and llguidance installed) the
    result is compiled; a compile error is answered by a narrower relaxation (``oneOf`` -> ``anyOf``, merged
    overlapping ``patternProperties``, dropping the keyword the error names), then llguidance's ``lenient`` mode,
    then an unconstrained ``{}``."""
    xg = dict(X_GUIDANCE if x_guidance is None else x_guidance)
    if isinstance(normalised, bool):
        return Constraint(schema=normalised, exact=True)
    opts: dict[str, Any] = {"keep_one_of": verify, "merge_patterns": False, "drop": set()}
    source, deref = normalised, False
    for _ in range(8):
        rw = _Rewriter(source, **opts)
        schema = rw.node(copy.deepcopy(source), "")
        if isinstance(schema, dict):
            schema.pop("$schema", None)
            schema["x-guidance"] = xg
        err = compile_error(schema) if verify else None
        if err is not None and not deref and _is_ref_error(err):
            deref, source = True, _dereference(normalised)
            rw.notes.append("references inlined (llguidance could not resolve them)")
            continue
        if err is None or not _adjust(opts, err, rw):
            break
    original_kw = sorted(_keywords(normalised) - ANNOTATIONS)
    c = Constraint(schema=schema, exact=not rw.relaxed, notes=rw.notes)
    c.by_validation = sorted(rw.relaxed)
    c.by_constraint = [k for k in original_kw if k not in rw.relaxed]
    if err is not None:
        _fallback(c, xg, err)
    return c


def _is_ref_error(err: str) -> bool:
    return any(w in err for w in ("Resource '", "Pointer '", "Anchor '", "does not exist"))


def _dereference(schema: Any) -> Any:
    """``schema`` with its references inlined by jsonschema-rs (cycles stay references); unchanged on failure."""
    import jsonschema_rs

    from fedinf.structured.vocabulary import refuse_remote

    try:
        return jsonschema_rs.dereference(schema, retriever=refuse_remote)
    except Exception:  # noqa: BLE001 - an unresolvable schema keeps its references; the fallbacks handle it
        return schema


def _adjust(opts: dict[str, Any], err: str, rw: "_Rewriter") -> bool:
    """Narrow the next rewrite after compile error ``err``; False when nothing more can be tried."""
    if "oneOf" in err and opts["keep_one_of"] and rw.one_of:
        opts["keep_one_of"] = False
        return True
    if "not disjoint" in err and not opts["merge_patterns"]:
        opts["merge_patterns"] = True
        return True
    for kw in DROPPABLE:
        if kw in err and kw not in opts["drop"]:
            opts["drop"].add(kw)
            return True
    return False


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


def _fallback(c: Constraint, xg: dict[str, Any], err: str) -> None:
    """The schema does not compile even relaxed: llguidance's lenient mode, else any JSON value."""
    c.compile_error = err
    c.notes.append(f"llguidance compile error, retried lenient: {err[:200]}")
    c.schema["x-guidance"] = {**xg, "lenient": True}
    c.lenient, c.exact = True, False
    err2 = compile_error(c.schema)
    if err2 is None:
        c.by_validation = sorted(set(c.by_validation) | {"(lenient)"})
        return
    c.notes.append(f"lenient compile error, unconstrained JSON: {err2[:200]}")
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

    def __init__(self, root: Any, *, keep_one_of: bool, merge_patterns: bool, drop: set[str]) -> None:
        self.root = root
        self.keep_one_of = keep_one_of
        self.merge_patterns = merge_patterns
        self.drop = drop
        self.one_of = False
        self.relaxed: set[str] = set()
        self.notes: list[str] = []
        self.anchors = _dynamic_anchors(root)
        self.static_anchors = set(_dynamic_anchors(root, "$anchor"))

    def relax(self, kw: str, where: str, how: str) -> None:
        self.relaxed.add(kw)
        self.notes.append(f"{where or '/'}: {kw} {how}")

    def node(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict):
            return node
        node.pop("contentSchema", None)
        anchor = node.pop("$dynamicAnchor", None)
        if isinstance(anchor, str) and "$anchor" not in node and len(self.anchors.get(anchor, [])) == 1 \
                and anchor not in self.static_anchors:
            node["$anchor"] = anchor
        if node.get("not") is True or node.get("not") == {}:
            self.notes.append(f"{where or '/'}: not {{}} -> false")
            return False
        self._unevaluated(node, where)  # first: it reads the in-place applicators the rewrites below change
        self._dynamic_ref(node, where)
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) == 1 and (ref == "#" or ref.startswith("#/")) \
                and self._deref(node) is False:
            return False  # llguidance refuses a reference to `false`; the inline `false` it takes
        self._drop(node, where)
        self._format_and_pattern(node, where)
        self._multiple_of(node, where)
        self._pattern_properties(node, where)
        self._not(node, where)
        self._dependent(node, where)
        self._if_then_else(node, where)
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
            elif k in ("allOf", "anyOf", "oneOf", "prefixItems") and isinstance(v, list):
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
        if "$ref" in node:
            self.relax("$dynamicRef", where, "dropped")
        elif name.startswith("/") or ref.endswith("#") or "#" not in ref:
            node["$ref"] = ref  # no anchor name: a plain reference
        elif len(self.anchors.get(name, [])) == 1 and name not in self.static_anchors:
            node["$ref"] = ref
            self.notes.append(f"{where or '/'}: $dynamicRef -> $ref (single dynamic anchor)")
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

    def _multiple_of(self, node: dict[str, Any], where: str) -> None:
        """llguidance 1.0.1 blocks every negative number under ``multipleOf`` (measured): kept only where
        negatives are excluded anyway."""
        if "multipleOf" not in node:
            return
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        if not (isinstance(lo, (int, float)) and lo >= 0):
            k = node.pop("multipleOf")
            node["allOf"] = [*node.get("allOf", []), {"anyOf": [{"minimum": 0, "multipleOf": k},
                                                                {"exclusiveMaximum": 0}]}]
            self.relax("multipleOf", where, "enforced for non-negative numbers only (llguidance blocks negative "
                                            "multiples)")

    def _drop(self, node: dict[str, Any], where: str) -> None:
        for kw in self.drop:
            if kw in node:
                del node[kw]
                self.relax(kw, where, "dropped (llguidance could not compile it)")
                if kw == "patternProperties" and node.pop("additionalProperties", None) is not None:
                    self.relax("additionalProperties", where, "dropped with patternProperties")

    def _pattern_properties(self, node: dict[str, Any], where: str) -> None:
        """A listed property matching a patternProperties regex must satisfy both schemas (llguidance applies only
        the ``properties`` one); overlapping regexes are merged when llguidance refuses them."""
        pp, props = node.get("patternProperties"), node.get("properties")
        if not isinstance(pp, dict) or not pp:
            return
        if isinstance(props, dict):
            for name in list(props):
                extra = [sub for pat, sub in pp.items() if _search(pat, name)]
                if extra:
                    props[name] = {"allOf": [props[name], *extra]}
        if self.merge_patterns and len(pp) > 1:
            subs = list(pp.values())
            union = "|".join(f"(?:{p})" for p in pp)
            node["patternProperties"] = {union: subs[0] if all(s == subs[0] for s in subs) else {"anyOf": subs}}
            if any(s != subs[0] for s in subs):
                self.relax("patternProperties", where, "overlapping regexes merged (anyOf of their schemas)")

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
        if _opaque(node):
            return set(), set(), "unknown"
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
        if depth > 16 or "contains" in node or _opaque(node):
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
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and \
                (node["$ref"].startswith("#/") or node["$ref"] == "#") and len(node) == 1 and seen < 32:
            node = self.root if node["$ref"] == "#" else _lookup(self.root, node["$ref"])
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


def _opaque(node: dict[str, Any]) -> bool:
    """A node whose in-place evaluation cannot be followed statically (dynamic or non-pointer references)."""
    ref = node.get("$ref")
    return "$dynamicRef" in node or "$recursiveRef" in node or (isinstance(ref, str) and not ref.startswith("#/")
                                                                 and ref != "#")


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False  # unknown to Python: leave it to llguidance (which applies only `properties`: wider, sound)


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
    if re.search(r"\(\?[=!<]|\\[1-9]|\\k<|\(\?<[=!]", pattern):
        return False
    err = compile_error({"type": "string", "pattern": pattern})
    return err is None


def _dynamic_anchors(root: Any, keyword: str = "$dynamicAnchor") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def walk(node: Any, ptr: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get(keyword), str):
                out.setdefault(node[keyword], []).append(ptr)
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
