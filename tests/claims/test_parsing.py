"""X12 -> typed models, with positions (generated fixtures)."""

import pytest

from x12gen import GOOD_NPI, Claim837, Line, ack999, remit835, status277
from fedinf.claims.engine import Engine
from fedinf.claims.parsing import parse
from fedinf.errors import InvalidX12


@pytest.fixture(scope="module")
def engine():
    return Engine()


def test_837p_claim_fields_and_positions(engine):
    text = Claim837(lines=[Line("99213", ["25"], "40.00"), Line("J1100", [], "10.50")], prior_auth="AUTH9").x12()
    doc, walk = parse(text, engine=engine)
    assert [t.kind for t in doc.transactions] == ["837P"]
    (claim,) = doc.claims
    assert claim.kind == "837P" and claim.claim_id == "CLM1001" and claim.charge == 50.5
    assert claim.payer_id == "PAYER01" and claim.billing_npi == GOOD_NPI and claim.facility_code == "11"
    assert claim.diagnoses == ["J020"] and claim.prior_auth == "AUTH9" and claim.patient_gender == "F"
    assert [(ln.procedure, ln.modifiers, ln.charge) for ln in claim.lines] == [("99213", ["25"], 40.0),
                                                                                ("J1100", [], 10.5)]
    assert claim.pos.segment_id == "CLM" and claim.pos.loop == "2300"
    # position counts from ST = 1, as a 999 IK302 would; index counts from ISA = 1
    st = next(s for s in walk.segments if s.seg_id == "ST")
    assert claim.pos.position == claim.pos.index - st.index + 1
    assert claim.lines[0].pos.loop == "2400" and claim.lines[0].pos.segment_id == "SV1"
    assert walk.errors == []


def test_999_277ca_835(engine):
    doc, _ = parse(ack999([("NM1", 7, "2010", "8", [(9, None, "67", "7", "ZZ")])]), engine=engine)
    (ack,) = doc.acknowledgments
    (t,) = ack.transactions
    assert t.rejected and t.control_number == "0001"
    (e,) = t.errors
    assert (e.segment_id, e.position, e.loop, e.code) == ("NM1", 7, "2010", "8")
    assert e.elements[0].model_dump() == {"element": 9, "component": None, "data_element": "67", "code": "7",
                                          "value": "ZZ"}
    doc, _ = parse(status277("CLM9", "A7:562:85"), engine=engine)
    (cs,) = doc.status_reports[0].claims
    assert cs.claim_id == "CLM9" and cs.rejected and cs.statuses[0].model_dump() == {
        "category": "A7", "status": "562", "entity": "85"}
    assert doc.status_reports[0].payer_id == "PAYER01"
    doc, _ = parse(remit835("CLM9", [("99213", ["25"], "40.00", "0", [("CO", "96", "40.00")], ["N130"])]),
                   engine=engine)
    (cp,) = doc.remittances[0].claims
    assert cp.denied and cp.services[0].procedure == "99213" and cp.services[0].modifiers == ["25"]
    assert [(a.group, a.reason, a.amount) for a in cp.services[0].adjustments] == [("CO", "96", 40.0)]
    assert cp.services[0].remarks == ["N130"] and doc.remittances[0].payer_id == "PAYER01"


@pytest.mark.parametrize("text,index", [
    ("", 0), ("   \n", 0), ("hello world", 1), ("GS*HC*A*B*20240101*1200*1*X*005010X222A1~", 1),
    ("ISA*00*short~", 1),
])
def test_not_x12_is_invalid_x12_with_position(engine, text, index):
    with pytest.raises(InvalidX12) as exc:
        engine.walk(text)
    assert exc.value.code == "invalid_x12" and exc.value.status_code == 400
    assert exc.value.details["segment_index"] == index


def test_unsupported_transaction_is_a_clear_400(engine):
    text = Claim837().x12().replace("005010X222A1", "005010X279A1").replace("GS*HC", "GS*HS").replace(
        "ST*837", "ST*270")
    with pytest.raises(InvalidX12) as exc:
        engine.walk(text)
    assert exc.value.code == "unsupported_x12" and "no X12 map" in exc.value.message


def test_truncated_document_reports_trailer_errors_not_a_crash(engine):
    text = Claim837().x12()
    cut = text[: text.index("LX*1")]
    walk = engine.walk(cut)
    assert any(e.level in ("transaction", "group", "interchange") for e in walk.errors)


def test_errata_version_reads_with_the_nearest_map(engine):
    walk = engine.walk(Claim837().x12().replace("005010X222A1", "005010X222A2"))
    assert walk.errors == [] and "005010X222A1" in walk.notes[0]


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("N4*SPRINGFIELD*IL*627010001", "Nd4*SPRINGFIELD*IL*627010001"),  # lower-case id
    lambda t: t.replace("NM1*IL*", "*IL*"),                                                # empty segment id
    lambda t: t.replace("HL*2*1*22*0", "HL*2*9*22*0"),                                     # bad HL parent
    lambda t: t.replace("CLM*CLM1001", "CLM*" + "9" * 300),                                # element far too long
    lambda t: t.replace("SE*", "XX*"),                                                     # no trailer
    lambda t: t[: len(t) // 2],                                                            # truncated anywhere
])
def test_malformed_input_never_crashes(engine, mangle):
    from fedinf.claims.validation import Validator

    v = Validator(engine=engine)
    try:
        report, _ = v.validate(mangle(Claim837().x12()), [])
    except InvalidX12 as exc:  # refused with a position, or ...
        assert exc.details["segment_index"] >= 0
    else:  # ... reported as violations (a bad HL parent is a warning, as in pyx12's own 999)
        assert report.violations
