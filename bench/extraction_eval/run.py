"""Extraction evaluation: the built-in ``invoice`` task over the invoice2data and parsee invoice sets, and the
``utility_bill`` task over synthetic US utility bills the bench renders itself (``bills.py``: text PDFs in four
layouts, six utilities, and phone-photo-like JPEGs of them read by OCR).

    python bench/extraction_eval/run.py                    # full: 27 invoices + 24 bill PDFs + 8 photos
    CI=true python bench/extraction_eval/run.py            # CI subsample: 3 + 3 invoices, 4 bill PDFs, 2 photos;
                                                           #   the model engine on the first 2 of each set
    python bench/extraction_eval/run.py --config my.yaml   # also every model of that config (e.g. a bigger GGUF)

Data: ``$FEDINF_DATA_DIR/invoices`` (default ``../shared/data`` from the repo root), read in place.
Writes ``bench/results/extraction_eval.md``. Each engine runs through the real batch runner (``run_batch``) and the
real gateway pipeline; ``extractors only`` runs the same task with ``use_model: false``.

Normalisation rules (applied to expected and extracted values alike) are in ``RULES`` below and in the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from fedinf.config import Config, default_config, load_config  # noqa: E402
from fedinf.tasks import INVOICE, UTILITY_BILL, GatewayClient, TaskRunner, run_batch  # noqa: E402
from fedinf.tasks.normalize import comparable, normalize  # noqa: E402

RULES = """\
- **dates**: parsed from any format to ISO `YYYY-MM-DD`; equal if the same day.
- **amounts**: parsed (`1.234,56`, `1,234.56`, `€ 12`, numbers) to decimals rounded to 2 places; equal if equal.
- **currency**: ISO 4217 code (`€` -> `EUR`, `$` -> `USD`); equal if the same code.
- **invoice number**: leading `#`, `No.`, `n°` and all spaces removed, case-insensitive; equal if identical.
- **issuer**: case, accents and punctuation ignored, trailing legal forms (GmbH, Inc., Ltd, B.V., S.A., spółka
  akcyjna, SAS, ...) removed; equal if identical or one is a whole-word prefix of the other (`SwissDev` vs
  `SwissDev Greg Janusz Tomasik`; `Sammy Maystone` vs `Sammy Maystone - For Lines testing`).
- A missing value (null) never matches. A document that fails to load counts as wrong on every field.
"""

I2D_FIELDS = {"issuer": ("issuer", "issuer"), "date": ("invoice_date", "date"),
              "invoice_number": ("invoice_number", "id"), "amount": ("total_amount", "amount"),
              "currency": ("currency", "currency"), "amount_untaxed": ("net_amount", "amount"),
              "amount_tax": ("tax_amount", "amount"), "date_due": ("due_date", "date")}
I2D_GOAL = ["issuer", "date", "invoice_number", "amount"]
PARSEE_FIELDS = {"total_amount": ("total_amount", "amount"), "currency": ("currency", "currency"),
                 "issuer_name": ("issuer", "issuer"), "invoice_date": ("invoice_date", "date")}
BILL_FIELDS = {"account_holder": ("account_holder", "text"), "account_number": ("account_number", "id"),
               "service_address": ("service_address", "address"), "bill_date": ("bill_date", "date"),
               "due_date": ("due_date", "date"), "billing_period_start": ("billing_period_start", "date"),
               "billing_period_end": ("billing_period_end", "date"), "amount_due": ("amount_due", "amount"),
               "usage_total": ("usage_total", "amount"), "provider": ("provider", "issuer"),
               "usage_unit": ("usage_unit", "text")}
BILL_CORE = [k for k in BILL_FIELDS if k not in ("provider", "usage_unit")]  # the core fields
FIELDS = {"invoice2data": I2D_FIELDS, "parsee": PARSEE_FIELDS, "bills-pdf": BILL_FIELDS, "bills-photo": BILL_FIELDS}
BILLS_FULL = (24, 8)  # synthetic bill PDFs, photos
BILLS_CI = (4, 2)
CI_MODEL_DOCS = 2  # under CI the model engine reads the first 2 documents of each set (~3 minutes on 2 cores)


def issuer_match(expected: Any, got: Any) -> bool:
    a, b = comparable("text", expected), comparable("text", got)
    if not a or not b:
        return False
    return a == b or b.startswith(a + " ") or a.startswith(b + " ")


def match(kind: str, expected: Any, got: Any) -> bool:
    if got is None or expected is None:
        return False
    if kind == "issuer":
        return issuer_match(expected, got)
    if kind == "address":
        return re.sub(r"[^a-z0-9]", "", str(expected).casefold()) == re.sub(r"[^a-z0-9]", "", str(got).casefold())
    e, g = comparable(kind, expected), comparable(kind, got)
    return e is not None and e == g


def data_dir() -> Path:
    """``$FEDINF_DATA_DIR/invoices``; default ``../shared/data`` beside the repo (or beside a folder above it, for
    git worktrees)."""
    if os.environ.get("FEDINF_DATA_DIR"):
        return Path(os.environ["FEDINF_DATA_DIR"]) / "invoices"
    for up in ROOT.parents:
        if (up / "shared" / "data").is_dir():
            return up / "shared" / "data" / "invoices"
    return ROOT.parent / "shared" / "data" / "invoices"


def bill_documents(ci: bool, folder: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """Synthetic bills written to ``folder``: ``(dataset, path, truth)``; photos are of the first bills' PDFs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bills

    n_pdf, n_photo = BILLS_CI if ci else BILLS_FULL
    out = []
    for seed in range(n_pdf):
        pdf, truth, layout = bills.bill_pdf(seed)
        path = folder / f"bill-{seed:02d}-{layout}.pdf"
        path.write_bytes(pdf)
        out.append(("bills-pdf", path, truth))
        if seed < n_photo:
            photo = folder / f"photo-{seed:02d}-{layout}.jpg"
            photo.write_bytes(bills.photo(pdf, seed))
            out.append(("bills-photo", photo, truth))
    return out


