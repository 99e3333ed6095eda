"""X12 text -> typed models (:mod:`fedinf.claims.models`), from one :class:`~fedinf.claims.engine.Engine` pass.

The engine (pyx12) tokenises, assigns every segment to its implementation-guide loop and checks it; this module only
reads the walked segments into models: 837P/837I claims (with the hierarchy's billing provider, subscriber, payer and
patient), 835 remittances (CLP/CAS/SVC/LQ), 999/997 acknowledgments (AK2/IK3/IK4/IK5) and 277CA claim statuses (STC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fedinf.claims.engine import Engine, Walk, WalkedSegment
from fedinf.claims.models import (
    Acknowledgment, Adjustment, Claim, ClaimPayment, ClaimStatus, Document, ElementError, Party, Pos, Remittance,
    Segment, SegmentError, ServiceLine, ServicePayment, StatusCode, StatusReport, Transaction, TransactionAck,
)

DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR", "DR"})


def transaction_kind(set_id: str, version: str) -> str:
    """``837`` + ``005010X222A1`` -> ``837P``; ``837`` + ``X223`` -> ``837I``; ``277`` + ``X214`` -> ``277CA``."""
    if set_id == "837":
        if "X223" in version or "X096" in version:
            return "837I"
        if "X224" in version or "X097" in version:
            return "837D"
        return "837P"
    if set_id == "277" and "X214" in version:
        return "277CA"
    return set_id


def parse(text: str, *, engine: Engine) -> tuple[Document, Walk]:
    """Read one X12 document. Raises :class:`~fedinf.errors.InvalidX12` when it is not X12."""
    walk = engine.walk(text)
    return build(walk), walk


def build(walk: Walk) -> Document:
    """The models of an already walked document."""
    b = _Builder()
    for seg in walk.segments:
        b.feed(seg)
    b.close_transaction()
    return Document(transactions=b.transactions, claims=b.claims, remittances=b.remittances,
                    acknowledgments=b.acks, status_reports=b.reports, notes=list(walk.notes))


def _f(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


@dataclass
class _Tx:
    set_id: str
    control: str
    version: str
    kind: str
    sender: str
    receiver: str
    segments: list[Segment] = field(default_factory=list)


class _Builder:
    """Streams walked segments into models; per-transaction state lives in ``ctx``."""

    def __init__(self) -> None:
        self.transactions: list[Transaction] = []
        self.claims: list[Claim] = []
        self.remittances: list[Remittance] = []
        self.acks: list[Acknowledgment] = []
        self.reports: list[StatusReport] = []
        self.gs: dict[str, str] = {}
        self.tx: _Tx | None = None
        self.ctx: dict[str, Any] = {}

    def pos(self, s: WalkedSegment) -> Pos:
        return Pos(segment_id=s.seg_id, index=s.index, position=s.position, loop=s.loop,
                   transaction=self.tx.control if self.tx else None)

    def feed(self, s: WalkedSegment) -> None:
        if s.seg_id == "GS":
            self.gs = {"version": s.value(8), "sender": s.value(2), "receiver": s.value(3), "control": s.value(6)}
            return
        if s.seg_id == "ST":
            self.close_transaction()
            version = s.value(3) or self.gs.get("version", "")
            self.tx = _Tx(s.value(1), s.value(2), version, transaction_kind(s.value(1), version),
                          self.gs.get("sender", ""), self.gs.get("receiver", ""))
            self.ctx = {}
        if self.tx is None:
            return
        self.tx.segments.append(Segment(id=s.seg_id, elements=[list(e) for e in s.elements], pos=self.pos(s)))
        kind = self.tx.kind
        if kind in ("837P", "837I"):
            _Claims(self).feed(s)
        elif kind == "835":
            _Remits(self).feed(s)
        elif kind in ("999", "997"):
            _Acks(self).feed(s)
        elif kind == "277CA":
            _Statuses(self).feed(s)
        if s.seg_id == "SE":
            self.close_transaction()

    def close_transaction(self) -> None:
        if self.tx is None:
            return
        tx = self.tx
        if tx.kind in ("837P", "837I"):
            _Claims(self).flush(tx)
        self.tx = None
        self.transactions.append(Transaction(kind=tx.kind, set_id=tx.set_id, control_number=tx.control,
                                             version=tx.version, sender=tx.sender, receiver=tx.receiver,
                                             segments=tx.segments))
        self.ctx = {}


class _Claims:
    """837: HL hierarchy -> claim context; CLM starts a claim; LX/SV1/SV2 add lines."""

    def __init__(self, b: _Builder) -> None:
        self.b, self.c = b, b.ctx

    def feed(self, s: WalkedSegment) -> None:
        c, sid = self.c, s.seg_id
        self._keep(s)
        if sid == "BHT":
            c["created"] = s.value(4)
        elif sid == "HL":
            self.flush(None)
            level = s.value(3)
            if level == "20":
                c["billing"] = {"segs": [s.index]}
            if level in ("20", "22"):
                c["subscriber"] = {"hl": level == "22", "segs": [s.index] if level == "22" else []}
            c["patient"] = {"hl": level == "23", "segs": [s.index] if level == "23" else []}
        elif sid == "CLM":
            self.flush(None)
            c["claim"] = {"seg": s, "lines": [], "parties": [], "dx": [], "auth": "", "segs": [s.index]}
        elif sid == "NM1":
            self._party(s)
        elif sid == "PRV" and s.loop in ("2000A",):
            c.setdefault("billing", {})["taxonomy"] = s.value(3)
        elif sid == "DMG":
            target = c.setdefault("patient" if s.loop == "2010CA" else "subscriber", {})
            target["dob"], target["gender"] = s.value(2), s.value(3)
        elif "claim" in c:
            self._claim_segment(s)

    def _keep(self, s: WalkedSegment) -> None:
        """Remember which segments belong to which level, so a claim sees its header and its own hierarchy."""
        c = self.c
        if s.seg_id in ("HL", "CLM"):
            return
        if "claim" in c:
            c["claim"]["segs"].append(s.index)
        elif "billing" not in c:
            c.setdefault("header", []).append(s.index)
        else:
            level = "patient" if c.get("patient", {}).get("hl") else "subscriber" if c.get("subscriber", {}).get(
                "hl") else "billing"
            c[level].setdefault("segs", []).append(s.index)

    def _party(self, s: WalkedSegment) -> None:
        c = self.c
        party = Party(entity=s.value(1), loop=s.loop, last_or_org=s.value(3), id_qualifier=s.value(8), id=s.value(9),
                      pos=self.b.pos(s))
        if "claim" in c and s.loop.startswith(("23", "24")):
            c["claim"]["parties"].append(party)
            return
        slot = {"2010AA": "billing", "2010BA": "subscriber", "2010BB": "subscriber", "2010CA": "patient"}.get(s.loop)
        if slot:
            c.setdefault(slot, {}).setdefault("parties", []).append(party)
            if s.loop == "2010BB":
                c[slot]["payer_id"], c[slot]["payer_name"] = s.value(9), s.value(3)

    def _claim_segment(self, s: WalkedSegment) -> None:
        cl, sid = self.c["claim"], s.seg_id
        if sid == "HI" and s.loop == "2300":
            cl["dx"] += [s.value(i, 2) for i in range(1, len(s.elements) + 1)
                         if s.value(i, 2) and s.value(i, 1) in DIAGNOSIS_QUALIFIERS]
        elif sid == "REF" and s.loop == "2300" and s.value(1) == "G1":
            cl["auth"] = s.value(2)
        elif sid == "LX":
            cl["lines"].append({"number": int(s.value(1) or 0) if s.value(1).isdigit() else 0, "seg": s})
        elif sid in ("SV1", "SV2") and cl["lines"]:
            cl["lines"][-1]["svc"] = s
        elif sid == "DTP" and s.value(1) == "472" and cl["lines"]:
            cl["lines"][-1]["date"] = s.value(3)
        elif sid == "LIN" and cl["lines"]:
            cl["lines"][-1]["ndc"] = s.value(3)

    def flush(self, tx: _Tx | None) -> None:
        c = self.c
        cl = c.pop("claim", None)
        if cl is None or self.b.tx is None and tx is None:
            return
        t = tx or self.b.tx
        assert t is not None
        s: WalkedSegment = cl["seg"]
        sub, pat, bill = c.get("subscriber", {}), c.get("patient", {}), c.get("billing", {})
        parties = [*bill.get("parties", []), *sub.get("parties", []), *pat.get("parties", []), *cl["parties"]]
        billing = next((p for p in bill.get("parties", []) if p.entity == "85"), None)
        subscriber = next((p for p in sub.get("parties", []) if p.entity == "IL"), None)
        who = pat if pat.get("gender") else sub
        self.b.claims.append(Claim(
            kind="837I" if t.kind == "837I" else "837P", claim_id=s.value(1), charge=_f(s.value(2)),
            facility_code=s.value(5, 1), frequency=s.value(5, 3), payer_id=sub.get("payer_id", ""),
            payer_name=sub.get("payer_name", ""), billing_npi=billing.id if billing else "",
            billing_taxonomy=bill.get("taxonomy", ""), subscriber_id=subscriber.id if subscriber else "",
            patient_gender=who.get("gender", ""), patient_birth_date=who.get("dob", ""), diagnoses=cl["dx"],
            prior_auth=cl["auth"], created=c.get("created", ""), parties=parties,
            lines=[self._line(ln, s) for ln in cl["lines"] if "svc" in ln], transaction=t.control,
            pos=Pos(segment_id="CLM", index=s.index, position=s.position, loop=s.loop, transaction=t.control),
            segment_indices=[*c.get("header", []), *bill.get("segs", []), *sub.get("segs", []), *pat.get("segs", []),
                             *cl["segs"]]))

    def _line(self, ln: dict[str, Any], clm: WalkedSegment) -> ServiceLine:
        v: WalkedSegment = ln["svc"]
        pos = self.b.pos(v)
        if v.seg_id == "SV2":  # institutional: SV201 revenue code, SV202 composite procedure
            comp = v.elements[1] if len(v.elements) > 1 else ("",)
            return ServiceLine(number=ln["number"], revenue_code=v.value(1), qualifier=comp[0],
                               procedure=comp[1] if len(comp) > 1 else "", modifiers=[m for m in comp[2:6] if m],
                               charge=_f(v.value(3)), unit_basis=v.value(4), units=_f(v.value(5)),
                               service_date=ln.get("date", ""), ndc=ln.get("ndc", ""), pos=pos)
        comp = v.elements[0] if v.elements else ("",)
        return ServiceLine(number=ln["number"], qualifier=comp[0], procedure=comp[1] if len(comp) > 1 else "",
                           modifiers=[m for m in comp[2:6] if m], charge=_f(v.value(2)), unit_basis=v.value(3),
                           units=_f(v.value(4)), place_of_service=v.value(5) or clm.value(5, 1),
                           diagnosis_pointers=[p for p in v.elements[6] if p] if len(v.elements) > 6 else [],
                           service_date=ln.get("date", ""), ndc=ln.get("ndc", ""), pos=pos)


def _cas(s: WalkedSegment) -> list[Adjustment]:
    out = []
    for i in range(2, 20, 3):
        if s.value(i):
            out.append(Adjustment(group=s.value(1), reason=s.value(i), amount=_f(s.value(i + 1))))
    return out


class _Remits:
    """835: N1*PR/PE, CLP (2100), CAS, MOA/MIA remarks, SVC (2110), LQ*HE remarks."""

    def __init__(self, b: _Builder) -> None:
        self.b, self.c = b, b.ctx

    def feed(self, s: WalkedSegment) -> None:
        c, sid = self.c, s.seg_id
        if sid == "ST":
            c["remit"] = {"claims": [], "payer_id": "", "payer_name": "", "payee": ""}
        r = c.get("remit")
        if r is None:
            return
        if sid == "TRN" and not r["payer_id"]:
            r["payer_id"] = s.value(3).lstrip("1") or s.value(3)
        elif sid == "N1" and s.value(1) == "PR":
            r["payer_name"] = s.value(2)
            r["payer_id"] = s.value(4) or r["payer_id"]
        elif sid == "REF" and s.value(1) == "2U" and s.loop == "1000A":
            r["payer_id"] = s.value(2)
        elif sid == "N1" and s.value(1) == "PE":
            r["payee"] = s.value(4)
        elif sid == "CLP":
            r["claims"].append({"seg": s, "adj": [], "rem": [], "svc": []})
        elif sid == "CAS" and r["claims"]:
            target = r["claims"][-1]["svc"][-1] if s.loop == "2110" and r["claims"][-1]["svc"] else r["claims"][-1]
            target["adj"] += _cas(s)
        elif sid in ("MOA", "MIA") and r["claims"]:
            rng = range(3, 8) if sid == "MOA" else (5, 20, 21, 22, 23)
            r["claims"][-1]["rem"] += [s.value(i) for i in rng if s.value(i)]
        elif sid == "SVC" and r["claims"]:
            r["claims"][-1]["svc"].append({"seg": s, "adj": [], "rem": []})
        elif sid == "LQ" and s.value(1) == "HE" and r["claims"] and r["claims"][-1]["svc"]:
            r["claims"][-1]["svc"][-1]["rem"].append(s.value(2))
        elif sid == "SE":
            self._close(r)

    def _close(self, r: dict[str, Any]) -> None:
        claims = []
        for cl in r["claims"]:
            s: WalkedSegment = cl["seg"]
            services = []
            for sv in cl["svc"]:
                v: WalkedSegment = sv["seg"]
                comp = v.elements[0] if v.elements else ("",)
                services.append(ServicePayment(
                    qualifier=comp[0], procedure=comp[1] if len(comp) > 1 else "",
                    modifiers=[m for m in comp[2:6] if m],
                    charge=_f(v.value(2)), paid=_f(v.value(3)), adjustments=sv["adj"], remarks=sv["rem"],
                    pos=self.b.pos(v)))
            claims.append(ClaimPayment(claim_id=s.value(1), status=s.value(2), charge=_f(s.value(3)),
                                       paid=_f(s.value(4)), adjustments=cl["adj"], remarks=cl["rem"],
                                       services=services, pos=self.b.pos(s)))
        tx = self.b.tx
        self.b.remittances.append(Remittance(payer_id=r["payer_id"], payer_name=r["payer_name"], payee_npi=r["payee"],
                                             claims=claims, transaction=tx.control if tx else ""))


class _Acks:
    """999 (AK1, AK2, IK3, IK4, IK5, AK9) and 997 (AK3, AK4, AK5)."""

    def __init__(self, b: _Builder) -> None:
        self.b, self.c = b, b.ctx

    def feed(self, s: WalkedSegment) -> None:
        c, sid = self.c, s.seg_id
        if sid == "AK1":
            c["ack"] = {"group": s.value(2), "tx": [], "status": ""}
        a = c.get("ack")
        if a is None:
            return
        if sid == "AK2":
            a["tx"].append({"seg": s, "errors": [], "status": "", "codes": []})
        elif sid in ("IK3", "AK3") and a["tx"]:
            a["tx"][-1]["errors"].append({"seg": s, "elements": []})
        elif sid in ("IK4", "AK4") and a["tx"] and a["tx"][-1]["errors"]:
            comp = s.elements[0] if s.elements else ("",)
            a["tx"][-1]["errors"][-1]["elements"].append(ElementError(
                element=int(comp[0]) if comp[0].isdigit() else 0,
                component=int(comp[1]) if len(comp) > 1 and comp[1].isdigit() else None,
                data_element=s.value(2), code=s.value(3), value=s.value(4) or None))
        elif sid in ("IK5", "AK5") and a["tx"]:
            a["tx"][-1]["status"] = s.value(1)
            a["tx"][-1]["codes"] = [s.value(i) for i in range(2, 7) if s.value(i)]
        elif sid == "AK9":
            a["status"] = s.value(1)
        elif sid == "SE":
            self._close(a)

    def _close(self, a: dict[str, Any]) -> None:
        tx = self.b.tx
        kind: Literal["999", "997"] = "997" if tx is not None and tx.kind == "997" else "999"
        acks = []
        for t in a["tx"]:
            s: WalkedSegment = t["seg"]
            errors = [SegmentError(segment_id=e["seg"].value(1), position=int(e["seg"].value(2) or 0)
                                   if e["seg"].value(2).isdigit() else 0, loop=e["seg"].value(3),
                                   code=e["seg"].value(4), elements=e["elements"], pos=self.b.pos(e["seg"]))
                      for e in t["errors"]]
            acks.append(TransactionAck(set_id=s.value(1), control_number=s.value(2), status=t["status"],
                                       codes=t["codes"], errors=errors, pos=self.b.pos(s)))
        self.b.acks.append(Acknowledgment(kind=kind, group_control_number=a["group"], group_status=a["status"],
                                          transactions=acks))


class _Statuses:
    """277CA: NM1*PR (2100A) names the payer; each 2200D (TRN, STC, REF*1K, AMT) is one claim's status."""

    def __init__(self, b: _Builder) -> None:
        self.b, self.c = b, b.ctx

    def feed(self, s: WalkedSegment) -> None:
        c, sid = self.c, s.seg_id
        r = c.setdefault("report", {"payer_id": "", "payer_name": "", "claims": []})
        if sid == "NM1" and s.value(1) == "PR":
            r["payer_id"], r["payer_name"] = s.value(9), s.value(3)
        elif sid == "TRN" and s.loop.startswith("2200D"):
            r["claims"].append({"seg": s, "stc": [], "ref": "", "amt": 0.0})
        elif sid == "STC" and s.loop.startswith("2200D") and r["claims"]:
            for i in (1, 10, 11):
                comp = s.elements[i - 1] if len(s.elements) >= i else ("",)
                if comp and comp[0]:
                    r["claims"][-1]["stc"].append(StatusCode(category=comp[0], status=comp[1] if len(comp) > 1
                                                             else "", entity=comp[2] if len(comp) > 2 else ""))
            r["claims"][-1]["amt"] = _f(s.value(4))
        elif sid == "REF" and s.value(1) == "1K" and r["claims"]:
            r["claims"][-1]["ref"] = s.value(2)
        elif sid == "SE":
            tx = self.b.tx
            self.b.reports.append(StatusReport(
                payer_id=r["payer_id"], payer_name=r["payer_name"], transaction=tx.control if tx else "",
                claims=[ClaimStatus(claim_id=cl["seg"].value(2), payer_claim_id=cl["ref"], statuses=cl["stc"],
                                    charge=cl["amt"], pos=self.b.pos(cl["seg"])) for cl in r["claims"]]))
