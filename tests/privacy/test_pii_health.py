import pytest


@pytest.mark.parametrize("text,etype,value", [
    ("Patient MRN: 00123456 admitted", "MEDICAL_RECORD_NUMBER", "00123456"),
    ("medical record number MR-4455667", "MEDICAL_RECORD_NUMBER", "MR-4455667"),
    ("Member ID: XGH123456789", "HEALTH_PLAN_ID", "XGH123456789"),
    ("Medicare MBI 1EG4-TE5-MK73", "HEALTH_PLAN_ID", "1EG4-TE5-MK73"),
    ("prescriber NPI 1234567893", "NPI", "1234567893"),
    ("DEA number AB1234563", "DEA_NUMBER", "AB1234563"),
    ("diagnosis code E11.9 (type 2 diabetes)", "ICD10_CODE", "E11.9"),
    ("ICD-10: J45.909", "ICD10_CODE", "J45.909"),
])
def test_health_positive(found, text, etype, value):
    assert (etype, value) in found(text)


@pytest.mark.parametrize("text,etype", [
    ("NPI 1234567890", "NPI"),                        # fails the 80840 Luhn check
    ("the id 1234567893 in the log", "NPI"),          # valid but no context
    ("we shipped model E11 to the shop", "ICD10_CODE"),  # code-like, no medical context
    ("DEA number AB1234567", "DEA_NUMBER"),           # bad check digit
    ("record 12 of 30", "MEDICAL_RECORD_NUMBER"),
])
def test_health_negative(types, text, etype):
    assert etype not in types(text)