def documents(ci: bool) -> list[tuple[str, Path, dict[str, Any]]]:
    """``(dataset, path, expected)`` for every invoice."""
    base = data_dir()
    out = []
    compare = base / "invoice2data" / "compare"
    for exp in sorted(compare.glob("*.json")):
        doc = next((p for p in (exp.with_suffix(".pdf"), exp.with_suffix(".txt")) if p.exists()), None)
        if doc is not None:
            out.append(("invoice2data", doc, json.loads(exp.read_text())[0]))
    labels = json.loads((base / "parsee_invoices" / "labels_derived.json").read_text())
    for name in sorted(labels):
        out.append(("parsee", base / "parsee_invoices" / "pdf" / name, labels[name]))
    if ci:
        i2d = [d for d in out if d[0] == "invoice2data"][:3]
        parsee = [d for d in out if d[0] == "parsee"][:3]
        out = i2d + parsee
    return out


def views(rec: dict[str, Any] | None, field: str) -> dict[str, Any]:
    """The final value, and what the extractor alone and the model alone gave, for one field."""
    if rec is None or rec.get("status") != "ok":
        return {"final": None, "extractor": None, "model": None, "uncertain": False}
    res = rec["result"]
    f = res["fields"].get(field, {})
    src = f.get("source")
    value = res["record"].get(field)
    return {"final": value, "uncertain": bool(f.get("uncertain")),
            "extractor": f.get("extractor_value") if src == "disagree" else (value if src in ("agree", "extractor")
                                                                              else None),
            "model": f.get("model_value") if src in ("disagree", "rejected") else (value if src in ("agree", "model")
                                                                                    else None)}


def score(docs: list[tuple[str, Path, dict[str, Any]]], records: dict[str, dict[str, Any]],
          only_done: bool = False) -> dict[str, Any]:
    table: dict[tuple[str, str], dict[str, int]] = {}
    misses: list[str] = []
    for dataset, path, expected in docs:
        if only_done and path.name not in records:
            continue
        mapping = FIELDS[dataset]
        rec = records.get(path.name)
        for key, (field, kind) in mapping.items():
            if key not in expected or expected[key] in (None, ""):
                continue
            row = table.setdefault((dataset, key), {"n": 0, "final": 0, "extractor": 0, "model": 0,
                                                    "flagged": 0, "unflagged_wrong": 0})
            row["n"] += 1
            got = views(rec, field)
            for view in ("final", "extractor", "model"):
                row[view] += match(kind, expected[key], got[view])
            row["flagged"] += got["uncertain"]
            if not match(kind, expected[key], got["final"]):
                wrong = got["final"] is not None and not got["uncertain"]
                row["unflagged_wrong"] += wrong
                why = rec["error"]["code"] if rec and rec.get("status") == "error" else repr(got["final"])
                misses.append(f"{dataset} `{path.name}` {key}: expected {expected[key]!r}, got {why}"
                              + (" **(unflagged)**" if wrong else " (flagged)" if got["uncertain"] else ""))
    return {"table": table, "misses": misses}


