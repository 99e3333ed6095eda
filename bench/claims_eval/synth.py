"""A synthetic rejection population made by editing the shared, valid samples (never written to the repo).

A hidden *payer policy* (``POLICY``) says what two payers reject. Each event is one claim that breaks one policy item
- a valid LinuxForHealth 837P with one edit (procedure code, modifier, billing NPI, facility code, payer id, claim
id) - and the rejection the payer sends back for it, made by editing a valid sample of the right kind:

- 835 CARC denials: LinuxForHealth ``managed-care.835`` with its claim payments replaced by a denied CLP/SVC/CAS
  (+ LQ*HE remark) for the claim;
- 277CA rejections: imsweb ``x12_277CA_rejected.txt`` with the claim id, payer and STC composite edited;
- 999 rejections: imsweb ``x12_999_rejected.txt`` with AK2/IK3/IK4 edited to point at the claim's CLM05-1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

P1, P2 = "999996666", "741234"  # payer ids as in the LinuxForHealth samples (KEY INSURANCE, ALLIANCE HEALTH)

# item: (source, payer, code, values) - what the payer rejects
# codes are drawn with Zipf-like weights (1/rank): frequent codes recur, rare ones may only ever be held out
POLICY: list[tuple[str, str, str, list[str]]] = [
    ("835", P1, "96", ["97010", "97014", "97124", "98940", "99401", "G0283", "97012", "97016", "97018", "97022",
                       "97026", "97028", "97032", "97033", "97034", "97036", "97039", "97110", "97112", "97113"]),
    ("835", P2, "96", ["97010", "97035", "98941", "S9083", "98942", "98943", "97750", "97755", "97760", "S9090"]),
    ("835", P1, "197", ["27447", "29881", "70553", "72148", "72141", "73721", "74177", "27130", "63030", "22551"]),
    ("835", P2, "4", ["20610", "11042", "17110", "20550", "20552", "11055", "11720"]),
    ("277CA", P1, "A7:562:85", ["bad-npi"]),                                    # billing provider NPI
    ("277CA", P2, "A7:562:85", ["bad-npi"]),
    ("999", P1, "7", ["99", "60", "49"]),                                       # CLM05-1 codes P1 refuses
]
CLEAN_837P = ["demo.autoaccident.837", "demo.cob.example3.B.837", "demo.cob.example3.C.837", "demo.example1.837",
              "demo.example2.837", "demo.example7.837", "demo.example8.837", "demo.drug.example10.1.837"]


@dataclass
class Event:
    source: str  # 835 | 277CA | 999
    item: int  # index into POLICY
    value: str
    claim: str  # the 837 text
    rejection: str  # the rejection text
    claim_id: str


def segments(text: str) -> tuple[list[str], str]:
    """Segments of an X12 text (newlines dropped) and its segment terminator."""
    term = text.lstrip()[105] if len(text.lstrip()) > 105 else "~"
    return [s.strip("\r\n") for s in text.replace("\r", "").replace("\n", "").split(term) if s.strip()], term


def join(segs: list[str], term: str) -> str:
    return "".join(s + term + "\n" for s in segs)


def recount(segs: list[str]) -> list[str]:
    """Fix SE01 after edits."""
    out, st = [], 0
    for s in segs:
        if s.startswith("ST*"):
            st = len(out)
        if s.startswith("SE*"):
            parts = s.split("*")
            parts[1] = str(len(out) - st + 1)
            s = "*".join(parts)
        out.append(s)
    return out


def _set(seg: str, pos: int, value: str) -> str:
    parts = seg.split("*")
    while len(parts) <= pos:
        parts.append("")
    parts[pos] = value
    return "*".join(parts).rstrip("*")


def bad_npi(npi: str) -> str:
    """The same NPI with a wrong check digit."""
    from fedinf.claims.rules import valid_npi

    for d in "0123456789":
        cand = npi[:9] + d
        if not valid_npi(cand):
            return cand
    return npi


def edit_837(text: str, *, payer: str, claim_id: str, procedure: str | None = None, modifiers: list[str] | None =
             None, npi: str | None = None, facility: str | None = None) -> str:
    segs, term = segments(text)
    out, payer_done, sv1_done = [], False, False
    for s in segs:
        if s.startswith("NM1*PR*") and not payer_done:
            s, payer_done = _set(s, 9, payer), True
        elif s.startswith("CLM*"):
            s = _set(s, 1, claim_id)
            if facility is not None:
                parts = s.split("*")
                comp = parts[5].split(":")
                comp[0] = facility
                parts[5] = ":".join(comp)
                s = "*".join(parts)
        elif s.startswith("SV1*") and procedure is not None and not sv1_done:
            parts = s.split("*")
            parts[1] = ":".join(["HC", procedure, *(modifiers or [])])
            s, sv1_done = "*".join(parts), True
        elif s.startswith("NM1*85*") and npi is not None:
            s = _set(s, 9, npi)
        elif s.startswith("REF*G1*"):
            continue  # no prior authorization on these claims
        out.append(s)
    return join(recount(out), term)


def denial_835(base: str, *, payer: str, claim_id: str, procedure: str, modifiers: list[str], carc: str,
               rarc: str | None = None, charge: str = "100.00") -> str:
    segs, term = segments(base)
    head = [s for s in segs[: next(i for i, s in enumerate(segs) if s.startswith(("LX*", "CLP*")))]]
    head = [_set(_set(s, 3, "XV"), 4, payer) if s.startswith("N1*PR*") else s for s in head]
    body = ["LX*1", f"CLP*{claim_id}*4*{charge}*0**12*PCN{claim_id}", "NM1*QC*1*DOE*PAT****MI*M0001",
            "SVC*" + ":".join(["HC", procedure, *modifiers]) + f"*{charge}*0", "DTM*472*20240105",
            f"CAS*CO*{carc}*{charge}"] + ([f"LQ*HE*{rarc}"] if rarc else [])
    tail = [s for s in segs if s.startswith(("SE*", "GE*", "IEA*"))]
    return join(recount(head + body + tail), term)


def rejection_277(base: str, *, payer: str, claim_id: str, stc: str) -> str:
    segs, term = segments(base)
    comp = segs[0][104] if len(segs[0]) > 104 else ":"
    out, pt = [], False
    for s in segs:
        if s.startswith("NM1*PR*"):
            s = _set(s, 9, payer)
        if s.startswith("HL*") and s.endswith("*PT"):
            pt = True
        if pt and s.startswith("TRN*2*"):
            s = _set(s, 2, claim_id)
        if pt and s.startswith("STC*"):
            s = _set(s, 1, stc.replace(":", comp))
        out.append(s)
    return join(out, term)


def rejection_999(base: str, *, control: str, position: int, value: str) -> str:
    segs, term = segments(base)
    comp = segs[0][104] if len(segs[0]) > 104 else ":"
    out = []
    for s in segs:
        if s.startswith("AK2*"):
            s = _set(s, 2, control)
        elif s.startswith("IK3*"):
            out.append(f"IK3*CLM*{position}*2300*8")
            s = f"IK4*5{comp}1*1331*7*{value}"
        out.append(s)
    return join(recount(out), term)


def population(data: Path, n: int, *, seed: int = 13) -> list[Event]:
    """``n`` events over the policy items, reproducible from ``seed``."""
    from fedinf.claims.engine import Engine
    from fedinf.claims.parsing import parse

    rng = random.Random(seed)
    lfh = data / "claims" / "linuxforhealth_x12" / "resources"
    bases = [(lfh / "837_005010X222A2" / f).read_text(encoding="latin-1") for f in CLEAN_837P]
    remit = (lfh / "835_005010X221A1" / "managed-care.835").read_text(encoding="latin-1")
    ims = data / "claims" / "imsweb_x12_parser"
    r277 = (ims / "277_5010" / "x12_277CA_rejected.txt").read_text(encoding="latin-1")
    r999 = (ims / "837_5010" / "x12_999_rejected.txt").read_text(encoding="latin-1")
    engine = Engine()
    events = []
    for i in range(n):
        item = i % len(POLICY) if i < len(POLICY) * 2 else rng.randrange(len(POLICY))
        source, payer, code, values = POLICY[item]
        value = rng.choices(values, weights=[1 / (k + 1) for k in range(len(values))])[0]
        base, cid = rng.choice(bases), f"SYN{i:05d}"
        if source == "835":
            mods = ["LT"] if code != "4" and rng.random() < 0.2 else []
            claim = edit_837(base, payer=payer, claim_id=cid, procedure=value, modifiers=mods)
            rej = denial_835(remit, payer=payer, claim_id=cid, procedure=value, modifiers=mods, carc=code)
        elif source == "277CA":
            doc, _ = parse(base, engine=engine)
            claim = edit_837(base, payer=payer, claim_id=cid, npi=bad_npi(doc.claims[0].billing_npi or "1234567893"))
            rej = rejection_277(r277, payer=payer, claim_id=cid, stc=code)
        else:
            claim = edit_837(base, payer=payer, claim_id=cid, facility=value)
            doc, _ = parse(claim, engine=engine)
            c = doc.claims[0]
            rej = rejection_999(r999, control=c.transaction, position=c.pos.position, value=value)
        events.append(Event(source=source, item=item, value=value, claim=claim, rejection=rej, claim_id=cid))
    return events


def valid_claims(data: Path) -> list[tuple[str, str]]:
    """The clean LinuxForHealth 837Ps, each addressed to both policy payers (so every scoped rule is in play)."""
    lfh = data / "claims" / "linuxforhealth_x12" / "resources" / "837_005010X222A2"
    out = []
    for f in CLEAN_837P:
        text = (lfh / f).read_text(encoding="latin-1")
        for payer in (P1, P2):
            segs, _ = segments(text)
            out.append((f"{f}@{payer}", edit_837(text, payer=payer, claim_id=_claim_id(segs))))
    return out


def _claim_id(segs: list[str]) -> str:
    return next(s.split("*")[1] for s in segs if s.startswith("CLM*"))
