"""Rule derivation: rejections (999/997 IK3/IK4, 277CA STC, 835 CARC/RARC) -> candidate rules.

Deterministic mining: every rejection is mapped by a template (keyed by its codes) to a *candidate* - a rule
shape (what to check, where) plus the values it saw - and candidates with the same shape and scope are merged, so
ten denials of ten procedure codes by one payer become one rule listing ten codes, with ten pieces of evidence.
Rejections no template covers are returned as ``unmapped`` with the reason (e.g. CARC 18 "duplicate" needs claim
history, not a static check), never silently dropped.

Values copied into a rule are codes only (procedure, modifier, code-set values): free text, dates, names and
identifiers from a rejection never enter a rule or its evidence (evidence references claims by a digest).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fedinf.claims.models import Acknowledgment, Claim, Document, StatusReport, Remittance
from fedinf.claims.rules import Evidence, Rule, Scope, Target

# 277CA entity identifier (98) -> the 837 loop holding that party
ENTITY_LOOPS = {"85": "2010AA", "87": "2010AB", "IL": "2010BA", "QC": "2010CA", "PR": "2010BB", "82": "2310B",
                "77": "2310C", "DN": "2310A", "DK": "2310D", "71": "2310A", "72": "2310B", "41": "1000A",
                "40": "1000B"}
ENTITY_NAMES = {"85": "billing provider", "87": "pay-to provider", "IL": "subscriber", "QC": "patient",
                "PR": "payer", "82": "rendering provider", "77": "service facility", "DN": "referring provider",
                "DK": "ordering provider", "71": "attending provider", "72": "operating provider",
                "41": "submitter", "40": "receiver"}
REJECT_CATEGORIES = ("A3", "A4", "A6", "A7", "A8")
# CARCs that are not denials (contractual, patient responsibility, processed as billed)
NOT_DENIALS = frozenset({"1", "2", "3", "23", "45", "59", "94", "97", "131", "253", "A2", "B6"})
NO_STATIC_RULE = {
    "18": "duplicate claim: needs claim history, not a static check",
    "26": "expenses before coverage: needs eligibility data", "27": "expenses after coverage ended: needs "
    "eligibility data", "31": "patient not identified as insured: needs eligibility data",
    "22": "coordination of benefits: needs other-payer data", "29": "timely filing: needs submission dates",
    "97": "bundled: payer's edit tables, not a claim defect",
}
SERVICE_DENIALS = {"96": "non-covered charge", "204": "not covered under the patient's benefit plan",
                   "109": "not covered by this payer", "50": "not deemed a medical necessity",
                   "181": "procedure code invalid on the date of service", "8": "procedure inconsistent with the "
                   "provider type/specialty", "170": "not paid when billed by this provider type",
                   "B7": "provider not certified for this procedure", "54": "multiple physicians/assistants not "
                   "covered", "151": "payer deems the frequency/number of services not supported"}
AUTH_DENIALS = {"15": "authorization number missing or invalid", "197": "precertification/authorization absent",
                "62": "precertification/authorization absent"}
# RARC (with CARC 16 "claim lacks information") -> a field check
RARC_FIELDS: dict[str, tuple[str, str, str]] = {
    "M76": ("size(claim.diagnoses) > 0", "a diagnosis code is present", "2300.HI"),
    "M51": ("claim.lines.all(l, l.procedure.matches('^[A-Z0-9]{5}$'))", "every service line has a 5-character "
            "procedure code", "2400.SV1"),
    "M77": ("claim.facility_code.matches('^[0-9]{2}$')", "the place of service (CLM05-1) is a 2-digit code",
            "2300.CLM"),
    "N290": ("claim.elements['2310B.NM109'].all(v, valid_npi(v))", "the rendering provider NPI (2310B NM109) "
             "is a valid NPI", "2310B.NM1"),
    "N286": ("'2310A.NM109' in claim.elements && claim.elements['2310A.NM109'].all(v, v != '')",
             "a referring provider identifier (2310A NM109) is present", "2310A.NM1"),
    "N382": ("claim.subscriber_id != ''", "the subscriber/patient identifier (2010BA NM109) is present",
             "2010BA.NM1"),
    "MA27": ("claim.subscriber_id.matches('^[A-Z0-9]{2,80}$')", "the subscriber identifier is alphanumeric",
             "2010BA.NM1"),
    "M119": ("claim.lines.all(l, !l.procedure.startsWith('J') || l.ndc != '')", "drug (J-code) lines carry an "
             "NDC (LIN03)", "2410.LIN"),
    "M79": ("claim.lines.all(l, l.charge > 0.0)", "every service line has a charge", "2400.SV1"),
}
# 277CA status code (508) -> check on the entity's loop; {L} is the entity loop
STC_FIELDS: dict[str, tuple[str, str]] = {
    "562": ("'{L}.NM109' in claim.elements && claim.elements['{L}.NM109'].all(v, valid_npi(v))",
            "the {E} NPI ({L} NM109) is present and a valid NPI"),
    "128": ("'{L}.REF[EI]02' in claim.elements && claim.elements['{L}.REF[EI]02'].all(v, v.matches('^[0-9]{{9}}$'))",
            "the {E} tax identifier ({L} REF*EI) is present and 9 digits"),
    "145": ("claim.billing_taxonomy.matches('^[0-9A-Z]{{9}}X$')", "the {E} taxonomy code (PRV03) is present and "
            "well-formed"),
    "153": ("'{L}.NM109' in claim.elements && claim.elements['{L}.NM109'].all(v, v != '')",
            "the {E} identifier ({L} NM109) is present"),
    "164": ("claim.subscriber_id.matches('^[A-Z0-9]{{2,80}}$')", "the {E} member identifier is present and "
            "alphanumeric"),
    "158": ("claim.patient_birth_date.matches('^(19|20)[0-9]{{2}}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$') && "
            "claim.patient_birth_date <= claim.created", "the {E} birth date is a valid date, not after the claim"),
    "187": ("claim.lines.all(l, l.service_date == '' || l.service_date <= claim.created)",
            "no date of service is after the claim's creation date"),
    "254": ("size(claim.diagnoses) > 0", "a principal diagnosis code is present"),
    "255": ("size(claim.diagnoses) > 0", "a diagnosis code is present"),
    "454": ("claim.lines.all(l, l.procedure.matches('^[A-Z0-9]{{5}}$'))", "every service line has a 5-character "
            "procedure code"),
    "400": ("claim.charge == claim.line_total", "the claim total (CLM02) equals the sum of its line charges"),
    "178": ("claim.charge == claim.line_total", "the submitted charges balance (CLM02 = sum of lines)"),
}
_DATE = "^(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$"


@dataclass
class Rejection:
    """One rejection, normalised. ``payer``/``claim_type`` scope what it teaches; ``claim`` is the submitted claim
    when the caller supplied the 837s (then 999 positions resolve to loops and denials see diagnoses)."""

    source: str
    codes: str
    payer: str = ""
    claim_type: str = ""
    claim_ref: str = ""
    document: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    claim: Claim | None = None

    def evidence(self) -> Evidence:
        return Evidence(source=self.source, codes=self.codes, claim_ref=self.claim_ref,  # type: ignore[arg-type]
                        document=self.document)


@dataclass
class Candidate:
    template: str
    per: str
    shape: str  # expression with a {VALUES} slot (or none)
    description: str
    scope: Scope
    target: Target
    values: set[str] = field(default_factory=set)
    evidence: list[Evidence] = field(default_factory=list)
    source: str = ""

    def key(self) -> str:
        return json.dumps([self.template, self.per, self.shape, sorted(self.scope.payers),
                           sorted(self.scope.claim_types)])


@dataclass
class Derivation:
    rules: list[Rule]
    unmapped: list[tuple[Rejection, str]]


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# ------------------------------------------------------------------ rejections from documents

def rejections(doc: Document, *, document: str = "", submitted: Document | None = None) -> list[Rejection]:
    """Every rejection in a 999/997, 277CA or 835 document (acceptances and payments are skipped). ``submitted``:
    the 837s the rejections answer, when available (resolves 999 positions to loops and claims)."""
    by_id = {c.claim_id: c for c in (submitted.claims if submitted else [])}
    out: list[Rejection] = []
    for ack in doc.acknowledgments:
        out += _from_ack(ack, document, submitted)
    for rep in doc.status_reports:
        out += _from_277(rep, document, by_id)
    for rem in doc.remittances:
        out += _from_835(rem, document, by_id)
    return out


def _locate(submitted: Document | None, control: str, position: int) -> tuple[str, Claim | None]:
    """The loop of the segment at ``position`` in transaction ``control`` and the claim holding it."""
    if submitted is None:
        return "", None
    seg = next((s for t in submitted.transactions if t.control_number == control for s in t.segments
                if s.pos.position == position), None)
    if seg is None:
        return "", None
    claim = next((c for c in submitted.claims if c.transaction == control and seg.pos.index in c.segment_indices),
                 None)
    return seg.pos.loop, claim


def _from_ack(ack: Acknowledgment, document: str, submitted: Document | None) -> list[Rejection]:
    out = []
    for t in ack.transactions:
        if not t.rejected and not t.errors:
            continue
        for e in t.errors:
            loop, claim = _locate(submitted, t.control_number, e.position)
            elems = "; ".join(f"IK4 {x.element}{':' + str(x.component) if x.component else ''} (DE {x.data_element})"
                              f" code {x.code}" for x in e.elements)
            codes = f"IK3 {e.segment_id} pos {e.position} code {e.code}" + (f"; {elems}" if elems else "")
            out.append(Rejection(
                source=ack.kind, codes=codes, claim_type=claim.kind if claim else "",
                payer=claim.payer_id if claim else "",
                claim_ref=digest(t.control_number, claim.claim_id) if claim else digest(t.control_number),
                document=document, claim=claim,
                facts={"segment": e.segment_id, "loop": loop or e.loop, "position": e.position, "code": e.code,
                       "elements": [x.model_dump() for x in e.elements], "transaction": t.control_number}))
        if not t.errors and t.rejected:
            out.append(Rejection(source=ack.kind, codes=f"IK5 {t.status} {' '.join(t.codes)}".strip(),
                                 claim_ref=digest(t.control_number), document=document,
                                 facts={"transaction_codes": t.codes}))
    return out


def _from_277(rep: StatusReport, document: str, by_id: dict[str, Claim]) -> list[Rejection]:
    out = []
    for cs in rep.claims:
        for st in cs.statuses:
            if not st.category.startswith(REJECT_CATEGORIES):
                continue
            claim = by_id.get(cs.claim_id)
            out.append(Rejection(source="277CA", codes=f"STC {st.category}:{st.status}:{st.entity}",
                                 payer=rep.payer_id, claim_type=claim.kind if claim else "",
                                 claim_ref=digest(cs.claim_id), document=document, claim=claim,
                                 facts={"category": st.category, "status": st.status, "entity": st.entity}))
    return out


def _from_835(rem: Remittance, document: str, by_id: dict[str, Claim]) -> list[Rejection]:
    out = []
    for cp in rem.claims:
        claim = by_id.get(cp.claim_id)
        for sp in cp.services:
            denials = [a for a in sp.adjustments if a.group in ("CO", "PI", "OA") and a.reason not in NOT_DENIALS]
            if not denials or (sp.paid > 0 and not cp.denied):
                continue
            for a in denials:
                out.append(Rejection(
                    source="835", codes=f"CAS {a.group} {a.reason}" + "".join(f"; LQ HE {r}" for r in sp.remarks),
                    payer=rem.payer_id, claim_type=claim.kind if claim else "", claim_ref=digest(cp.claim_id),
                    document=document, claim=claim,
                    facts={"carc": a.reason, "group": a.group, "rarc": list(sp.remarks) + list(cp.remarks),
                           "procedure": sp.procedure, "modifiers": list(sp.modifiers)}))
        if cp.denied and not cp.services:
            for a in cp.adjustments:
                if a.reason not in NOT_DENIALS:
                    out.append(Rejection(source="835", codes=f"CLP 4; CAS {a.group} {a.reason}", payer=rem.payer_id,
                                         claim_ref=digest(cp.claim_id), document=document, claim=claim,
                                         facts={"carc": a.reason, "group": a.group, "rarc": list(cp.remarks),
                                                "procedure": "", "modifiers": []}))
    return out


# ------------------------------------------------------------------ templates

def _scope(r: Rejection) -> Scope:
    return Scope(payers=[r.payer] if r.payer else [], claim_types=[r.claim_type] if r.claim_type else [])


def _ik(r: Rejection) -> list[Candidate] | str:
    f = r.facts
    if "transaction_codes" in f:
        return "envelope/trailer error: the X12 structural check covers it"
    seg, loop, code = f["segment"], f["loop"], f["code"]
    if code in ("1", "2", "6", "7", "I4", "I9"):
        return f"segment code {code} (unrecognised/unexpected/out of order): the X12 structural check covers it"
    if code in ("3", "I6") and loop:
        return [Candidate("ik3.required", "claim", f"'{loop}.{seg}' in claim.segments",
                          f"segment {seg} is present in loop {loop}", _scope(r), Target(loop=loop, segment=seg),
                          source=r.source)]
    out: list[Candidate] = []
    for e in f["elements"]:
        key = f"{seg}{int(e['element']):02d}" + (f"-{e['component']}" if e.get("component") else "")
        k = f"{loop}.{key}" if loop else None
        if k is None:
            continue
        has = f"'{k}' in claim.elements"
        tgt = Target(loop=loop, segment=seg, element=key[len(seg):])
        ec = e["code"]
        if ec in ("1", "2", "I9", "I11"):
            out.append(Candidate("ik4.required", "claim", f"{has} && claim.elements['{k}'].all(v, v != '')",
                                 f"{seg} {key[len(seg):]} in loop {loop} is not empty", _scope(r), tgt,
                                 source=r.source))
        elif ec in ("7", "I6") and e.get("value"):
            c = Candidate("ik4.code", "claim", f"!({has}) || claim.elements['{k}'].all(v, !(v in {{VALUES}}))",
                          f"{seg} {key[len(seg):]} in loop {loop} does not use a code the receiver rejects",
                          _scope(r), tgt, source=r.source)
            c.values.add(str(e["value"]))
            out.append(c)
        elif ec == "8":
            out.append(Candidate("ik4.date", "claim", f"!({has}) || claim.elements['{k}'].all(v, v == '' || "
                                 f"v.matches('{_DATE}'))", f"{seg} {key[len(seg):]} in loop {loop} is a valid "
                                 "CCYYMMDD date", _scope(r), tgt, source=r.source))
        elif ec in ("10", "I10", "I13"):
            out.append(Candidate("ik4.notused", "claim", f"!({has}) || claim.elements['{k}'].all(v, v == '')",
                                 f"{seg} {key[len(seg):]} in loop {loop} is not sent (not used)", _scope(r), tgt,
                                 source=r.source))
        elif ec == "6":
            out.append(Candidate("ik4.charset", "claim", f"!({has}) || claim.elements['{k}'].all(v, "
                                 "v.matches('^[A-Za-z0-9 !\"&\\'()*+,./:;?=%@_-]*$'))",
                                 f"{seg} {key[len(seg):]} in loop {loop} uses only the basic character set",
                                 _scope(r), tgt, source=r.source))
    return out or f"IK3 code {code} without an element error a static rule can express"


def _stc(r: Rejection) -> list[Candidate] | str:
    f = r.facts
    tmpl = STC_FIELDS.get(f["status"])
    if tmpl is None:
        return f"277CA status code {f['status']} has no field template"
    loop = ENTITY_LOOPS.get(f["entity"], "2010AA")
    name = ENTITY_NAMES.get(f["entity"], "entity " + (f["entity"] or "?"))
    expr = tmpl[0].replace("{L}", loop).replace("{{", "{").replace("}}", "}")
    desc = tmpl[1].replace("{L}", loop).replace("{E}", name)
    return [Candidate(f"stc.{f['status']}", "claim", expr, desc, _scope(r), Target(loop=loop, segment="NM1"),
                      source="277CA")]


def _carc(r: Rejection) -> list[Candidate] | str:
    f = r.facts
    carc, proc, mods = f["carc"], f["procedure"], f["modifiers"]
    if carc in NO_STATIC_RULE:
        return f"CARC {carc}: {NO_STATIC_RULE[carc]}"
    if carc in SERVICE_DENIALS and proc:
        c = Candidate(f"carc.{carc}", "line", "!(line.procedure in {VALUES})",
                      f"the payer denies these procedure codes ({SERVICE_DENIALS[carc]}, CARC {carc})", _scope(r),
                      Target(loop="2400", segment="SV1"), source="835")
        c.values.add(proc)
        return [c]
    if carc in AUTH_DENIALS and proc:
        c = Candidate(f"carc.{carc}", "line", "!(line.procedure in {VALUES}) || claim.prior_auth != ''",
                      f"these procedure codes need a prior authorization number (REF*G1): {AUTH_DENIALS[carc]}, "
                      f"CARC {carc}", _scope(r), Target(loop="2300", segment="REF"), source="835")
        c.values.add(proc)
        return [c]
    if carc in ("4", "182") and proc:
        if mods:
            c = Candidate(f"carc.{carc}.mod", "line", f"!(line.procedure == '{proc}') || "
                          "!line.modifiers.exists(m, m in {VALUES})",
                          f"procedure {proc} is not billed with these modifiers (CARC {carc})", _scope(r),
                          Target(loop="2400", segment="SV1"), source="835")
            c.values.update(mods)
            return [c]
        c = Candidate(f"carc.{carc}.nomod", "line", "!(line.procedure in {VALUES}) || size(line.modifiers) > 0",
                      f"these procedure codes need a modifier (CARC {carc})", _scope(r),
                      Target(loop="2400", segment="SV1"), source="835")
        c.values.add(proc)
        return [c]
    if carc in ("7",) and proc and r.claim is not None and r.claim.patient_gender:
        c = Candidate("carc.7", "line", f"!(line.procedure in {{VALUES}}) || claim.patient_gender != "
                      f"'{r.claim.patient_gender}'", f"these procedures are denied for patient gender "
                      f"{r.claim.patient_gender} (CARC 7)", _scope(r), Target(loop="2400", segment="SV1"),
                      source="835")
        c.values.add(proc)
        return [c]
    if carc == "16" or carc in ("252", "MA130"):
        found = [RARC_FIELDS[x] for x in f["rarc"] if x in RARC_FIELDS]
        if not found:
            return f"CARC {carc} with remark codes {f['rarc'] or 'none'}: no field template"
        return [Candidate(f"carc.16.{expr[:24]}", "claim", expr, f"{desc} (CARC 16 with remark code)", _scope(r),
                          Target(loop=t.split(".")[0], segment=t.split(".")[1]), source="835")
                for expr, desc, t in found]
    return f"CARC {carc}: no template"


TEMPLATES = {"999": _ik, "997": _ik, "277CA": _stc, "835": _carc}


def derive(found: list[Rejection]) -> Derivation:
    """Merge the candidates of all rejections into rules (status ``candidate``: they apply only once approved)."""
    merged: dict[str, Candidate] = {}
    unmapped: list[tuple[Rejection, str]] = []
    for r in found:
        got = TEMPLATES[r.source](r)
        if isinstance(got, str):
            unmapped.append((r, got))
            continue
        for cand in got:
            cur = merged.setdefault(cand.key(), cand)
            if cur is not cand:
                cur.values |= cand.values
            cur.evidence.append(r.evidence())
    rules = []
    for cand in merged.values():
        values = sorted(cand.values)
        expr = cand.shape.replace("{VALUES}", json.dumps(values).replace('", "', "', '").replace('["', "['")
                                  .replace('"]', "']")) if "{VALUES}" in cand.shape else cand.shape
        desc = cand.description + (f": {', '.join(values)}" if values else "")
        if cand.scope.payers:
            desc = f"payer {', '.join(cand.scope.payers)}: {desc}"
        rules.append(Rule(id=Rule.make_id(expr, cand.scope, cand.per), expression=expr, description=desc,
                          per=cand.per, scope=cand.scope, target=cand.target,  # type: ignore[arg-type]
                          evidence=cand.evidence, source=cand.source, template=cand.template))
    return Derivation(rules=rules, unmapped=unmapped)
