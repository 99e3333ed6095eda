"""Pre-validation: structural checks (pyx12's map and code lists) plus approved rules, one report per document.

Every violation names where it is: segment id, its position in the transaction set (as a 999 IK302 would), its index
in the file, the loop, the element (``CLM05-1``) and - for a rule - the rule id. ``severity`` is ``error`` for what
a 999 would reject (pyx12's IK3/IK4/IK5 codes, envelope errors, failing ``error`` rules) and ``warning`` for what
pyx12 notes without rejecting (e.g. trailing element separators) and ``warning`` rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from fedinf.claims.engine import Engine, StructuralError
from fedinf.claims.models import Document
from fedinf.claims.parsing import build
from fedinf.claims.rules import Compiler, Rule, RuleHit

SEGMENT_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"})
ELEMENT_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13", "I10", "I11", "I12", "I13",
                           "I6", "I9"})
IK304 = {"1": "unrecognized segment ID", "2": "unexpected segment", "3": "required segment missing",
         "4": "loop occurs over maximum times", "5": "segment exceeds maximum use",
         "6": "segment not in defined transaction set", "7": "segment not in proper sequence",
         "8": "segment has data element errors", "I4": "implementation 'not used' segment present",
         "I6": "implementation dependent segment missing", "I7": "implementation loop occurs under minimum times",
         "I8": "implementation segment below minimum use", "I9": "implementation dependent 'not used' segment present"}
IK403 = {"1": "required data element missing", "2": "conditional required data element missing",
         "3": "too many data elements", "4": "data element too short", "5": "data element too long",
         "6": "invalid character in data element", "7": "invalid code value", "8": "invalid date",
         "9": "invalid time", "10": "exclusion condition violated", "12": "too many repetitions",
         "13": "too many components", "I10": "implementation 'not used' data element present",
         "I11": "implementation too few repetitions", "I12": "implementation pattern match failure",
         "I13": "implementation dependent 'not used' data element present", "I6": "code value not used in "
         "implementation", "I9": "implementation dependent data element missing"}


@dataclass(frozen=True, slots=True)
class Violation:
    """One finding. ``kind``: ``structural`` (pyx12 map/code sets) or ``rule`` (an approved rule)."""

    kind: str
    severity: str
    code: str  # 999 code (IK304/IK403/IK502/...) for structural, the rule id for rules
    message: str
    level: str = "segment"  # interchange | group | transaction | segment | element | claim | line
    segment_id: str | None = None
    position: int | None = None
    index: int | None = None
    loop: str | None = None
    element: str | None = None  # CLM05-1
    transaction: str | None = None
    claim: str | None = None  # the claim's submitter id (CLM01) - returned to the caller, never audited
    line: int | None = None
    rule_id: str | None = None
    value: str | None = None  # offending code value (code-set errors only)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass
class Report:
    """The outcome for one document."""

    sha256: str
    transactions: list[str] = field(default_factory=list)
    claims: int = 0
    violations: list[Violation] = field(default_factory=list)
    rules_applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for v in self.violations if v.severity == "error")

    @property
    def accepted(self) -> bool:
        return self.errors == 0

    @property
    def rejected_claims(self) -> int:
        return len({v.claim for v in self.violations if v.severity == "error" and v.claim})

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "accepted": self.accepted, "errors": self.errors,
                "warnings": len(self.violations) - self.errors, "transactions": self.transactions,
                "claims": self.claims, "rejected_claims": self.rejected_claims, "rules_applied": self.rules_applied,
                "notes": self.notes, "violations": [v.to_dict() for v in self.violations]}


def structural(e: StructuralError) -> Violation:
    """pyx12's error as a violation (with the 999 code's standard meaning)."""
    if e.level == "segment":
        severity = "error" if e.code in SEGMENT_CODES else "warning"
        meaning = IK304.get(e.code, "")
    elif e.level == "element":
        severity = "error" if e.code in ELEMENT_CODES else "warning"
        meaning = IK403.get(e.code, "")
    else:
        severity, meaning = "error", ""
    msg = f"{meaning}: {e.message}" if meaning else e.message
    return Violation(kind="structural", severity=severity, code=e.code, message=msg, level=e.level,
                     segment_id=e.segment_id, position=e.position, index=e.index, loop=e.loop,
                     element=e.ref[len(e.segment_id or ""):] if e.element else None, transaction=e.transaction,
                     value=e.value)


def _hit(h: RuleHit) -> Violation:
    t = h.rule.target
    msg = h.rule.description + (f" ({h.error})" if h.error else "")
    return Violation(kind="rule", severity=h.rule.severity, code=h.rule.id, message=msg,
                     level="line" if h.line is not None else "claim", segment_id=h.pos.segment_id,
                     position=h.pos.position, index=h.pos.index, loop=h.pos.loop, element=t.element or None,
                     transaction=h.pos.transaction, claim=h.claim.claim_id, line=h.line, rule_id=h.rule.id)


class Validator:
    """Structural checks + rules. Build once (maps and compiled rules are cached) and reuse."""

    def __init__(self, *, engine: Engine | None = None, compiler: Compiler | None = None) -> None:
        self.engine = engine or Engine()
        self.compiler = compiler or Compiler()

    def validate(self, text: str, rules: list[Rule]) -> tuple[Report, Document]:
        """Check one document. Raises :class:`~fedinf.errors.InvalidX12` only when it is not X12 at all."""
        walk = self.engine.walk(text)
        doc = build(walk)
        report = Report(sha256=hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest(),
                        transactions=[t.kind for t in doc.transactions], claims=len(doc.claims),
                        notes=list(walk.notes))
        claim_at = {i: c.claim_id for c in doc.claims for i in c.segment_indices if i}
        for e in walk.errors:
            v = structural(e)
            if e.index is not None and e.level in ("segment", "element") and e.index in claim_at:
                v = Violation(**{**v.to_dict(), "claim": claim_at[e.index]})
            report.violations.append(v)
        active = [r for r in rules if r.status == "approved"]
        if active and doc.claims:
            by_tx = {t.control_number: {s.pos.index: s for s in t.segments} for t in doc.transactions}
            applied: set[str] = set()
            memo: dict[str, tuple[bool, str | None]] = {}
            for claim in doc.claims:
                segs = by_tx.get(claim.transaction, {})
                applied.update(r.id for r in active if r.scope.covers(claim))
                report.violations += [_hit(h) for h in self.compiler.evaluate(active, claim, segs, memo=memo)]
            report.rules_applied = sorted(applied)
        return report, doc
