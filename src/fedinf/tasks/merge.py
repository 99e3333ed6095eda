"""Software 1.0 + 2.0: merge the model's record with the deterministic extractors, field by field, and run checks.

For each field with a rule, the outcome is one of (``source``):

- ``agree``: model and extractor give the same normalised value;
- ``disagree``: both gave a value and they differ - the preferred side wins (``FieldRule.prefer``; an extractor
  below ``min_score`` loses), and both values are reported;
- ``extractor`` / ``model``: only one side found a value;
- ``none``: neither did;
- ``rejected``: only the model gave a value, and a check involving it failed - the value is set to null (and still
  reported as ``model_value``), unless the task sets ``reject_failed_model_values: false``.

Checks (validators) then run on the merged record; a failed check is attached to every field it involves. Nothing is
hidden: a disagreement or a failed check leaves the value in place and says so in ``fields`` and ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedinf.documents import Document
from fedinf.extractors.base import Found
from fedinf.extractors.checks import Check
from fedinf.tasks.normalize import normalize, same, to_record_value
from fedinf.tasks.spec import FieldRule, TaskSpec
from fedinf.tasks.validators import run_validator


@dataclass
class FieldReport:
    value: Any
    source: str
    model_value: Any = None
    extractor_value: Any = None
    span: dict[str, int] | None = None
    evidence: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    uncertain: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source,
                               "confidence": None if self.confidence is None else round(self.confidence, 3),
                               "uncertain": self.uncertain}
        if self.source == "rejected":
            out["model_value"] = self.model_value
        if self.source == "disagree":
            out["model_value"] = self.model_value
            out["extractor_value"] = self.extractor_value
        if self.span is not None:
            out["span"] = self.span
        if self.evidence:
            out["evidence"] = self.evidence
        if self.checks:
            out["checks"] = self.checks
        return out


def locate(doc: Document, kind: str, value: Any) -> dict[str, int] | None:
    """Where a model's value appears in the document, if it can be found verbatim (ids, text) or by value."""
    if value is None:
        return None
    if kind == "amount":
        from fedinf.extractors.amounts import find_amounts

        target = normalize("amount", value)
        amount_hit = next((h for h in find_amounts(doc.text) if abs(h.value) == abs(target)), None)
        return doc.span(amount_hit.start, amount_hit.end).to_dict() if amount_hit else None
    if kind == "date":
        from fedinf.extractors.dates import find_dates

        date = next((h for h in find_dates(doc.text) if h.date.isoformat() == value), None)
        return doc.span(date.start, date.end).to_dict() if date else None
    s = str(value).strip()
    if len(s) < 2:
        return None
    i = doc.text.find(s)
    if i < 0:
        i = doc.text.casefold().find(s.casefold())
    return doc.span(i, i + len(s)).to_dict() if i >= 0 else None


def merge_field(doc: Document, name: str, rule: FieldRule, model_value: Any, hit: Found | None) -> FieldReport:
    """One field's value, source and confidence: the extractor's score; agreement with the model raises it, a
    disagreement or a model-only value (unverified by any label) is low. ``uncertain`` is set by :func:`merge`."""
    kind = rule.normalize
    m = to_record_value(kind, model_value)
    e = to_record_value(kind, hit.value) if hit else None
    span = hit.span.to_dict() if hit else None
    evidence = hit.evidence if hit else None
    if m is None and e is None:
        return FieldReport(value=None, source="none")
    if e is None or hit is None:
        where = locate(doc, kind, m)
        return FieldReport(value=m, source="model", model_value=m, span=where,
                           confidence=MODEL_LOCATED if where else MODEL_UNLOCATED)
    if m is None:
        return FieldReport(value=e, source="extractor", extractor_value=e, span=span, evidence=evidence,
                           confidence=hit.score)
    if same(kind, m, e):
        return FieldReport(value=e, source="agree", model_value=m, extractor_value=e, span=span, evidence=evidence,
                           confidence=min(1.0, max(hit.score, 0.6) + AGREEMENT_BONUS))
    extractor_wins = rule.prefer == "extractor" and hit.score >= rule.min_score
    if extractor_wins:
        return FieldReport(value=e, source="disagree", model_value=m, extractor_value=e, span=span, evidence=evidence,
                           confidence=min(hit.score, KEPT_OVER_MODEL))
    return FieldReport(value=m, source="disagree", model_value=m, extractor_value=e, span=locate(doc, kind, m),
                       evidence=evidence, confidence=DISAGREEMENT)


