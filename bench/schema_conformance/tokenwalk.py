"""Token-walk conformance (the JSONSchemaBench method): does a compiled constraint allow an instance?

An instance is serialised and fed, token by token (the embedded model's real tokenizer), to an ``llguidance``
matcher. Object keys are searched in every order the constraint might impose (llguidance fixes the order of listed
properties): a depth-first search with rollback, bounded by a step budget. Floats with an integral value are written
as integers; strings with ``ensure_ascii=False``.
"""

from __future__ import annotations

import json
from typing import Any

import llguidance

BUDGET = 4000  # search steps per instance; a valid instance gets VALID_BUDGET (a cut search counts as blocked)
VALID_BUDGET = 60000


def plain(value: Any) -> Any:
    """Whole floats as ints, recursively."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Walker:
    """One compiled grammar; :meth:`accepts` walks instances through it (the matcher is reset in between)."""

    def __init__(self, tokenizer: Any, grammar: str, *, item_sep: str = ",", key_sep: str = ":") -> None:
        self.tok = tokenizer
        self.m = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        self.error = self.m.get_error() if self.m.is_error() else None
        self.item_sep, self.key_sep = item_sep, key_sep
        self.total = 0
        self.steps = 0
        self.budget = BUDGET
        self._cache: dict[str, list[int]] = {}

    def accepts(self, value: Any, schema: Any = None, *, budget: int = BUDGET) -> bool:
        """Walk ``value``; with ``schema`` (the compiled JSON schema) its keys are first tried in schema order."""
        if self.error:
            return False
        value = plain(value)
        candidates = [value]
        if schema is not None:
            ordered = schema_order(value, schema, schema)
            if ordered != value or list(_keys(ordered)) != list(_keys(value)):
                candidates.insert(0, ordered)
        self.budget = budget
        for cand in candidates:
            self.m.reset()
            self.total = 0
            self.steps = 0
            if self._value(cand) and self.m.is_accepting():
                return True
        return False

    def _feed(self, text: str) -> bool:
        self.steps += 1
        if self.steps > self.budget:
            return False
        ids = self._cache.get(text)
        if ids is None:
            ids = self._cache[text] = self.tok.tokenize_str(text)
        n = self.m.try_consume_tokens(ids)
        self.total += n
        if n != len(ids) or self.m.is_error():
            self._reset(self.total - n)
            return False
        return True

    def _reset(self, mark: int) -> None:
        if self.total > mark:
            self.m.rollback(self.total - mark)
            self.total = mark

    def _value(self, v: Any) -> bool:
        mark = self.total
        if isinstance(v, dict):
            ok = self._feed("{") and self._members(v, sorted(v, key=list(v).index), True)
        elif isinstance(v, list):
            ok = self._feed("[") and all(
                (i == 0 or self._feed(self.item_sep)) and self._value(x) for i, x in enumerate(v)) and self._feed("]")
        else:
            ok = self._feed(json.dumps(v, ensure_ascii=False))
        if not ok:
            self._reset(mark)
        return ok

    def _members(self, obj: dict[str, Any], remaining: list[str], first: bool) -> bool:
        if not remaining:
            return self._feed("}")
        for k in remaining:
            mark = self.total
            if ((first or self._feed(self.item_sep)) and self._feed(json.dumps(k, ensure_ascii=False) + self.key_sep)
                    and self._value(obj[k]) and self._members(obj, [r for r in remaining if r != k], False)):
                return True
            self._reset(mark)
            if self.steps > self.budget:
                return False
        return False


def _keys(v: Any) -> Any:
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from _keys(x)
    elif isinstance(v, list):
        for x in v:
            yield from _keys(x)


def _resolve(node: Any, root: Any) -> Any:
    for _ in range(16):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#")):
            return node
        target: Any = root
        for part in [p for p in node["$ref"][1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                return {}
        node = target
    return node


def _props(node: Any, root: Any, depth: int = 0) -> list[tuple[str, Any]]:
    """Listed properties of ``node`` in the order llguidance emits them (own, then allOf / $ref / anyOf branches)."""
    node = _resolve(node, root)
    if not isinstance(node, dict) or depth > 8:
        return []
    out = list((node.get("properties") or {}).items())
    subs = [*(node.get("allOf") or [])]
    if "$ref" in node:
        subs.append({"$ref": node["$ref"]})
    subs += [*(node.get("anyOf") or []), *(node.get("oneOf") or [])]
    for sub in subs:
        out += _props(sub, root, depth + 1)
    return out


def schema_order(value: Any, node: Any, root: Any) -> Any:
    """``value`` with object keys reordered as the schema lists them (unlisted keys last), recursively."""
    node = _resolve(node, root)
    if isinstance(value, dict):
        props = _props(node, root)
        index: dict[str, int] = {}
        subs: dict[str, Any] = {}
        for i, (k, sub) in enumerate(props):
            index.setdefault(k, i)
            subs.setdefault(k, sub)
        keys = sorted(value, key=lambda k: index.get(k, len(index) + list(value).index(k)))
        extra = node.get("additionalProperties") if isinstance(node, dict) else None
        return {k: schema_order(value[k], subs.get(k, extra if isinstance(extra, dict) else {}), root) for k in keys}
    if isinstance(value, list) and isinstance(node, dict):
        prefix = node.get("prefixItems") or []
        items = node.get("items") if isinstance(node.get("items"), dict) else {}
        return [schema_order(v, prefix[i] if i < len(prefix) else items, root) for i, v in enumerate(value)]
    return value


def compile_grammar(schema: Any, tokenizer: Any, defaults: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """(error or None, grammar) for ``schema`` compiled by llguidance with ``defaults`` options."""
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=defaults)
    except (ValueError, TypeError) as exc:
        return str(exc), ""
    is_err, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    return (msgs[0] if msgs else "error") if is_err else None, grammar
