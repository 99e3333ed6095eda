"""Compliance with the embedded model: constrained generation through fedinf's plan, on a fixed prompt.

For each sampled schema: ``OutputSpec`` -> ``plan_for(.., structured="grammar")`` -> llama.cpp with the plan's
``%llguidance`` grammar, temperature 0, then ``plan.check`` (validation) and up to 2 re-asks. Reported per category:
valid on the first attempt (constraint alone), valid in the end, truncated, failed (-> a 422, never an invalid 200).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from model import chat

from fedinf.backends.base import Capabilities
from fedinf.errors import FedinfError
from fedinf.protocol import ChatRequest
from fedinf.structured import OutputSpec, plan_for

PRIORITY = ("Github_easy", "Kubernetes", "Snowplow", "Glaiveai2K", "JsonSchemaStore", "WashingtonPost", "BFCL_simple",
            "Github_medium", "Synthesized", "MCPspec", "Handwritten", "JME", "Github_trivial", "Github_hard",
            "Github_ultra")
PROMPT = "Generate one realistic example JSON value for the schema given in the system message. Reply with JSON only."


def sample(docs: list[tuple[str, str, dict[str, Any]]], per_category: int | None) -> list[tuple[str, str, dict]]:
    """The first ``per_category`` schemas of each category by serialised size (smallest first); None = all."""
    by_cat: dict[str, list[tuple[str, str, dict]]] = defaultdict(list)
    for cat, name, doc in docs:
        by_cat[cat].append((cat, name, doc))
    ranked = {cat: sorted(items, key=lambda x: (len(json.dumps(x[2]["schema"])), x[1]))
              for cat, items in by_cat.items()}
    if per_category is not None:
        ranked = {cat: items[:per_category] for cat, items in ranked.items()}
    cats = [c for c in PRIORITY if c in ranked] + sorted(c for c in ranked if c not in PRIORITY)
    out = []
    for i in range(max(len(v) for v in ranked.values())):  # round robin: a time budget still sees every category
        out += [ranked[c][i] for c in cats if i < len(ranked[c])]
    return out


def run_compliance(server: Any, docs: list[tuple[str, str, dict]], *, max_tokens: int, budget_s: float,
                   max_reasks: int = 2) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    started = time.perf_counter()
    skipped = 0
    for cat, _name, doc in docs:
        if time.perf_counter() - started > budget_s:
            skipped += 1
            continue
        r = rows[cat]
        try:
            spec = OutputSpec.from_request({"type": "json_schema", "json_schema": {"name": "x", "schema": doc["schema"]}},
                                           None, None)
        except FedinfError:
            r["rejected"] += 1
            continue
        plan = plan_for(spec, Capabilities(structured="grammar"), max_reasks=max_reasks, max_tokens_ceiling=None)
        req = ChatRequest(model="smollm2", messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
                          temperature=0)
        previous = None
        r["schemas"] += 1
        for attempt in range(plan.max_attempts):
            if attempt and time.perf_counter() - started > budget_s:
                break
            sent, extra = plan.prepare(req, attempt, previous)
            body = {"messages": [{"role": m.role, "content": m.text()} for m in sent.messages],
                    "max_tokens": sent.output_limit, "temperature": 0, **extra}
            t0 = time.perf_counter()
            try:
                comp = chat(server, body)
            except RuntimeError:
                r["engine_errors"] += 1
                break
            r["seconds"] += time.perf_counter() - t0
            r["tokens"] += (comp.get("usage") or {}).get("completion_tokens", 0)
            previous = plan.check(comp)
            if attempt == 0:
                r["first_ok"] += previous.ok
            if previous.ok or not plan.can_retry(previous, attempt):
                break
        if previous is not None and previous.ok:
            r["final_ok"] += 1
        elif previous is not None:
            r["truncated" if previous.truncated else "invalid_422"] += 1
    return {"rows": {k: dict(v) for k, v in sorted(rows.items())}, "skipped": skipped,
            "seconds": time.perf_counter() - started, "max_reasks": max_reasks}


def compliance_markdown(res: dict[str, Any], *, mode: str, per_category: int | None, max_tokens: int) -> str:
    lines = [
        "## Compliance with the embedded model (SmolLM2-135M Q4_1, llguidance via llama.cpp)",
        "",
        f"Mode: {mode}; {'all schemas' if per_category is None else f'{per_category} smallest schema(s) per category'}"
        f", temperature 0, max_tokens {max_tokens}, up to {res['max_reasks']} re-ask(s) with the validation errors "
        f"(within the time budget); fixed prompt: "
        f"\"{PROMPT}\" (the plan adds the schema as a system message). {res['seconds']:.0f} s"
        + (f"; {res['skipped']} schema(s) skipped by the time budget" if res["skipped"] else "") + ".",
        "",
        "| category | schemas | valid 1st attempt (constraint) | valid after re-asks | truncated (-> 422) | "
        "invalid (-> 422) | tok/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    tot: dict[str, float] = defaultdict(float)
    for cat, r in res["rows"].items():
        for k, v in r.items():
            tot[k] += v
    for cat, r in [*res["rows"].items(), ("**total**", tot)]:
        n = int(r.get("schemas", 0))
        tps = r.get("tokens", 0) / r["seconds"] if r.get("seconds") else 0
        lines.append(f"| {cat} | {n} | {int(r.get('first_ok', 0))} | {int(r.get('final_ok', 0))} | "
                     f"{int(r.get('truncated', 0))} | {int(r.get('invalid_422', 0))} | {tps:.1f} |")
    lines += ["", "Invalid outputs returned as success: 0 by construction (every output is validated; failures "
                  "become 422 `output_validation_failed` / `output_truncated`)."]
    return "\n".join(lines) + "\n"