def bench_config(base: Config | None) -> Config:
    """The embedded default, with generous deadlines (a loaded 2-core machine is slow)."""
    from fedinf.config import Timeouts

    cfg = base or default_config()
    slow = Timeouts(connect_s=10, read_s=900, total_s=900)
    server = cfg.server.model_copy(update={"state_dir": tempfile.mkdtemp(prefix="fedinf-extraction-eval-")})
    return cfg.model_copy(update={"models": [m.model_copy(update={"timeouts": slow}) for m in cfg.models],
                                  "server": server})


async def run_engine(cfg: Config, route: str, docs: list[Any], *, use_model: bool, work: Path | None,
                     partial: bool) -> dict[str, Any]:
    """Run one engine over ``docs`` with the batch runner. With ``work`` the JSONL is kept there, so an interrupted
    run resumes (the batch runner skips documents already done); ``partial`` scores only what is done."""
    from fedinf.gateway import Gateway

    records: dict[str, Any] = {}
    t0 = time.monotonic()
    for task in (INVOICE, UTILITY_BILL):
        mine = [d for d in docs if (d[0].startswith("bills")) == (task is UTILITY_BILL)]
        if not mine:
            continue
        spec = task.model_copy(update={"route": route, "use_model": use_model, "timeout_s": 900})
        with tempfile.TemporaryDirectory() as tmp:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", route) + f"-{task.name}-{int(use_model)}.jsonl"
            out = work / name if work else Path(tmp) / "results.jsonl"
            if not partial:
                async with Gateway.local(cfg) as gw:  # in-process, as the local operator: classified, routed, audited
                    await run_batch(TaskRunner(GatewayClient(gw)), spec, [d[1] for d in mine], out, concurrency=1)
            for line in out.read_text().splitlines() if out.exists() else []:
                rec = json.loads(line)
                records[rec["name"]] = rec
    elapsed = time.monotonic() - t0
    wanted = {d[1].name for d in docs}
    records = {k: v for k, v in records.items() if k in wanted}
    ok = [r for r in records.values() if r["status"] == "ok"]
    latencies = [r["result"]["metadata"]["latency_ms"] for r in ok]
    if latencies:  # per-document task time (resumed and partial runs count only what they did)
        elapsed = sum(latencies) / 1000
    summary: dict[str, Any] = {"errors": 0, "error_codes": {}, "disagreements": 0, "failed_checks": 0}
    for r in records.values():
        if r["status"] == "error":
            summary["errors"] += 1
            code = r["error"]["code"]
            summary["error_codes"][code] = summary["error_codes"].get(code, 0) + 1
        else:
            res = r["result"]
            summary["disagreements"] += sum(f.get("source") == "disagree" for f in res["fields"].values())
            summary["failed_checks"] += sum(not c["passed"] for c in res["checks"])
    valid = sum(1 for r in ok if r["result"]["metadata"]["schema_valid"])
    per_set = {}
    for dataset in sorted({d[0] for d in docs}):
        lat = [records[d[1].name]["result"]["metadata"]["latency_ms"] for d in docs
               if d[0] == dataset and records.get(d[1].name, {}).get("status") == "ok"]
        per_set[dataset] = round(len(lat) / (sum(lat) / 1000) * 60, 1) if lat and sum(lat) else 0.0
    return {"summary": summary, "elapsed": elapsed, "records": records, "valid": valid, "ok": len(ok),
            "docs_per_minute_by_set": per_set, "timeouts": sum(1 for r in ok if r["result"]["metadata"].get(
                "model_timeout")),
            "done": len(records), "docs_per_minute": round(len(records) / elapsed * 60, 2) if elapsed else 0.0,
            "model_calls": sum(r["result"]["metadata"]["model_calls"] for r in ok),
            "degraded": sum(1 for r in ok if any("model output rejected" in w for w in r["result"]["warnings"])),
            "rejected": sum(1 for r in ok for f in r["result"]["fields"].values() if f.get("source") == "rejected")}


def engines(args: argparse.Namespace) -> list[tuple[str, Config, str, bool]]:
    """``(label, config, route, use_model)`` to run."""
    out = [("extractors only (no model)", bench_config(None), "auto", False),
           ("embedded SmolLM2-135M-Instruct (Q4_1) + extractors", bench_config(None), "smollm2-135m", True)]
    if args.config:
        cfg = bench_config(load_config(args.config))
        for m in cfg.models:
            if args.models and m.id not in args.models.split(","):
                continue
            path = m.options.get("model_path")
            if m.backend == "local" and path and not Path(path).exists():
                print(f"skipping {m.id}: {path} not found", file=sys.stderr)
                continue
            out.append((f"{m.id} ({m.backend}) + extractors", cfg, m.id, True))
    return out


SYNTH_NOTE = (
    "generated by `bench/extraction_eval/bills.py` from a seed (reproducible, nothing read from disk): six utilities "
    "(electric, gas, water; kWh, therms, CCF, gallons), four layouts (summary box with label: value, labels above "
    "values in columns, a bordered key table, a right-hand box with values below labels), four date formats, "
    "label words drawn from vocabularies (\"Amount Due\" / \"Please Pay\" / \"Balance Due\"...), and distractors "
    "(previous balance, last payment date, meter read dates, a remittance stub repeating values). They are a "
    "regression and plausibility test of the layout search and OCR, not a substitute for real bills: the label "
    "vocabularies were not tuned on them beyond what real US bills use, but their layouts are cleaner than many "
    "real bills.")


def subsample(docs: list[Any], n: int) -> list[Any]:
    """The first ``n`` documents of each dataset, in the fixed order of ``docs``."""
    seen: dict[str, int] = {}
    out = []
    for d in docs:
        seen[d[0]] = seen.get(d[0], 0) + 1
        if seen[d[0]] <= n:
            out.append(d)
    return out


def headline(table: dict[tuple[str, str], dict[str, int]], r: dict[str, Any]) -> list[str]:
    """Per dataset: goal-field accuracy, unflagged wrong values, documents/minute."""
    out = []
    for dataset in sorted({d for d, _ in table}):
        rows = [(k, v) for (d, k), v in table.items() if d == dataset]
        goal = [v for k, v in rows if dataset == "parsee" or k in I2D_GOAL or k in BILL_CORE]
        n = sum(v["n"] for v in goal)
        ok = sum(v["final"] for v in goal)
        bad = sum(v["unflagged_wrong"] for _, v in rows)
        out.append(f"- **{dataset}**: goal fields {ok}/{n} ({100 * ok / max(1, n):.0f}%), unflagged wrong values "
                   f"(all fields) {bad}, {r['docs_per_minute_by_set'].get(dataset, 0)} documents/minute")
    return out + [""]


def report(docs: list[Any], results: list[tuple[str, dict[str, Any]]], ci: bool) -> str:
    n_i2d = sum(1 for d in docs if d[0] == "invoice2data")
    n_parsee = sum(1 for d in docs if d[0] == "parsee")
    n_bills = sum(1 for d in docs if d[0] == "bills-pdf")
    n_photos = sum(1 for d in docs if d[0] == "bills-photo")
    load = os.getloadavg()
    lines = [
        "# Extraction evaluation: the `invoice` and `utility_bill` tasks", "",
        f"Generated by `bench/extraction_eval/run.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        f"{' (CI subsample)' if ci else ''}: {n_i2d} invoice2data documents (expected JSON) and {n_parsee} parsee "
        f"documents (human-checked labels) through the `invoice` task; {n_bills} synthetic US utility bills rendered "
        f"as text PDFs and {n_photos} phone-photo-like JPEGs of them (rotated, blurred, noised; read by OCR) through "
        "the `utility_bill` task; all through the batch runner and the gateway pipeline, concurrency 1. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}), so documents/minute are pessimistic and noisy.", "",
        "Per field: **final** = the task's merged record (deterministic extractors + constrained model output, "
        "extractor preferred on disagreement, see `fedinf.tasks.merge`); **extractor** / **model** = what each side "
        "gave alone (from the per-field provenance of the same run); **flagged** = values marked `uncertain`; "
        "**unflagged wrong** = a wrong non-null value NOT marked uncertain (the number that must be 0: a reviewer "
        "trusts those). A null is a miss, never an unflagged wrong value.", "",
        "Synthetic bills: " + SYNTH_NOTE, "",
        "## Normalisation rules", "", RULES,
        "## Reading the misses", "",
        "invoice2data's expected JSON is what its per-vendor regex templates capture, not a general schema: some "
        "labels name a brand where the document names the legal seller (`Flipkart` vs `WS Retail Services Pvt. "
        "Ltd`, `OYO` vs `Oravel Stays Pvt. Ltd.`), one issuer exists only inside an image (`saeco`: \"the issuer "
        "encapsulated their company data in the image\"), `Azure Interior` is the addressee block of the Odoo sample, "
        "and `Orlen`'s invoice number `F` is a truncated capture of `F 1234K20/1234/12`. TeamGantt's PDF has no "
        "usable text layer (its fonts have no Unicode map): its page is rendered and OCR'd, which reads the total but "
        "not the issuer or the date (both returned flagged, not trusted).",
        "",
    ]
    for label, r in results:
        s = r["summary"]
        mine = r.get("docs", docs)
        partial = r["done"] < len(mine)
        lines += [f"## {label}", ""]
        if len(mine) < len(docs):
            lines += [f"**Subsample: this engine ran on the first {len(mine)} of the {len(docs)} documents "
                      "(`--model-docs`: the first documents of each set), so compare it with the extractors on "
                      "those documents (the per-field `extractor` column of this table).**", ""]
        if partial:
            lines += [f"**Partial run: {r['done']} of {len(mine)} documents finished in the time available; the "
                      "table scores those documents only.**", ""]
        lines += [f"- documents: {r['done']}; records: {r['ok']}; errors: {s['errors']} {s['error_codes'] or ''}",
                  f"- schema-valid records: {r['valid']}/{r['ok']} "
                  f"({100 * r['valid'] / max(1, r['ok']):.0f}%); model calls: {r['model_calls']}; records where "
                  f"the model output was rejected and extractors alone filled the record: {r['degraded']}; "
                  f"model-only values rejected by a failed check: {r['rejected']}",
                  f"- throughput: {r['docs_per_minute']} documents/minute overall ({r['elapsed']:.1f} s of "
                  "per-document task time, load and model start-up excluded); model calls that hit their deadline "
                  f"(record kept from the extractors, marked): {r['timeouts']}",
                  f"- fields where model and extractor disagreed: {s['disagreements']}; failed checks: "
                  f"{s['failed_checks']}", ""]
        sc = score(mine, r["records"], only_done=partial)
        lines += headline(sc["table"], r)
        lines += ["| dataset | field | n | final | extractor | model | flagged | unflagged wrong |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (dataset, key), row in sc["table"].items():
            goal = " (goal)" if (dataset == "parsee" or key in I2D_GOAL or key in BILL_CORE) else ""
            pct = {v: f"{100 * row[v] / row['n']:.0f}% ({row[v]})" for v in ("final", "extractor", "model")}
            lines.append(f"| {dataset} | {key}{goal} | {row['n']} | {pct['final']} | {pct['extractor']} | "
                         f"{pct['model']} | {row['flagged']} | {row['unflagged_wrong']} |")
        lines += ["", "<details><summary>misses (final record)</summary>", ""]
        lines += [f"- {m}" for m in sc["misses"]] or ["- none"]
        lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a fedinf config whose models are evaluated too (e.g. a bigger GGUF)")
    ap.add_argument("--models", help="comma-separated model ids of --config to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "extraction_eval.md"))
    ap.add_argument("--no-model", action="store_true", help="extractors only (fast)")
    ap.add_argument("--no-bills", action="store_true", help="invoices only (no synthetic utility bills)")
    ap.add_argument("--model-docs", type=int, default=0,
                    help="with a model, run only the first N documents of each set (a loaded machine runs the "
                         "135M model at minutes per invoice); extractors always run on all")
    ap.add_argument("--work", help="keep each engine's JSONL here (e.g. bench/.work/extraction_eval) so an "
                                   "interrupted run resumes where it stopped")
    ap.add_argument("--partial", action="store_true", help="with --work: report what is done, run nothing")
    args = ap.parse_args()
    ci = os.environ.get("CI", "").lower() == "true"
    if ci and not args.model_docs:
        args.model_docs = CI_MODEL_DOCS
    os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
    docs = documents(ci) if data_dir().is_dir() else []
    if not docs:
        print(f"no invoices under {data_dir()} (set FEDINF_DATA_DIR): synthetic bills only", file=sys.stderr)
    bill_dir = Path(tempfile.mkdtemp(prefix="fedinf-bills-"))
    if not args.no_bills:
        docs += bill_documents(ci, bill_dir)
    results = []
    for label, cfg, route, use_model in engines(args):
        if args.no_model and use_model:
            continue
        mine = subsample(docs, args.model_docs) if use_model and args.model_docs else docs
        print(f"running: {label} over {len(mine)} documents", file=sys.stderr)
        work = Path(args.work) if args.work else None
        if work:
            work.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run_engine(cfg, route, mine, use_model=use_model, work=work, partial=args.partial))
        result["docs"] = mine
        results.append((label, result))
    text = report(docs, results, ci)
    if not args.no_bills:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ocr_compare import compare, markdown

        text += "\n".join(["## OCR engines on the bill photos", "",
                           "Both engines read the same phone-photo-like JPEGs in this run; recall counts the PDF text "
                           "layer's tokens found in the OCR text. The default (`rapidocr`) was chosen on this "
                           "measurement.", "", *markdown(compare(2 if ci else 4)), ""]) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
