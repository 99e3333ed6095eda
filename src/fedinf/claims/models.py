"""Typed models of the claim transactions (pydantic): 837P/837I claims, 835 remittances, 999 and 277CA
acknowledgments. Every model that comes from a segment carries its :class:`Pos` (file index, position in the
transaction set, loop), so a violation or a rejection can always be pointed at.

Money is kept as the decimal text X12 sent (``"125.00"``) next to a float for arithmetic-free comparisons; codes are
strings. No model here is ever logged or audited: they hold PHI.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pos(_Model):
    """Where a segment is: ``index`` in the file (ISA = 1), ``position`` in its transaction set (ST = 1, as 999
    IK302 counts), the map ``loop`` (``2300``) and the transaction set control number."""

    segment_id: str
    index: int
    position: int
    loop: str = ""
    transaction: str | None = None


class Segment(_Model):
    """A raw segment: id, elements (each a list of components) and position."""

    id: str
    elements: list[list[str]]
    pos: Pos


class Transaction(_Model):
    """One ST..SE transaction set: its kind (``837P``, ``837I``, ``835``, ``999``, ``277CA``, ...), version and
    segments."""

    kind: str
    set_id: str
    control_number: str
    version: str
    sender: str = ""
    receiver: str = ""
    segments: list[Segment] = Field(default_factory=list)


class ServiceLine(_Model):
    """837 loop 2400: SV1 (professional) or SV2 (institutional)."""

    number: int
    qualifier: str = ""  # HC (HCPCS/CPT), ER, IV, ...
    procedure: str = ""
    modifiers: list[str] = Field(default_factory=list)
    revenue_code: str = ""  # 837I SV201
    charge: float = 0.0
    units: float = 0.0
    unit_basis: str = ""
    place_of_service: str = ""
    diagnosis_pointers: list[str] = Field(default_factory=list)
    service_date: str = ""
    ndc: str = ""
    pos: Pos


class Party(_Model):
    """An NM1 party: entity code (85 billing, IL subscriber, QC patient, PR payer, 82 rendering, ...)."""

    entity: str
    loop: str
    last_or_org: str = ""
    id_qualifier: str = ""
    id: str = ""
    pos: Pos


class Claim(_Model):
    """An 837 claim (loop 2300) with the parties and lines it inherits from its hierarchy."""

    kind: Literal["837P", "837I"]
    claim_id: str
    charge: float = 0.0
    facility_code: str = ""  # CLM05-1: place of service (837P) / facility type (837I)
    frequency: str = ""  # CLM05-3
    payer_id: str = ""
    payer_name: str = ""
    billing_npi: str = ""
    billing_taxonomy: str = ""
    subscriber_id: str = ""
    patient_gender: str = ""
    patient_birth_date: str = ""
    diagnoses: list[str] = Field(default_factory=list)
    prior_auth: str = ""
    created: str = ""  # BHT04, the date the claim was created (CCYYMMDD)
    parties: list[Party] = Field(default_factory=list)
    lines: list[ServiceLine] = Field(default_factory=list)
    transaction: str = ""
    pos: Pos
    segment_indices: list[int] = Field(default_factory=list)  # file indices: header + hierarchy + claim segments


class Adjustment(_Model):
    """One CAS adjustment: group (CO, PR, OA, PI, CR), CARC reason code, amount."""

    group: str
    reason: str
    amount: float = 0.0


class ServicePayment(_Model):
    """835 loop 2110 (SVC)."""

    qualifier: str = ""
    procedure: str = ""
    modifiers: list[str] = Field(default_factory=list)
    charge: float = 0.0
    paid: float = 0.0
    adjustments: list[Adjustment] = Field(default_factory=list)
    remarks: list[str] = Field(default_factory=list)  # RARC (LQ*HE)
    pos: Pos


class ClaimPayment(_Model):
    """835 loop 2100 (CLP): status 1-3 processed, 4 denied, 22 reversal, ..."""

    claim_id: str
    status: str
    charge: float = 0.0
    paid: float = 0.0
    adjustments: list[Adjustment] = Field(default_factory=list)
    remarks: list[str] = Field(default_factory=list)  # RARC (MIA/MOA remark codes)
    services: list[ServicePayment] = Field(default_factory=list)
    pos: Pos

    @property
    def denied(self) -> bool:
        return self.status == "4"


class Remittance(_Model):
    """An 835: the payer and its claim payments."""

    payer_id: str = ""
    payer_name: str = ""
    payee_npi: str = ""
    claims: list[ClaimPayment] = Field(default_factory=list)
    transaction: str = ""


class ElementError(_Model):
    """999 IK4 / 997 AK4: element position (``5:1`` style split in element/component), data element reference
    number, error code (IK403) and the copy of the bad value when the ack carries one (a code only)."""

    element: int
    component: int | None = None
    data_element: str = ""
    code: str
    value: str | None = None


class SegmentError(_Model):
    """999 IK3 / 997 AK3: segment id, position in the acknowledged transaction set, loop, error code (IK304)."""

    segment_id: str
    position: int
    loop: str = ""
    code: str = ""
    elements: list[ElementError] = Field(default_factory=list)
    pos: Pos


class TransactionAck(_Model):
    """999 AK2..IK5 / 997 AK2..AK5: which transaction set (id + control number), accepted/rejected, errors."""

    set_id: str
    control_number: str
    status: str  # A, E, R, (M, W, X in 999)
    codes: list[str] = Field(default_factory=list)  # IK502.. / AK502.. syntax error codes
    errors: list[SegmentError] = Field(default_factory=list)
    pos: Pos

    @property
    def rejected(self) -> bool:
        return self.status not in ("A", "E")


class Acknowledgment(_Model):
    """A 999 (or 997): one functional-group response with its transaction set responses."""

    kind: Literal["999", "997"]
    group_control_number: str = ""
    group_status: str = ""
    transactions: list[TransactionAck] = Field(default_factory=list)


class StatusCode(_Model):
    """One 277CA STC01/10/11 composite: category (A7 = rejected for invalid information, ...), status (508 list),
    entity (98 list: 85 billing provider, IL subscriber, QC patient, ...)."""

    category: str
    status: str = ""
    entity: str = ""


class ClaimStatus(_Model):
    """277CA loop 2200D: the claim (REF*1K payer claim number, TRN02 the submitter's claim id) and its statuses."""

    claim_id: str = ""
    payer_claim_id: str = ""
    statuses: list[StatusCode] = Field(default_factory=list)
    charge: float = 0.0
    pos: Pos

    @property
    def rejected(self) -> bool:
        return any(s.category.startswith(("A3", "A4", "A6", "A7", "A8")) for s in self.statuses)


class StatusReport(_Model):
    """A 277CA: the payer (information source) and claim statuses."""

    payer_id: str = ""
    payer_name: str = ""
    claims: list[ClaimStatus] = Field(default_factory=list)
    transaction: str = ""


class Document(_Model):
    """Everything read from one X12 file."""

    transactions: list[Transaction] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    remittances: list[Remittance] = Field(default_factory=list)
    acknowledgments: list[Acknowledgment] = Field(default_factory=list)
    status_reports: list[StatusReport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