MODEL_LOCATED = 0.5  # a model-only value found verbatim in the document, but next to no known label
MODEL_UNLOCATED = 0.3  # a model-only value the document does not contain as written
AGREEMENT_BONUS = 0.2
DISAGREEMENT = 0.4  # the model's value won a disagreement
KEPT_OVER_MODEL = 0.5  # the extractor's value won one: kept (above the built-in tasks' 0.45 floor), flagged


@dataclass
class Merged:
    record: dict[str, Any]
    fields: dict[str, FieldReport]
    checks: list[Check]
    warnings: list[str]


def merge(spec: TaskSpec, doc: Document, model_record: dict[str, Any] | None,
          found: dict[str, Found]) -> Merged:
    """Merge the model's record (None when no model ran) with the extractors' findings; run the validators."""
    model_record = model_record or {}
    record: dict[str, Any] = {}
    reports: dict[str, FieldReport] = {}
    warnings: list[str] = []
    for name in spec.property_names():
        rule = spec.fields.get(name)
        if rule is None:
            value = model_record.get(name)
            record[name] = value if value is not None else _empty(spec.output_schema["properties"][name])
            continue
        hit = found.get(name)
        floor = spec.min_confidence if rule.min_confidence is None else rule.min_confidence
        if hit is not None and hit.score < floor:
            warnings.append(f"{name}: the extractor's value scored {hit.score:.2f}, below the threshold {floor:g} "
                            f"({hit.evidence or 'no label'}); not used")
            hit = None
        rep = merge_field(doc, name, rule, model_record.get(name), hit)
        if rep.confidence is not None and rep.confidence < floor:
            warnings.append(f"{name}: the {rep.source} value's confidence {rep.confidence:.2f} is below the "
                            f"threshold {floor:g}; returned null")
            rep = FieldReport(value=None, source="low_confidence", model_value=rep.model_value,
                              extractor_value=rep.extractor_value, confidence=rep.confidence, uncertain=True)
        reports[name] = rep
        record[name] = rep.value
    checks = [c for v in spec.validators for c in run_validator(v, record)]
    if spec.reject_failed_model_values:
        for c in checks:
            for name in c.fields:
                got = reports.get(name)
                if not c.passed and got is not None and got.source == "model":
                    got.source, got.value, record[name] = "rejected", None, None
                    warnings.append(f"{name}: the model's value was rejected because check {c.name} failed "
                                    "(no extractor value to fall back on)")
    for c in checks:
        for name in c.fields:
            if name in reports:
                reports[name].checks.append(c.to_dict())
        if not c.passed:
            warnings.append(f"check {c.name} failed: {c.message}")
    _flag(spec, reports, checks, warnings)
    for name, rep in reports.items():
        if rep.source == "disagree":
            warnings.append(f"{name}: model and extractor disagree (kept the {'extractor' if rep.value == rep.extractor_value else 'model'}'s value)")
    return Merged(record=record, fields=reports, checks=checks, warnings=warnings)


def _flag(spec: TaskSpec, reports: dict[str, FieldReport], checks: list[Check], warnings: list[str]) -> None:
    """Mark every value a reviewer must look at: below ``spec.flag_below``, not backed by an extractor (model
    only, disagreement), or involved in a failed check."""
    failed = {n for c in checks if not c.passed for n in c.fields}
    for name, rep in reports.items():
        if rep.value is None or rep.source == "low_confidence":
            continue
        low = rep.confidence is not None and rep.confidence < spec.flag_below
        if low or rep.source in ("model", "disagree") or name in failed:
            rep.uncertain = True
            if low and rep.source == "extractor":
                warnings.append(f"{name}: uncertain (confidence {rep.confidence:.2f}, {rep.evidence or 'no label'})"
                                "; check it")
            elif rep.source == "model":
                warnings.append(f"{name}: the model's value is not backed by an extractor (confidence "
                                f"{rep.confidence:.2f}); check it")


def _empty(prop: dict[str, Any]) -> Any:
    types = set(_types(prop.get("type")))
    for alt in prop.get("anyOf", []) + prop.get("oneOf", []):
        if isinstance(alt, dict):
            types |= set(_types(alt.get("type")))
    if "null" in types:
        return None
    if "array" in types:
        return []
    return None


def _types(t: Any) -> list[str]:
    """A schema's ``type``: a name, a list of names (``[string, "null"]``) or absent."""
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []
