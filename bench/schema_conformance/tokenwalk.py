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

BUDGET = 4000


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
        self._cache: dict[str, list[int]] = {}

    def accepts(self, value: Any) -> bool:
        if self.error:
            return False
        self.m.reset()
        self.total = 0
        self.steps = 0
        return self._value(plain(value)) and bool(self.m.is_accepting())

    def _feed(self, text: str) -> bool:
        self.steps += 1
        if self.steps > BUDGET:
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
            if self.steps > BUDGET:
                return False
        return False


def compile_grammar(schema: Any, tokenizer: Any, defaults: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """(error or None, grammar) for ``schema`` compiled by llguidance with ``defaults`` options."""
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=defaults)
    except (ValueError, TypeError) as exc:
        return str(exc), ""
    is_err, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    return (msgs[0] if msgs else "error") if is_err else None, grammar
