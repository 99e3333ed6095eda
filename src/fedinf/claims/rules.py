"""Claim rules: a CEL expression (Common Expression Language, via ``cel-python``) over one claim, with its scope,
evidence and review state.

Why CEL: it is a published standard (Google; used by Kubernetes validation rules, Envoy, Firebase), expressions are
plain text that are *evaluated*, never executed - no I/O, no loops beyond bounded macros (``all``, ``exists``, ``map``)
and guaranteed termination - and it is typed and readable by a reviewer (``claim.lines.all(l, l.procedure != '')``).
JSONLogic was the alternative; its Python implementations are unmaintained and its JSON trees are much harder to
review by eye.

A rule's expression is ``true`` when the claim (or, for ``per: line``, the service line) PASSES. Variables:

- ``claim``: ``kind`` (837P/837I), ``payer_id``, ``charge``, ``line_total``, ``facility_code``, ``frequency``,
  ``billing_npi``, ``billing_taxonomy``, ``subscriber_id``, ``patient_gender``, ``patient_birth_date``,
  ``diagnoses`` (list), ``prior_auth``, ``created``, ``lines`` (list of line maps), ``elements`` (map
  ``"2010AA.NM109"`` / ``"2300.CLM05-1"`` / qualified ``"2300.REF[G1]02"`` -> list of values, one per segment
  occurrence, ``''`` when empty) and ``segments`` (map ``"2010AA.N3"`` -> count).
- ``line`` (``per: line`` rules): ``procedure``, ``modifiers``, ``revenue_code``, ``charge``, ``units``,
  ``place_of_service``, ``service_date``, ``ndc``.
- Functions: ``valid_npi(string)`` (10 digits with the NPI Luhn check digit).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fedinf.claims.models import Claim, Pos, Segment, ServiceLine
from fedinf.errors import RequestError

RuleStatus = Literal["candidate", "approved", "rejected", "retired"]


class Evidence(BaseModel):
    """One rejection a rule was derived from. Never holds PHI: the claim is referenced by a salted digest."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["999", "997", "277CA", "835"]
    codes: str  # e.g. "IK3 NM1 pos 17 code 8; IK4 9 (DE 67) code 7" / "STC A7:562:85" / "CAS CO 96; LQ HE N130"
    claim_ref: str = ""  # sha256 prefix of (transaction control number, claim id)
    document: str = ""  # sha256 prefix of the rejection document


class Scope(BaseModel):
    """Where a rule applies: payers (empty: any) and claim types (empty: any)."""

    model_config = ConfigDict(extra="forbid")

    payers: list[str] = Field(default_factory=list)
    claim_types: list[str] = Field(default_factory=list)

    def covers(self, claim: Claim) -> bool:
        return (not self.payers or claim.payer_id in self.payers) and \
            (not self.claim_types or claim.kind in self.claim_types)


class Target(BaseModel):
    """What a violation points at: loop, segment id, element position (optional)."""

    model_config = ConfigDict(extra="forbid")

    loop: str = ""
    segment: str = ""
    element: str = ""  # "09", "05-1"


