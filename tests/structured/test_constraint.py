"""The llguidance constraint: rewrites are exact where claimed, relaxations never block a valid instance."""

from __future__ import annotations

import json

import pytest

from fedinf.structured.constraint import build_constraint, compile_error
from fedinf.structured.schema import load_schema
from fedinf.structured.tokenizers import byte_tokenizer

llguidance = pytest.importorskip("llguidance")


def accepts(constraint_schema: dict, value: object) -> bool:
    """Byte-by-byte walk of the serialised value through the compiled constraint."""
    m = llguidance.LLMatcher(byte_tokenizer(), llguidance.LLMatcher.grammar_from_json_schema(constraint_schema),
                             log_level=0)
    data = list(json.dumps(value, ensure_ascii=False).encode())
    return m.try_consume_tokens(data) == len(data) and m.is_accepting()


CASES = [
    # schema, valid instances, invalid instances the constraint must block (when exact)
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "unevaluatedProperties": False},
     [{"a": 1}, {}], [{"b": 1}]),
    ({"dependentRequired": {"a": ["b"]}}, [{"a": 1, "b": 2}, {"c": 1}], [{"a": 1}]),
    ({"dependentSchemas": {"a": {"required": ["c"]}}}, [{"a": 1, "c": 2}, {}], [{"a": 1}]),
    ({"not": {"type": "string"}}, [1, None, [1]], ["x"]),
    ({"propertyNames": {"maxLength": 2}}, [{"ab": 1}, {}], [{"abc": 1}]),
    ({"$defs": {"n": {"$dynamicAnchor": "n", "type": "integer"}}, "$dynamicRef": "#n"}, [1], ["x"]),
    ({"type": "object", "not": {"required": ["x"]}}, [{"y": 1}], [{"x": 1}]),
]


@pytest.mark.parametrize(("schema", "valid", "invalid"), CASES)
def test_exact_rewrites(schema: dict, valid: list, invalid: list) -> None:
    c = build_constraint(load_schema(schema).normalised)
    assert c.compile_error is None and c.exact, c.notes
    for v in valid:
        assert accepts(c.schema, v), (schema, v)
    for v in invalid:
        assert not accepts(c.schema, v), (schema, v)


# llguidance fixes key order (listed properties first, in schema order): instances below are written that way.
RELAXED = [
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, [[1, 2]], "uniqueItems"),
    ({"type": "array", "contains": {"const": 3}}, [[1, 3]], "contains"),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 3.5], "oneOf"),
    ({"if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["b"]},
      "else": {"required": ["c"]}}, [{"a": 1, "b": 2}, {"c": 1, "a": 2}], "if"),
    ({"type": "string", "pattern": "^(?!admin).*$"}, ["user"], "pattern"),
    ({"type": "string", "format": "uri"}, ["https://x.org"], "format"),
    ({"not": {"enum": [1, 2]}}, [3, "x"], "not"),
]


@pytest.mark.parametrize(("schema", "valid", "keyword"), RELAXED)
def test_relaxations_keep_valid_instances_and_are_reported(schema: dict, valid: list, keyword: str) -> None:
    c = build_constraint(load_schema(schema).normalised)
    assert compile_error(c.schema) is None
    assert keyword in c.by_validation and keyword not in c.by_constraint
    for v in valid:
        assert accepts(c.schema, v), (schema, v)


def test_constraint_uses_compact_spaced_formatting() -> None:
    c = build_constraint({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert accepts(c.schema, {"a": 1})
    assert c.schema["x-guidance"]["whitespace_flexible"] is False


def test_property_matching_a_pattern_must_satisfy_both() -> None:
    # llguidance alone applies only `properties` to a listed key that also matches a patternProperties regex.
    schema = {"properties": {"foo": {"type": "array", "maxItems": 3}}, "patternProperties": {"f.o": {"minItems": 2}}}
    c = build_constraint(load_schema(schema).normalised)
    assert accepts(c.schema, {"foo": [1, 2]})
    assert not accepts(c.schema, {"foo": [1]})


def test_negative_multiples_are_not_blocked() -> None:
    c = build_constraint(load_schema({"type": "number", "multipleOf": 1.5}).normalised)
    assert accepts(c.schema, -4.5) and "multipleOf" in c.by_validation
    c2 = build_constraint(load_schema({"type": "integer", "multipleOf": 3, "minimum": 0}).normalised)
    assert accepts(c2.schema, 6) and not accepts(c2.schema, 7) and c2.exact


def test_unevaluated_properties_sees_if_annotations() -> None:
    schema = {"if": {"properties": {"foo": {"const": "then"}}, "required": ["foo"]},
              "unevaluatedProperties": False}
    c = build_constraint(load_schema(schema).normalised)
    assert accepts(c.schema, {"foo": "then"})


def test_prefix_checker_stops_a_stream_that_went_wrong() -> None:
    from fedinf.structured import PrefixChecker

    checker = PrefixChecker.for_schema({"type": "object", "properties": {"n": {"type": "integer"}},
                                        "required": ["n"]})
    assert checker.feed('{"n": ') and not checker.complete()
    assert not checker.feed('"oops"')
    ok = PrefixChecker.for_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert ok.feed('{\n  "n": 12\n}') and ok.complete()


def test_decimal_counts_are_normalised() -> None:
    n = load_schema({"type": "array", "maxItems": 2.0}).normalised
    assert n["maxItems"] == 2 and isinstance(n["maxItems"], int)
