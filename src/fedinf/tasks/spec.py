"""The declarative task: everything about a workload is data, parsed strictly (unknown keys are errors).

A task lives in the config's ``tasks:`` list, either inline or as ``{file: path/to/task.yaml}`` (relative to the
config file). Example::

    tasks:
      - name: purchase_order
        description: Purchase orders to records
        inputs: [pdf, text]
        prompt: |
          Extract the purchase order fields from this document.
          {document}
        output_schema: {type: object, properties: {...}, required: [...], additionalProperties: false}
        route: onprem-extract            # a route or model id
        policy: {min_data_class: confidential, allowed_zones: [onprem]}
        fields:                          # deterministic extractors and normalisation, per output field
          po_number: {extractor: invoice_number, normalize: id}
          total: {extractor: total_amount, normalize: amount, prefer: extractor}
        validators:
          - {check: net_plus_tax, fields: [net, tax, total]}
        examples: [{input: "PO 17 ... total 12.00", output: {po_number: "17", total: 12.0}}]

Prompt templates may use ``{document}`` (the text, or one chunk of it), ``{name}``, ``{pages}`` and ``{fields}``
(the output field names); other braces are left as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fedinf.data_class import DataClass

InputKind = Literal["text", "pdf", "image", "html", "json"]
Normalize = Literal["text", "id", "date", "amount", "currency", "iban", "none"]
_ALL_INPUTS: tuple[InputKind, ...] = ("text", "pdf", "image", "html", "json")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskPolicy(_Strict):
    min_data_class: DataClass = Field(
        default=DataClass.INTERNAL,
        description="The lowest data class the task's documents are assumed to have (the classifier may raise it).")
    allowed_zones: list[str] | None = Field(
        default=None, description="Zones whose models may run this task (default: any the data class allows).")

    @field_validator("min_data_class", mode="before")
    @classmethod
    def _cls(cls, v: Any) -> Any:
        return DataClass.parse(v)


class FieldRule(_Strict):
    extractor: str | None = Field(default=None, description="A deterministic extractor (see fedinf.extractors).")
    normalize: Normalize = Field(default="text", description="How values are normalised and compared.")
    prefer: Literal["extractor", "model"] = Field(
        default="extractor", description="Whose value wins when the extractor and the model disagree.")
    min_score: float = Field(default=0.0, ge=0, le=1,
                             description="Below this extractor score the model's value wins a disagreement.")
    min_confidence: float | None = Field(default=None, ge=0, le=1, description=(
        "This field's confidence threshold (default: the task's min_confidence)."))


class Validator(_Strict):
    check: str = Field(description="A registered validator kind (fedinf.tasks.validators.VALIDATORS).")
    fields: list[str] = Field(default_factory=list, description="The fields the check reads, in order.")
    items: str | None = Field(default=None, description="line_items_sum: the array field.")
    item_amount: str = Field(default="amount", description="line_items_sum: the amount key in each item.")

    @model_validator(mode="after")
    def _known(self) -> "Validator":
        from fedinf.tasks.validators import VALIDATORS

        kind = VALIDATORS.get(self.check)
        if kind is None:
            raise ValueError(f"unknown check {self.check!r}; known checks: {sorted(VALIDATORS)}")
        if (why := kind.problem(self)) is not None:
            raise ValueError(why)
        return self


class Example(_Strict):
    input: str
    output: dict[str, Any]


class TaskLimits(_Strict):
    max_document_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_pages: int = Field(default=200, gt=0)
    chunk_tokens: int = Field(default=2500, ge=64, description="Document tokens per model call (longer: split).")
    max_chunks: int = Field(default=4, ge=1, description="At most this many model calls per document.")


class TaskSpec(_Strict):
    name: str
    description: str = ""
    inputs: list[InputKind] = Field(default_factory=lambda: list(_ALL_INPUTS))
    ocr: Literal["rapidocr", "tesseract", "off"] = Field(default="rapidocr", description=(
        "OCR engine for images and image-only PDF pages (off: such documents get 422 needs_ocr)."))
    min_confidence: float = Field(default=0.0, ge=0, le=1, description=(
        "Values whose confidence is below this are returned as null with a warning instead of a guess; fields may "
        "override it (fields.<name>.min_confidence)."))
    flag_below: float = Field(default=0.8, ge=0, le=1, description=(
        "Values below this confidence, model-only values, disagreements and values in a failed check are marked "
        "`uncertain: true` (with a warning)."))
    system: str = Field(default=(
        "You extract data from business documents into JSON. Copy values exactly as they appear in the document. "
        "Use null when a value is not in the document. Dates are YYYY-MM-DD; amounts are plain numbers."))
    prompt: str = Field(default="Extract the fields {fields} from this document.\n\nDocument:\n{document}")
    output_schema: dict[str, Any] = Field(description="JSON Schema of the record (an object).")
    route: str = Field(default="auto", description="Route alias or model id the model call uses.")
    policy: TaskPolicy = Field(default_factory=TaskPolicy)
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    validators: list[Validator] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
    max_tokens: int = Field(default=512, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_reasks: int | None = Field(default=None, ge=0, le=10, description=(
        "Re-asks when the output fails validation (default: the gateway's). Constrained local models at "
        "temperature 0 repeat themselves, so built-in tasks use 0."))
    timeout_s: float | None = Field(default=None, gt=0, le=3600,
                                    description="Deadline of each model call (default: the model's timeouts).")
    reject_failed_model_values: bool = Field(default=True, description=(
        "A model-only value involved in a failed check is set to null (and reported as rejected)."))
    use_model: bool = Field(default=True, description="False: deterministic extractors only (no model call).")
    model_input: Literal["document", "snippets"] = Field(default="document", description=(
        "document: the model reads the whole document (in chunks) for every field. snippets: it is asked only about "
        "fields the extractors did not settle, reading their candidates and the lines around them (no call when "
        "every field is settled); see fedinf.tasks.context."))
    builder: str | None = Field(default=None, description=(
        "A record builder for nested standard formats (e.g. `advisory`: OSV + remediation); see "
        "fedinf.tasks.builders."))
    limits: TaskLimits = Field(default_factory=TaskLimits)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be 1-64 characters: lowercase letters, digits, _ and -, starting with a letter")
        return v

    @model_validator(mode="after")
    def _check(self) -> "TaskSpec":
        from fedinf.extractors import EXTRACTORS

        schema = self.output_schema
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise ValueError("output_schema must be a JSON Schema object with `properties`")
        props = schema["properties"]
        _check_schema(schema)
        for name, rule in self.fields.items():
            if name not in props:
                raise ValueError(f"fields.{name}: not a property of output_schema ({sorted(props)})")
            if rule.extractor is not None and rule.extractor not in EXTRACTORS:
                raise ValueError(f"fields.{name}.extractor: unknown extractor {rule.extractor!r}; "
                                 f"known: {sorted(EXTRACTORS)}")
        from fedinf.tasks.builders import BUILDERS

        if self.builder is not None and self.builder not in BUILDERS:
            raise ValueError(f"builder: unknown builder {self.builder!r}; known: {sorted(BUILDERS)}")
        for i, v in enumerate(self.validators):
            for f in [*v.fields, *([v.items] if v.items else [])]:
                if f not in props:
                    raise ValueError(f"validators[{i}]: {f!r} is not a property of output_schema")
        return self

    def definition_hash(self) -> str:
        """SHA-256 of the task's definition (canonical JSON of the settings that differ from their defaults, so a
        new optional setting in a later fedinf does not invalidate earlier results): batch resume re-runs documents
        when it changes."""
        blob = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def property_names(self) -> list[str]:
        return list(self.output_schema["properties"])

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/tasks`` shows."""
        return {"name": self.name, "description": self.description, "inputs": list(self.inputs),
                "route": self.route, "policy": {"min_data_class": self.policy.min_data_class.label,
                                                "allowed_zones": self.policy.allowed_zones},
                "output_schema": self.output_schema,
                "extractors": {k: r.extractor for k, r in self.fields.items() if r.extractor},
                "validators": [v.model_dump(exclude_defaults=True) for v in self.validators],
                "limits": self.limits.model_dump()}


def _check_schema(schema: dict[str, Any]) -> None:
    """Errors a task file can hide until the first document: ``required`` naming a property that does not exist
    (at any depth), and anything the JSON Schema meta-schema rejects (an invalid ``pattern`` regex included)."""
    import jsonschema_rs

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            req = node.get("required")
            if isinstance(props, dict) and isinstance(req, list):
                missing = [r for r in req if r not in props]
                if missing and node.get("additionalProperties") is not True:
                    raise ValueError(f"output_schema{path}.required names {missing}, not in its properties "
                                     f"({sorted(props)})")
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema, "")
    try:
        jsonschema_rs.validator_for(schema)
    except jsonschema_rs.ValidationError as exc:
        where = ".".join(str(p) for p in getattr(exc, "instance_path", []) or [])
        raise ValueError(f"output_schema is not a valid JSON Schema: {exc.message}"
                         + (f" (at {where})" if where else "")) from None
    except ValueError as exc:
        raise ValueError(f"output_schema is not a valid JSON Schema: {exc}") from None
