"""JSON-Schema-Test-Suite (draft 2020-12), token-walk style, three columns per case.

(a) llguidance defaults on the raw schema; (b) fedinf's constraint (schema IR -> :func:`build_constraint`);
(c) fedinf end to end = constraint AND validation (what a caller can ever receive). A case *passes* when every valid
instance is allowed and every invalid one blocked; a compile error (or a schema fedinf rejects with a 400) passes
only when all of the case's instances are invalid. Separately: the validator's agreement with the suite.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tokenwalk import Walker, compile_grammar

from fedinf.errors import SchemaError
from fedinf.structured.constraint import build_constraint
from fedinf.structured.schema import load_schema


def load_cases(suite_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted((suite_dir / "tests" / "draft2020-12").glob("*.json")):
        if f.name == "refRemote.json":
            continue
        for case in json.loads(f.read_text()):
            out.append((f.stem, case))
    return out


def _column(walker: Walker | None, case: dict[str, Any], extra_ok=None, schema: Any = None) -> tuple[bool, int, int]:
    """(case passes, invalid instances accepted, valid instances blocked)."""
    tests = case["tests"]
    if walker is None or walker.error:
        return all(not t["valid"] for t in tests), 0, sum(1 for t in tests if t["valid"])
    inv_acc = val_blk = 0
    for t in tests:
        ok = walker.accepts(t["data"], schema)
        if extra_ok is not None and ok:
            ok = extra_ok(t["data"])
        if ok and not t["valid"]:
            inv_acc += 1
        if not ok and t["valid"]:
            val_blk += 1
    return inv_acc == 0 and val_blk == 0, inv_acc, val_blk


def run_suite(suite_dir: Path, tok: Any) -> dict[str, Any]:
    cases = load_cases(suite_dir)
    per_kw: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    agree = disagree = 0
    disagreements: list[str] = []
    started = time.perf_counter()
    for kw, case in cases:
        row = per_kw[kw]
        row["cases"] += 1
        totals["cases"] += 1
        # (a) llguidance defaults on the raw schema
        err, grammar = compile_grammar(case["schema"], tok)
        w = None if err else Walker(tok, grammar)
        ok, inv, _ = _column(w, case, schema=case["schema"])
        row["default"] += ok
        totals["default"] += ok
        totals["default_compile_errors"] += bool(err)
        totals["default_invalid_accepted"] += inv
        # (b) fedinf constraint, (c) constraint + validation
        try:
            schema = load_schema(case["schema"])
        except SchemaError:
            schema = None
            totals["fedinf_rejected"] += 1
            if any(t["valid"] for t in case["tests"]):
                totals["fedinf_rejected_satisfiable"] += 1
        if schema is not None:
            c = build_constraint(schema.normalised)
            err2, grammar2 = compile_grammar(c.schema, tok)
            w2 = None if err2 else Walker(tok, grammar2, item_sep=", ", key_sep=": ")
            totals["fedinf_compile_errors"] += bool(err2)
            totals["fedinf_exact"] += c.exact
            totals["fedinf_lenient"] += c.lenient
        else:
            w2 = None
        cs = c.schema if schema is not None else None
        ok2, inv2, blk2 = _column(w2, case, schema=cs)
        row["fedinf"] += ok2
        totals["fedinf"] += ok2
        totals["fedinf_invalid_accepted"] += inv2
        totals["fedinf_valid_blocked"] += blk2
        ok3, inv3, _ = _column(w2, case, extra_ok=schema.is_valid if schema is not None else None, schema=cs)
        row["e2e"] += ok3
        totals["e2e"] += ok3
        totals["e2e_invalid_accepted"] += inv3
        # validator agreement
        if schema is not None:
            for t in case["tests"]:
                if schema.is_valid(t["data"]) == t["valid"]:
                    agree += 1
                else:
                    disagree += 1
                    disagreements.append(f"{kw}: {case['description']} / {t['description']}")
        else:
            for t in case["tests"]:
                agree += not t["valid"]
                disagree += bool(t["valid"])
    totals["validator_agree"], totals["validator_disagree"] = agree, disagree
    return {"per_keyword": {k: dict(v) for k, v in sorted(per_kw.items())}, "totals": dict(totals),
            "disagreements": disagreements, "seconds": time.perf_counter() - started}


def suite_markdown(res: dict[str, Any]) -> str:
    t = res["totals"]
    n = t["cases"]
    lines = [
        "## JSON-Schema-Test-Suite draft2020-12 (token walk, SmolLM2 tokenizer)",
        "",
        f"{n} cases (refRemote.json excluded), {res['seconds']:.1f} s. A case passes when every valid instance is "
        "allowed and every invalid one blocked (a compile error / a 400 passes only if all instances are invalid).",
        "",
        "| column | cases fully passing | compile errors / rejected | invalid instances accepted |",
        "| --- | --- | --- | --- |",
        f"| (a) llguidance 1.0.1 defaults, raw schema | {t['default']}/{n} ({100 * t['default'] / n:.1f}%) | "
        f"{t['default_compile_errors']} | {t.get('default_invalid_accepted', 0)} |",
        f"| (b) fedinf constraint alone | {t['fedinf']}/{n} ({100 * t['fedinf'] / n:.1f}%) | "
        f"{t.get('fedinf_compile_errors', 0)} compile, {t.get('fedinf_rejected', 0)} rejected "
        f"({t.get('fedinf_rejected_satisfiable', 0)} with valid instances) | "
        f"{t.get('fedinf_invalid_accepted', 0)} (caught by validation) |",
        f"| (c) fedinf constraint + validation (what is returned) | {t['e2e']}/{n} ({100 * t['e2e'] / n:.1f}%) | "
        f"same as (b) | {t.get('e2e_invalid_accepted', 0)} |",
        "",
        f"fedinf constraint exact (no keyword left to validation) for {t.get('fedinf_exact', 0)} schemas; "
        f"lenient fallback {t.get('fedinf_lenient', 0)}; valid instances blocked by (b): "
        f"{t.get('fedinf_valid_blocked', 0)}.",
        "",
        f"Validator (jsonschema-rs, formats asserted) agreement with the suite: {t['validator_agree']}/"
        f"{t['validator_agree'] + t['validator_disagree']} tests "
        f"({100 * t['validator_agree'] / max(1, t['validator_agree'] + t['validator_disagree']):.2f}%).",
        "",
    ]
    if res["disagreements"]:
        lines.append("Disagreements (format assertion is on by design; the suite treats `format` as annotation):")
        lines.append("")
        lines += [f"- {d}" for d in res["disagreements"][:40]]
        lines.append("")
    lines += ["### Per keyword (file), cases fully passing", "",
              "| keyword | cases | (a) llguidance defaults | (b) fedinf constraint | (c) + validation |",
              "| --- | --- | --- | --- | --- |"]
    for kw, row in res["per_keyword"].items():
        c = row["cases"]
        lines.append(f"| {kw} | {c} | {row.get('default', 0)} ({100 * row.get('default', 0) / c:.0f}%) | "
                     f"{row.get('fedinf', 0)} ({100 * row.get('fedinf', 0) / c:.0f}%) | "
                     f"{row.get('e2e', 0)} ({100 * row.get('e2e', 0) / c:.0f}%) |")
    return "\n".join(lines) + "\n"
