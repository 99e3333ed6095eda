"""JSONSchemaBench dev sample: declared coverage, labelled instances, compile times - per category.

* declared coverage: (a) llguidance defaults compile the raw schema; (b) fedinf serves the schema (no 400) and
  (b') its constraint is exact (nothing left to validation only);
* labelled instances: the fedinf validator agrees with the label; the fedinf constraint allows every valid instance
  (token walk) and blocks how many invalid ones; end to end (constraint + validation) nothing invalid passes;
* compile time of the fedinf path (schema IR + constraint + llguidance compile check) per schema.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tokenwalk import BUDGET, VALID_BUDGET, Walker, compile_grammar

from fedinf.errors import SchemaError
from fedinf.structured.constraint import build_constraint
from fedinf.structured.schema import load_schema


def category(name: str) -> str:
    return name.split("---")[0] if "---" in name else re.sub(r"_\d+$", "", name)


def load_bench(bench_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for f in sorted(bench_dir.glob("*.json")):
        out.append((category(f.stem), f.stem, json.loads(f.read_text())))
    return out


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"


def run_bench(bench_dir: Path, tok: Any) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    compile_ms: list[float] = []
    unsound: list[str] = []
    for cat, name, doc in load_bench(bench_dir):
        r = rows[cat]
        r["schemas"] += 1
        err, _ = compile_grammar(doc["schema"], tok)
        r["default_compiles"] += err is None
        t0 = time.perf_counter()
        try:
            schema = load_schema(doc["schema"])
        except SchemaError:
            schema = None
        c = build_constraint(schema.normalised) if schema is not None else None
        compile_ms.append((time.perf_counter() - t0) * 1000)
        if schema is None or c is None:
            continue
        r["served"] += 1
        r["exact"] += c.exact
        r["lenient"] += c.lenient
        err2, grammar = compile_grammar(c.schema, tok)
        walker = None if err2 else Walker(tok, grammar, item_sep=", ", key_sep=": ")
        r["compiles"] += walker is not None
        for t in doc.get("tests") or []:
            valid = bool(t.get("valid"))
            verdict = schema.is_valid(t["data"])
            r["tests"] += 1
            r["valid_tests"] += valid
            r["validator_agree"] += verdict == valid
            budget = VALID_BUDGET if valid else BUDGET
            allowed = walker.accepts(t["data"], c.schema, budget=budget) if walker is not None else True
            if valid:
                r["valid_allowed"] += allowed
                if not allowed:
                    unsound.append(f"{name}: {t.get('description', '')}")
            else:
                r["invalid_blocked"] += not allowed
                r["e2e_invalid_passed"] += allowed and verdict
    return {"rows": {k: dict(v) for k, v in sorted(rows.items())}, "compile_ms": compile_ms, "unsound": unsound}


def bench_markdown(res: dict[str, Any]) -> str:
    rows = res["rows"]
    tot: dict[str, float] = defaultdict(float)
    for r in rows.values():
        for k, v in r.items():
            tot[k] += v
    lines = [
        "## JSONSchemaBench dev sample (declared coverage and labelled instances)",
        "",
        "Declared coverage: share of schemas (a) llguidance 1.0.1 compiles with default options, (b) fedinf serves "
        "(no 400), (b') with an exact constraint (no keyword left to validation alone). Labelled instances: the "
        "validator's agreement with the labels; the fedinf constraint's token walk on valid instances (must allow "
        "all) and invalid ones (blocked share); end to end (constraint + validation) invalid instances passing.",
        "",
        "| category | schemas | (a) llguidance compiles | (b) fedinf serves | (b') exact constraint | tests | "
        "validator agrees | valid allowed by constraint | invalid blocked by constraint | invalid passing e2e |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cat, r in [*rows.items(), ("**total**", tot)]:
        n = int(r.get("schemas", 0))
        inv = int(r.get("tests", 0) - r.get("valid_tests", 0))
        lines.append(
            f"| {cat} | {n} | {_pct(int(r.get('default_compiles', 0)), n)} | {_pct(int(r.get('served', 0)), n)} | "
            f"{_pct(int(r.get('exact', 0)), n)} | {int(r.get('tests', 0))} | "
            f"{_pct(int(r.get('validator_agree', 0)), int(r.get('tests', 0)))} | "
            f"{int(r.get('valid_allowed', 0))}/{int(r.get('valid_tests', 0))} | "
            f"{int(r.get('invalid_blocked', 0))}/{inv} | {int(r.get('e2e_invalid_passed', 0))} |")
    if res["unsound"]:
        lines += ["", "Valid instances the constraint blocked:", ""] + [f"- {u}" for u in res["unsound"][:30]]
    return "\n".join(lines) + "\n"