class Rule(BaseModel):
    """A rule: CEL ``expression`` (true = passes), plain-language ``description``, scope, evidence, review state."""

    model_config = ConfigDict(extra="forbid")

    id: str
    expression: str
    description: str
    per: Literal["claim", "line"] = "claim"
    severity: Literal["error", "warning"] = "error"
    scope: Scope = Field(default_factory=Scope)
    target: Target = Field(default_factory=Target)
    evidence: list[Evidence] = Field(default_factory=list)
    source: str = ""  # 999 / 277CA / 835
    template: str = ""  # which derivation template made it (e.g. "ik4.7", "stc.562", "carc.96")
    status: RuleStatus = "candidate"
    created_at: float = Field(default_factory=time.time)
    reviewed_by: str | None = None
    reviewed_at: float | None = None
    note: str = ""

    @staticmethod
    def make_id(expression: str, scope: Scope, per: str) -> str:
        """Content-addressed: the same expression, scope and granularity always get the same id."""
        key = json.dumps([expression, sorted(scope.payers), sorted(scope.claim_types), per])
        return "R" + hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that failed on a claim (or one of its lines)."""

    rule: Rule
    claim: Claim
    pos: Pos
    line: int | None = None
    error: str | None = None  # set when the expression could not be evaluated on this claim


def valid_npi(value: Any) -> bool:
    """NPI check: 10 digits, Luhn over ``80840`` + the first 9 digits."""
    s = str(value)
    if len(s) != 10 or not s.isdigit():
        return False
    digits = [int(d) for d in "80840" + s[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(s[9])


class Compiler:
    """Compiles CEL once per expression (cached per instance) and evaluates rules on claims."""

    def __init__(self) -> None:
        import celpy

        from celpy.adapter import json_to_cel

        self._to_cel = json_to_cel
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}

    def check(self, expression: str) -> None:
        """Raise :class:`RequestError` (``invalid_rule``) when ``expression`` is not valid CEL."""
        self.program(expression)

    def program(self, expression: str) -> Any:
        prog = self._programs.get(expression)
        if prog is None:
            if len(expression) > 4000:
                raise RequestError("a rule expression is limited to 4000 characters", code="invalid_rule")
            try:
                ast = self._env.compile(expression)
            except Exception as exc:  # celpy raises CELParseError (a plain Exception subclass)
                raise RequestError(f"not a valid CEL expression: {str(exc).splitlines()[0][:200]}",
                                   code="invalid_rule", param="expression") from None
            from celpy import celtypes

            prog = self._env.program(ast, functions={"valid_npi": lambda v: celtypes.BoolType(valid_npi(v))})
            self._programs[expression] = prog
        return prog

    def evaluate(self, rules: list[Rule], claim: Claim, segments: dict[int, Segment], *,
                 memo: dict[str, tuple[bool, str | None]] | None = None) -> list[RuleHit]:
        """Every failing rule in scope for ``claim``; ``segments`` maps file index -> segment (its transaction).

        Each rule sees only the part of the context its expression can reach (:func:`needs`), and CEL is pure, so
        results are memoised in ``memo`` (pass one dict per document) on exactly those inputs: claims of one
        provider repeat most values, and the interpreter is the slow part."""
        scoped = [r for r in rules if r.scope.covers(claim)]
        if not scoped:
            return []
        ctx = claim_context(claim, segments)
        memo = {} if memo is None else memo
        hits: list[RuleHit] = []
        for rule in scoped:
            view = _view(ctx, needs(rule.expression))
            if rule.per == "line":
                for line, lctx in zip(claim.lines, ctx["lines"]):
                    ok, err = self._cached(rule, view, lctx, memo)
                    if not ok:
                        hits.append(RuleHit(rule=rule, claim=claim, pos=line.pos, line=line.number, error=err))
            else:
                ok, err = self._cached(rule, view, None, memo)
                if not ok:
                    hits.append(RuleHit(rule=rule, claim=claim, pos=_target_pos(rule, claim, segments), error=err))
        return hits

    def _cached(self, rule: Rule, view: dict[str, Any], line: dict[str, Any] | None,
                memo: dict[str, tuple[bool, str | None]]) -> tuple[bool, str | None]:
        key = json.dumps([rule.expression, view, line], sort_keys=True, default=str)
        found = memo.get(key)
        if found is None:
            activation = {"claim": self._to_cel(view)}
            if line is not None:
                activation["line"] = self._to_cel(line)
            found = memo[key] = self._run(rule, activation)
        return found

    def _run(self, rule: Rule, activation: dict[str, Any]) -> tuple[bool, str | None]:
        try:
            result = self.program(rule.expression).evaluate(activation)
        except Exception as exc:  # an evaluation error (missing key, type mismatch): report, never crash
            return False, f"rule could not be evaluated: {type(exc).__name__}"
        if isinstance(result, Exception):
            return False, "rule could not be evaluated"
        return bool(result), None


@dataclass(frozen=True, slots=True)
class Needs:
    """What an expression can read: claim fields and, of the two maps, which keys (None: everything)."""

    fields: frozenset[str] | None
    keys: frozenset[str] | None


_FIELD = re.compile(r"\bclaim\s*\.\s*(\w+)")
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_WHOLE = re.compile(r"\bclaim\b(?!\s*\.)")


@lru_cache(maxsize=1024)
def needs(expression: str) -> Needs:
    """A conservative reading of ``expression``: the claim fields it names, and the map keys it can look up. Any
    use of ``claim`` or of its maps that is not ``claim.f`` / ``m['key']`` / ``'key' in m`` means *everything*."""
    if _WHOLE.search(expression):
        return Needs(None, None)
    fields = frozenset(_FIELD.findall(expression))
    keys: frozenset[str] | None = frozenset(a or b for a, b in _LITERAL.findall(expression))
    for m in ("elements", "segments"):
        loose = len(re.findall(rf"claim\s*\.\s*{m}\b(?!\s*\[)", expression))
        as_in = len(re.findall(rf"\bin\s+claim\s*\.\s*{m}\b(?!\s*\[)", expression))
        if loose > as_in:
            keys = None
    return Needs(fields, keys)


def _view(ctx: dict[str, Any], n: Needs) -> dict[str, Any]:
    """The part of the claim context an expression can reach (see :func:`needs`)."""
    if n.fields is None:
        return ctx
    view = {f: ctx[f] for f in n.fields if f in ctx}
    if n.keys is not None:
        for m in ("elements", "segments"):
            if m in view:
                view[m] = {k: v for k, v in ctx[m].items() if k in n.keys}
    return view


def _target_pos(rule: Rule, claim: Claim, segments: dict[int, Segment]) -> Pos:
    t = rule.target
    if t.segment:
        for i in claim.segment_indices:
            seg = segments.get(i)
            if seg is not None and seg.id == t.segment and (not t.loop or seg.pos.loop == t.loop):
                return seg.pos
    return claim.pos


_QUALIFIED = {"REF": 1, "DTP": 1, "NM1": 1, "AMT": 1, "PER": 1, "N1": 1, "PRV": 1, "HI": 1}


def element_keys(seg: Segment) -> dict[str, str]:
    """``{"2300.CLM01": ..., "2300.CLM05-1": ..., "2300.REF[G1]02": ...}`` for one segment."""
    base = f"{seg.pos.loop}.{seg.id}"
    qual = seg.elements[0][0] if seg.id in _QUALIFIED and seg.elements and seg.elements[0] else ""
    out: dict[str, str] = {}
    for i, comps in enumerate(seg.elements, start=1):
        keys = [f"{base}{i:02d}"] + ([f"{base}[{qual}]{i:02d}"] if qual else [])
        for k in keys:
            out[k] = comps[0] if len(comps) == 1 else ":".join(comps)
            if len(comps) > 1:
                for j, c in enumerate(comps, start=1):
                    out[f"{k}-{j}"] = c
    return out


def _line_context(line: ServiceLine) -> dict[str, Any]:
    return {"procedure": line.procedure, "modifiers": list(line.modifiers), "revenue_code": line.revenue_code,
            "charge": line.charge, "units": line.units, "place_of_service": line.place_of_service,
            "service_date": line.service_date, "ndc": line.ndc, "qualifier": line.qualifier}


def claim_context(claim: Claim, segments: dict[int, Segment]) -> dict[str, Any]:
    """The ``claim`` variable rules see (see the module docstring)."""
    elements: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for i in claim.segment_indices:
        seg = segments.get(i)
        if seg is None:
            continue
        counts[f"{seg.pos.loop}.{seg.id}"] = counts.get(f"{seg.pos.loop}.{seg.id}", 0) + 1
        for k, v in element_keys(seg).items():
            elements.setdefault(k, []).append(v)
    lines = [_line_context(ln) for ln in claim.lines]
    return {
        "kind": claim.kind, "payer_id": claim.payer_id, "charge": claim.charge,
        "line_total": round(sum(ln.charge for ln in claim.lines), 2), "facility_code": claim.facility_code,
        "frequency": claim.frequency, "billing_npi": claim.billing_npi, "billing_taxonomy": claim.billing_taxonomy,
        "subscriber_id": claim.subscriber_id, "patient_gender": claim.patient_gender,
        "patient_birth_date": claim.patient_birth_date, "diagnoses": list(claim.diagnoses),
        "prior_auth": claim.prior_auth, "created": claim.created, "lines": lines, "elements": elements,
        "segments": counts,
    }
