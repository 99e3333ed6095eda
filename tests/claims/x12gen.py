"""Generated X12 fixtures for the claims tests (synthetic values only; no shared data)."""

from __future__ import annotations

from dataclasses import dataclass, field


def npi(base9: str) -> str:
    """A valid NPI: ``base9`` + the Luhn check digit over ``80840`` + base9."""
    digits = [int(d) for d in "80840" + base9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return base9 + str((10 - total % 10) % 10)


GOOD_NPI = npi("123456789")
BAD_NPI = GOOD_NPI[:9] + str((int(GOOD_NPI[9]) + 1) % 10)


def envelope(segments: list[str], *, fic: str, version: str, set_id: str, control: str = "0001") -> str:
    body = [f"ST*{set_id}*{control}*{version}", *segments]
    body.append(f"SE*{len(body) + 1}*{control}")
    isa = ("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *240101*1200*^*00501*000000101*0*T*:")
    gs = f"GS*{fic}*SUBMITTER*RECEIVER*20240101*1200*101*X*{version}"
    return "~\n".join([isa, gs, *body, "GE*1*101", "IEA*1*000000101"]) + "~\n"


@dataclass
class Line:
    procedure: str = "99213"
    modifiers: list[str] = field(default_factory=list)
    charge: str = "40.00"
    date: str = "20240105"


@dataclass
class Claim837:
    claim_id: str = "CLM1001"
    payer_id: str = "PAYER01"
    billing_npi: str = GOOD_NPI
    pos: str = "11"
    dob: str = "19800101"
    gender: str = "F"
    diagnoses: list[str] = field(default_factory=lambda: ["J020"])
    lines: list[Line] = field(default_factory=lambda: [Line()])
    prior_auth: str | None = None
    drop: set[str] = field(default_factory=set)  # segment tags to leave out, e.g. {"N3@2010AA"}

    def segments(self) -> list[str]:
        total = sum(float(ln.charge) for ln in self.lines)
        segs = [
            "BHT*0019*00*BATCH1*20240110*1200*CH",
            "NM1*41*2*SUBMITTER CLINIC*****46*SUB01", "PER*IC*DESK*TE*5555550100",
            "NM1*40*2*RECEIVER*****46*RCV01",
            "HL*1**20*1", "PRV*BI*PXC*207Q00000X",
            f"NM1*85*2*EXAMPLE CLINIC*****XX*{self.billing_npi}", "N3@2010AA*1 MAIN ST", "N4*SPRINGFIELD*IL*627010001",
            "REF*EI*123456789",
            "HL*2*1*22*0", "SBR*P*18*GRP01******CI", "NM1*IL*1*DOE*PAT****MI*MEMBER001", "N3*2 ELM ST",
            "N4*SPRINGFIELD*IL*62701", f"DMG*D8*{self.dob}*{self.gender}",
            f"NM1*PR*2*EXAMPLE PAYER*****PI*{self.payer_id}",
            f"CLM*{self.claim_id}*{total:.2f}***{self.pos}:B:1*Y*A*Y*Y",
        ]
        if self.prior_auth:
            segs.append(f"REF*G1*{self.prior_auth}")
        if self.diagnoses:
            segs.append("HI*" + "*".join(("ABK:" if i == 0 else "ABF:") + d for i, d in enumerate(self.diagnoses)))
        for n, ln in enumerate(self.lines, start=1):
            proc = ":".join(["HC", ln.procedure, *ln.modifiers])
            segs += [f"LX*{n}", f"SV1*{proc}*{ln.charge}*UN*1***1", f"DTP*472*D8*{ln.date}"]
        out = []
        for s in segs:
            tag, _, rest = s.partition("*")
            seg_id = tag.split("@")[0]
            if tag in self.drop or seg_id in self.drop:
                continue
            out.append(f"{seg_id}*{rest}")
        return out

    def x12(self, control: str = "0001") -> str:
        return envelope(self.segments(), fic="HC", version="005010X222A1", set_id="837", control=control)


def ack999(errors: list[tuple[str, int, str, str, list[tuple[int, int | None, str, str, str]]]], *,
           control: str = "0001") -> str:
    """``errors``: (segment id, position, loop, IK304, [(element, component, data element, IK403, bad value)])."""
    segs = ["AK1*HC*101*005010X222A1", f"AK2*837*{control}*005010X222A1"]
    for seg, pos, loop, code, elements in errors:
        segs.append(f"IK3*{seg}*{pos}*{loop}*{code}")
        for ele, comp, de, ecode, value in elements:
            where = f"{ele}:{comp}" if comp else str(ele)
            segs.append(f"IK4*{where}*{de}*{ecode}" + (f"*{value}" if value else ""))
    segs += [f"IK5*{'R' if errors else 'A'}*5" if errors else "IK5*A", f"AK9*{'R' if errors else 'A'}*1*1*"
             f"{0 if errors else 1}"]
    return envelope(segs, fic="FA", version="005010X231A1", set_id="999", control="9001")


def status277(claim_id: str, stc: str, *, payer_id: str = "PAYER01") -> str:
    segs = ["BHT*0085*08*B1*20240111*1200*TH", "HL*1**20*1", f"NM1*PR*2*EXAMPLE PAYER*****PI*{payer_id}",
            "TRN*1*T1", "DTP*050*D8*20240111", "DTP*009*D8*20240111", "HL*2*1*21*1",
            "NM1*41*2*SUBMITTER CLINIC*****46*SUB01", "TRN*2*B1", "STC*A1:20*20240111*WQ*40",
            "QTY*90*1", "AMT*YU*40", "HL*3*2*19*1", f"NM1*85*2*EXAMPLE CLINIC*****XX*{GOOD_NPI}", "TRN*1*P1",
            "HL*4*3*PT", "NM1*QC*1*DOE*PAT****MI*MEMBER001", f"TRN*2*{claim_id}", f"STC*{stc}*20240111*WQ*40",
            "REF*1K*PAYERCLM1", "DTP*472*D8*20240105"]
    return envelope(segs, fic="HN", version="005010X214", set_id="277")


def remit835(claim_id: str, services: list[tuple[str, list[str], str, str, list[tuple[str, str, str]], list[str]]],
             *, status: str = "4", payer_id: str = "PAYER01") -> str:
    """``services``: (procedure, modifiers, charge, paid, [(group, CARC, amount)], [RARC])."""
    charge = sum(float(s[2]) for s in services)
    paid = sum(float(s[3]) for s in services)
    segs = [f"BPR*H*{paid:.2f}*C*NON************20240120", "TRN*1*CHK1*1999999999", "DTM*405*20240120",
            f"N1*PR*EXAMPLE PAYER*XV*{payer_id}", "N3*1 PAYER WAY", "N4*SPRINGFIELD*IL*62701",
            "PER*BL*PAYER DESK*TE*5555550199",
            f"N1*PE*EXAMPLE CLINIC*XX*{GOOD_NPI}", "LX*1",
            f"CLP*{claim_id}*{status}*{charge:.2f}*{paid:.2f}**12*PCN1", "NM1*QC*1*DOE*PAT****MI*MEMBER001"]
    for proc, mods, ch, pd, adjs, rarcs in services:
        segs.append("SVC*" + ":".join(["HC", proc, *mods]) + f"*{ch}*{pd}")
        segs.append("DTM*472*20240105")
        for group, carc, amt in adjs:
            segs.append(f"CAS*{group}*{carc}*{amt}")
        segs += [f"LQ*HE*{r}" for r in rarcs]
    return envelope(segs, fic="HP", version="005010X221A1", set_id="835")
