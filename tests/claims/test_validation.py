"""Structural checks and rules, reported with positions; rules derived from rejections (generated fixtures)."""

import pytest

from x12gen import BAD_NPI, Claim837, Line, ack999, remit835, status277
from fedinf.claims.derive import derive, rejections
from fedinf.claims.parsing import build
from fedinf.claims.rules import Compiler, Rule, Scope, valid_npi
from fedinf.claims.validation import Validator
from fedinf.errors import RequestError


@pytest.fixture(scope="module")
def validator():
    return Validator()


def approved(rules):
    return [r.model_copy(update={"status": "approved"}) for r in rules]


def test_valid_claim_is_accepted(validator):
    report, _ = validator.validate(Claim837().x12(), [])
    assert report.accepted and report.violations == [] and report.claims == 1


def test_missing_segment_and_bad_code_are_located(validator):
    text = Claim837(drop={"N3@2010AA"}, pos="1X").x12()
    report, _ = validator.validate(text, [])
    assert not report.accepted
    missing = [v for v in report.violations if v.code == "3"]
    assert missing and missing[0].segment_id == "N3" and missing[0].loop == "2010AA" and missing[0].position == 9
    bad = [v for v in report.violations if v.code == "7"]
    assert bad and bad[0].segment_id == "CLM" and bad[0].element == "05-1" and bad[0].loop == "2300"
    assert bad[0].claim == "CLM1001" and bad[0].position is not None and bad[0].value == "1X"


def test_phi_values_never_in_messages(validator):
    report, _ = validator.validate(Claim837(dob="19801399").x12(), [])
    (v,) = [v for v in report.violations if v.code == "8"]
    assert v.segment_id == "DMG" and "19801399" not in v.message and v.value is None


def test_valid_npi():
    assert valid_npi("1234567893") and not valid_npi("1234567890") and not valid_npi("12345") \
        and not valid_npi("abcdefghij")


def test_277ca_rejection_derives_an_npi_rule(validator):
    doc = build(validator.engine.walk(status277("CLM1001", "A7:562:85")))
    result = derive(rejections(doc, document="d1"))
    (rule,) = result.rules
    assert rule.status == "candidate" and rule.scope.payers == ["PAYER01"] and rule.source == "277CA"
    assert "billing provider NPI" in rule.description and rule.evidence[0].codes == "STC A7:562:85"
    assert "CLM1001" not in rule.model_dump_json()  # claims referenced by digest only
    bad, _ = validator.validate(Claim837(billing_npi=BAD_NPI).x12(), approved(result.rules))
    hits = [v for v in bad.violations if v.kind == "rule"]
    assert hits and hits[0].rule_id == rule.id and hits[0].loop == "2010AA" and hits[0].segment_id == "NM1"
    assert bad.rules_applied == [rule.id]
    good, _ = validator.validate(Claim837().x12(), approved(result.rules))
    assert good.accepted
    other_payer, _ = validator.validate(Claim837(billing_npi=BAD_NPI, payer_id="OTHER").x12(), approved(result.rules))
    assert other_payer.accepted and other_payer.rules_applied == []  # out of scope
    candidate, _ = validator.validate(Claim837(billing_npi=BAD_NPI).x12(), result.rules)
    assert candidate.accepted  # candidates never apply


def test_835_denials_merge_into_one_line_rule(validator):
    docs = [build(validator.engine.walk(remit835(f"C{i}", [(proc, [], "40.00", "0", [("CO", "96", "40.00")], [])])))
            for i, proc in enumerate(["97010", "97014", "97010"])]
    found = [r for d in docs for r in rejections(d, document="x")]
    (rule,) = derive(found).rules
    assert rule.per == "line" and "97010" in rule.expression and "97014" in rule.expression
    assert len(rule.evidence) == 3
    report, _ = validator.validate(Claim837(lines=[Line("99213"), Line("97014")]).x12(), approved([rule]))
    (hit,) = [v for v in report.violations if v.kind == "rule"]
    assert hit.line == 2 and hit.segment_id == "SV1" and hit.loop == "2400"


