"""OpenAI strict-mode transform: exact where possible, refused (with a reason) otherwise."""

from __future__ import annotations

from fedinf.structured.schema import load_schema
from fedinf.structured.strict import denull, to_strict


def test_optional_properties_become_required_and_nullable() -> None:
    schema = load_schema({"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "nick": {"type": ["string", "null"]}},
        "required": ["name"]}).normalised
    strict, reason = to_strict(schema)
    assert reason is None and strict is not None
    assert strict["required"] == ["name", "age", "nick"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["age"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert strict["properties"]["nick"] == {"type": ["string", "null"]}  # already nullable: unchanged


def test_nested_objects_and_refs() -> None:
    schema = {"type": "object", "$defs": {"addr": {"type": "object", "properties": {"zip": {"type": "string"}}}},
              "properties": {"home": {"$ref": "#/$defs/addr"}, "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["home", "tags"]}
    strict, reason = to_strict(schema)
    assert reason is None
    assert strict["$defs"]["addr"]["additionalProperties"] is False
    assert strict["$defs"]["addr"]["required"] == ["zip"]


def test_not_exact_cases_are_refused_with_reason() -> None:
    cases = [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "allOf": [{"required": ["a"]}]}, "allOf"),
        ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "not"),
        ({"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}}, "minLength"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "properties"),
        ({"type": "array", "items": {"type": "string"}}, "object root"),
        ({"type": "object", "properties": {"a": {}}}, "unconstrained"),
        ({"type": "object", "properties": {"a": {"type": "string", "format": "uri"}}}, "uri"),
    ]
    for schema, word in cases:
        strict, reason = to_strict(schema)
        assert strict is None and reason and word in reason, (schema, reason)


def test_denull_removes_only_added_nulls() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": ["string", "null"]},
        "c": {"type": "object", "properties": {"d": {"type": "string"}}}}}
    out = denull({"a": None, "b": None, "c": {"d": None}}, schema)
    assert out == {"b": None, "c": {}}
