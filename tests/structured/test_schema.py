"""Schema IR: draft detection, normalisation, rejection with keywords and pointers."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from fedinf.errors import SchemaError
from fedinf.structured import OutputSpec, detect_draft, load_schema

D4 = "http://json-schema.org/draft-04/schema#"
D6 = "http://json-schema.org/draft-06/schema#"
D7 = "http://json-schema.org/draft-07/schema#"
D2019 = "https://json-schema.org/draft/2019-09/schema"
D2020 = "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(("uri", "draft"), [
    (D4, "draft4"), (D6, "draft6"), (D7, "draft7"), (D2019, "2019-09"), (D2020, "2020-12"),
    ("https://json-schema.org/draft-07/schema", "draft7"), (D2020 + "#", "2020-12"),
])
def test_draft_detection(uri: str, draft: str) -> None:
    assert detect_draft({"$schema": uri}) == draft


def test_no_schema_keyword_means_2020_12() -> None:
    assert detect_draft({"type": "object"}) == "2020-12"
    assert load_schema({"type": "string"}).draft == "2020-12"


def test_unknown_metaschema_is_read_as_2020_12_without_fetching() -> None:
    s = load_schema({"$schema": "http://127.0.0.1:9/my-meta", "type": "string"})
    assert s.draft == "2020-12" and "not fetched" in s.notes[0]
    assert s.is_valid("x") and not s.is_valid(1)


def test_draft4_exclusive_bounds_and_definitions() -> None:
    s = load_schema({
        "$schema": D4,
        "definitions": {"small": {"type": "integer", "maximum": 3, "exclusiveMaximum": True,
                                  "minimum": 0, "exclusiveMinimum": False}},
        "properties": {"n": {"$ref": "#/definitions/small"}},
    })
    n = s.normalised
    assert n["$schema"] == D2020
    assert n["$defs"]["small"] == {"type": "integer", "exclusiveMaximum": 3, "minimum": 0}
    assert n["properties"]["n"] == {"$ref": "#/$defs/small"}
    # validation keeps the original semantics (draft 4 validator)
    assert s.is_valid({"n": 2}) and not s.is_valid({"n": 3})


def test_items_array_and_dependencies_become_2020_12() -> None:
    s = load_schema({
        "$schema": D7,
        "properties": {"t": {"items": [{"type": "integer"}, {"type": "string"}], "additionalItems": False}},
        "dependencies": {"a": ["b"], "c": {"required": ["d"]}},
        "definitions": {"x": {"items": [{"$ref": "#/properties/t/items/1"}]}},
    })
    n = s.normalised
    assert n["properties"]["t"] == {"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False}
    assert n["dependentRequired"] == {"a": ["b"]}
    assert n["dependentSchemas"] == {"c": {"required": ["d"]}}
    assert n["$defs"]["x"]["prefixItems"][0] == {"$ref": "#/properties/t/prefixItems/1"}


def test_draft7_ref_siblings_are_ignored_but_still_addressable() -> None:
    s = load_schema({"$schema": D7, "$ref": "#/properties/a", "properties": {"a": {"type": "integer"}},
                     "type": "string"})
    n = s.normalised
    assert "type" not in n and "properties" not in n
    assert n["$ref"] == "#/$defs/fedinf-ref-siblings/properties/a"
    assert s.is_valid(3) and not s.is_valid("x")


def test_invalid_schema_lists_keywords_and_pointers() -> None:
    with pytest.raises(SchemaError) as exc:
        load_schema({"type": "object", "properties": {"a": {"type": "strin"}, "b": {"minLength": "3"}},
                     "required": "a"})
    problems = exc.value.details["problems"]
    where = {(p["pointer"], p["keyword"]) for p in problems}
    assert ("/properties/a/type", "type") in where
    assert ("/properties/b/minLength", "minLength") in where
    assert ("/required", "required") in where
    assert "/properties/a/type" in exc.value.message


def test_unsatisfiable_schema_names_the_contradiction() -> None:
    with pytest.raises(SchemaError) as exc:
        load_schema({"type": "object", "properties": {
            "age": {"type": "integer", "minimum": 18, "maximum": 10}}, "required": ["age"]})
    problems = exc.value.details["problems"]
    assert any(p["pointer"] == "/properties/age" and p["keyword"] == "minimum" for p in problems)
    assert any(p["pointer"] == "/properties/age" and p["keyword"] == "maximum" for p in problems)
    assert "cannot be satisfied" in exc.value.message


def test_optional_unsatisfiable_property_is_served() -> None:
    # 'age' is optional: an object without it is valid, so the schema is satisfiable.
    s = load_schema({"type": "object", "properties": {"age": {"type": "integer", "minimum": 18, "maximum": 10}}})
    assert s.is_valid({})


def test_false_subschema_required_is_unsatisfiable() -> None:
    with pytest.raises(SchemaError) as exc:
        load_schema({"type": "object", "properties": {"x": False}, "required": ["x"]})
    assert any(p["pointer"] == "/properties/x" and p["keyword"] == "false" for p in exc.value.details["problems"])


def test_remote_ref_is_never_fetched() -> None:
    with pytest.raises(SchemaError) as exc:
        load_schema({"$ref": "http://127.0.0.1:9/schema.json"})
    assert exc.value.details["problems"][0]["keyword"] == "$ref"


def test_unresolvable_local_ref_is_rejected() -> None:
    with pytest.raises(SchemaError):
        load_schema({"$ref": "#/$defs/missing"})


def test_formats_are_asserted() -> None:
    s = load_schema({"type": "string", "format": "email"})
    assert s.is_valid("a@example.com")
    assert not s.is_valid("not an email")
    assert s.errors("nope")[0].startswith("at /:")


class Address(BaseModel):
    street: str
    zip: str


class Claim(BaseModel):
    claim_id: str
    amount: float
    addresses: list[Address]
    note: str | None = None


def test_pydantic_round_trip() -> None:
    spec = OutputSpec.from_pydantic(Claim)
    assert spec.schema is not None and spec.model is Claim
    value = Claim(claim_id="C-1", amount=12.5, addresses=[Address(street="Main", zip="1000")])
    assert spec.schema.is_valid(value.model_dump(mode="json"))
    assert not spec.schema.is_valid({"claim_id": "C-1"})