def test_contractual_adjustments_are_not_denials(validator):
    doc = build(validator.engine.walk(remit835("C1", [("99213", [], "40.00", "30.00", [("CO", "45", "10.00")], [])],
                                               status="1")))
    assert rejections(doc) == []


def test_999_element_error_with_submitted_claim(validator):
    submitted = build(validator.engine.walk(Claim837(pos="99").x12()))
    clm = submitted.claims[0]
    ack = build(validator.engine.walk(ack999([("CLM", clm.pos.position, "2300", "8",
                                                [(5, 1, "1331", "7", "99")])])))
    found = rejections(ack, submitted=submitted)
    (rule,) = derive(found).rules
    assert rule.template == "ik4.code" and "'2300.CLM05-1'" in rule.expression and "'99'" in rule.expression
    assert rule.scope.payers == ["PAYER01"] and rule.scope.claim_types == ["837P"]
    report, _ = validator.validate(Claim837(pos="99").x12(), approved([rule]))
    assert any(v.rule_id == rule.id for v in report.violations)
    report, _ = validator.validate(Claim837(pos="11").x12(), approved([rule]))
    assert report.accepted


def test_unmapped_rejections_say_why(validator):
    doc = build(validator.engine.walk(remit835("C1", [("99213", [], "40.00", "0", [("CO", "18", "40.00")], [])])))
    result = derive(rejections(doc))
    assert result.rules == [] and "duplicate" in result.unmapped[0][1]


def test_rule_ids_are_content_addressed():
    a = Rule.make_id("claim.charge > 0.0", Scope(payers=["P"]), "claim")
    assert a == Rule.make_id("claim.charge > 0.0", Scope(payers=["P"]), "claim")
    assert a != Rule.make_id("claim.charge > 0.0", Scope(payers=["Q"]), "claim")


def test_bad_expressions_are_refused_and_eval_errors_reported(validator):
    with pytest.raises(RequestError) as exc:
        Compiler().check("claim.lines.all(l, ")
    assert exc.value.code == "invalid_rule"
    rule = Rule(id="Rx", expression="claim.elements['9999.XX01'].all(v, v != '')", description="broken",
                status="approved")
    report, _ = validator.validate(Claim837().x12(), [rule])
    (v,) = report.violations
    assert v.rule_id == "Rx" and "could not be evaluated" in v.message


def test_rule_views_and_memo_give_the_same_hits(validator):
    from fedinf.claims.rules import needs

    assert needs("claim.charge == claim.line_total").fields == {"charge", "line_total"}
    assert needs("'2010AA.NM109' in claim.elements").keys == {"2010AA.NM109"}
    assert needs("size(claim.elements) > 3").keys is None and needs("claim == claim").fields is None
    rules = approved([
        Rule(id="Ra", expression="claim.elements['2010AA.NM109'].all(v, valid_npi(v))", description="npi"),
        Rule(id="Rb", expression="!(line.procedure in ['97010'])", description="nc", per="line"),
        Rule(id="Rc", expression="size(claim.elements) > 10000", description="opaque"),
    ])
    text = Claim837(billing_npi=BAD_NPI, lines=[Line("97010"), Line("99213"), Line("97010")]).x12()
    report, doc = validator.validate(text, rules)
    hits = sorted((v.rule_id, v.line) for v in report.violations if v.kind == "rule")
    assert hits == [("Ra", None), ("Rb", 1), ("Rb", 3), ("Rc", None)]
    segs = {s.pos.index: s for t in doc.transactions for s in t.segments}
    fresh = Compiler().evaluate(rules, doc.claims[0], segs)  # no memo shared
    assert sorted((h.rule.id, h.line) for h in fresh) == hits
