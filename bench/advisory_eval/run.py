"""Advisory evaluation: advisory prose -> OSV record, against curated OSV records.

    python bench/advisory_eval/run.py                # full: every PyPA and Go record; model on 40 + 20
    CI=true python bench/advisory_eval/run.py        # CI: fixed subsample (seed 12) of 300 PyPA + 100 Go; model on 4
    python bench/advisory_eval/run.py --model-n 0    # extractors only

Data (read in place, never copied): ``$FEDINF_DATA_DIR/advisories`` (default ``../shared/data``):

- ``pypa_advisory_database/vulns/*/PYSEC-*.yaml``: input = the record's ``details`` text; truth = the record.
- ``golang_vulndb``: input = the report's summary, description, CVE description and reference URLs (what a human
  reads on an advisory page); truth = the OSV JSON generated from that report. Also the report YAML itself as input
  (the deterministic converter).
- ``osv_schema_testdata/ghsa_api_to_osv_pairs``: GitHub advisory API JSON -> the OSV of osv-schema's converter.
- Follow-up Q&A: PyPA records ingested into a collection, "is PACKAGE==VERSION affected?" answered through retrieval.

Modes: *extractors* (the ``advisory`` task with ``use_model: false`` on the text alone), *extractors + ecosystem
hint* (the same text sent as JSON ``{"details", "ecosystem"}``, as a caller feeding one ecosystem's feed would), and
*extractors + embedded model* (SmolLM2-135M through the real gateway pipeline, on a subsample: it writes only the
prose fields, so the structured metrics match the extractor modes by construction; the table reports grounded /
rejected prose instead).

Matching rules: package names compared after the ecosystem's normalisation (PEP 503 for PyPI); versions compared
as versions (PEP 440 where both parse: ``1.11`` equals ``1.11.0``); *fixed versions* = the set of ``fixed`` events of
the ECOSYSTEM/SEMVER ranges (both empty counts as a match); *ranges* = the set of intervals (introduced, fixed or
last_affected) of those ranges; GIT ranges and ``versions`` lists are not scored (commit hashes are not in the
prose). OSV validity is checked against fedinf's schema and, when present, the official ``osv_schema.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from fedinf.advisories.packages import normalize_name  # noqa: E402
from fedinf.advisories.schema import osv_errors  # noqa: E402
from fedinf.advisories.versions import VersionKey, intervals_of  # noqa: E402
from fedinf.tasks import TaskRunner  # noqa: E402
from fedinf.tasks.builtin import ADVISORY  # noqa: E402

MODIFIED = "2026-01-01T00:00:00Z"


def data_dir() -> Path:
    if os.environ.get("FEDINF_DATA_DIR"):
        return Path(os.environ["FEDINF_DATA_DIR"]) / "advisories"
    for up in ROOT.parents:
        if (up / "shared" / "data").is_dir():
            return up / "shared" / "data" / "advisories"
    return ROOT.parent / "shared" / "data" / "advisories"


def pypa_cases(base: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((base / "pypa_advisory_database" / "vulns").glob("*/*.yaml")):
        rec = yaml.safe_load(f.read_text(encoding="utf-8"))
        if rec.get("details") and rec.get("affected"):
            out.append({"id": rec["id"], "text": rec["details"], "truth": rec, "ecosystem": "PyPI"})
    return out


def go_cases(base: Path, *, report_yaml: bool = False) -> list[dict[str, Any]]:
    out = []
    for f in sorted((base / "golang_vulndb" / "reports").glob("GO-*.yaml")):
        rep = yaml.safe_load(f.read_text(encoding="utf-8"))
        osv_path = base / "golang_vulndb" / "osv" / (f.stem + ".json")
        if not osv_path.exists():
            continue
        truth = json.loads(osv_path.read_text(encoding="utf-8"))
        parts = [rep.get("summary") or "", rep.get("description") or "",
                 (rep.get("cve_metadata") or {}).get("description") or ""]
        refs = [u for r in rep.get("references") or [] for u in r.values()]
        text = "\n\n".join(p.strip() for p in parts if p and p.strip())
        if refs:
            text += "\n\nReferences:\n" + "\n".join(refs)
        if report_yaml:
            text = f.read_text(encoding="utf-8")
        if truth.get("affected"):
            out.append({"id": truth["id"], "text": text, "truth": truth, "ecosystem": "Go"})
    return out


def ghsa_cases(base: Path) -> list[dict[str, Any]]:
    """GitHub advisory API JSON -> the OSV that osv-schema's converter produced (11 pairs)."""
    out = []
    for f in sorted((base / "osv_schema_testdata" / "ghsa_api_to_osv_pairs").glob("*.json")):
        if f.name.endswith(".osv.json"):
            continue
        truth = json.loads(f.with_name(f.stem + ".osv.json").read_text(encoding="utf-8"))
        if truth.get("affected"):
            out.append({"id": truth["id"], "text": f.read_text(encoding="utf-8"), "truth": truth,
                        "ecosystem": truth["affected"][0]["package"]["ecosystem"], "name_suffix": ".json"})
    return out


def _intervals(affected: dict[str, Any]) -> set[tuple[Any, ...]]:
    out = set()
    for rng in affected.get("ranges") or []:
        if rng.get("type") == "GIT":
            continue
        for iv in intervals_of(rng.get("events") or []):
            out.add((VersionKey(iv.introduced) if iv.introduced != "0" else VersionKey("0"),
                     "fixed" if iv.fixed else "last" if iv.last_affected else "open",
                     VersionKey(iv.upper) if iv.upper else None))
    return out


def _fixed(affected: dict[str, Any]) -> set[VersionKey]:
    return {VersionKey(e["fixed"]) for r in affected.get("ranges") or [] if r.get("type") != "GIT"
            for e in r.get("events") or [] if "fixed" in e}


def score_one(case: dict[str, Any], result: dict[str, Any], official: Any) -> dict[str, bool]:
    truth = case["truth"]
    t_aff = truth["affected"][0]
    eco = t_aff["package"]["ecosystem"]
    osv = result["record"]["osv"]
    got = (osv.get("affected") or [{}])[0]
    gpkg = got.get("package") or {}
    name_field = (result["fields"].get("package") or {}).get("value")
    tname = normalize_name(t_aff["package"]["name"], eco)
    t_ids = {truth["id"], *(truth.get("aliases") or [])}
    g_ids = {osv["id"], *(osv.get("aliases") or [])}
    return {
        "package": bool(gpkg) and normalize_name(gpkg.get("name", ""), eco) == tname,
        "package_found": bool(name_field) and normalize_name(str(name_field), eco) == tname,
        "ecosystem": gpkg.get("ecosystem") == eco,
        "fixed": _fixed(got) == _fixed(t_aff),
        "ranges": _intervals(got) == _intervals(t_aff),
        "osv_valid": not osv_errors(osv),
        "osv_valid_official": official is None or official.is_valid(osv),
        "cve_alias": not any(i.startswith("CVE-") for i in t_ids) or bool({i for i in t_ids if i.startswith("CVE-")}
                                                                          & g_ids),
    }


async def run_mode(cases: list[dict[str, Any]], *, hint: bool, runner: TaskRunner, use_model: bool,
                   official: Any) -> dict[str, Any]:
    spec = ADVISORY.model_copy(update={"use_model": use_model, "route": "smollm2-135m" if use_model else "auto",
                                       "timeout_s": 900})
    totals: Counter[str] = Counter()
    prose: Counter[str] = Counter()
    times: list[float] = []
    for case in cases:
        if hint:
            data = json.dumps({"details": case["text"], "ecosystem": case["ecosystem"]}).encode()
            name = case["id"] + ".json"
        else:
            data, name = case["text"].encode(), case["id"] + case.get("name_suffix", ".txt")
        t0 = time.perf_counter()
        try:
            res = (await runner.run_bytes(spec, data, name=name)).to_dict()
        except Exception as exc:  # noqa: BLE001 - an evaluation counts failures, it does not stop on them
            totals["errors"] += 1
            totals["error:" + type(exc).__name__] += 1
            continue
        times.append(time.perf_counter() - t0)
        res["record"]["osv"]["modified"] = res["record"]["osv"].get("modified", MODIFIED)
        for k, ok in score_one(case, res, official).items():
            totals[k] += ok
        for k in ("remediation.summary", "remediation.workaround", "remediation.impact"):
            prose[f"{k.split('.')[1]}:{res['fields'].get(k, {}).get('source', 'none')}"] += 1
        totals["model_calls"] += res["metadata"]["model_calls"]
    return {"n": len(cases), "totals": dict(totals), "prose": dict(prose), "seconds": sum(times)}


async def qa_eval(cases: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Ingest ``n`` truth records into a fresh collection (SQLite, hashing embedder) and ask, for each, whether a
    version inside its range and its first fixed version are affected; the expected answer is computed directly from
    the ingested records with the same version logic, so this measures the retrieval + parsing path."""
    from fedinf.advisories.ingest import ingest
    from fedinf.advisories.query import Wanted, affected
    from fedinf.advisories.versions import affected_by
    from fedinf.privacy import Classifier
    from fedinf.retrieval import HashingEmbedder, Retrieval
    from fedinf.retrieval.store import open_store

    sample = random.Random(3).sample(cases, min(n, len(cases)))
    with tempfile.TemporaryDirectory() as tmp:
        rt = Retrieval(store=open_store(f"sqlite:///{tmp}/rt.db"), embedder=HashingEmbedder(),
                       classifier=Classifier.from_config())
        t0 = time.perf_counter()
        await ingest(rt, "adv", [(c["id"] + ".json", json.dumps(c["truth"], default=str).encode()) for c in sample])
        ingest_s = time.perf_counter() - t0
        by_pkg: dict[str, list[dict[str, Any]]] = {}
        for c in sample:
            aff = c["truth"]["affected"][0]
            by_pkg.setdefault(normalize_name(aff["package"]["name"], "PyPI"), []).append(c["truth"])
        totals: Counter[str] = Counter()
        ask_s = 0.0
        for c in sample:
            aff = c["truth"]["affected"][0]
            name = aff["package"]["name"]
            fixed = sorted(_fixed(aff))
            versions = aff.get("versions") or []
            probes = ([versions[len(versions) // 2]] if versions else []) + ([fixed[0].raw] if fixed else [])
            for v in probes:
                expect = {r["id"] for r in by_pkg[normalize_name(name, "PyPI")]
                          if any(affected_by(v, a) for a in r.get("affected") or []
                                 if normalize_name(a["package"]["name"], "PyPI") == normalize_name(name, "PyPI"))}
                t1 = time.perf_counter()
                ans = (await affected(rt, "adv", [Wanted(name, v)]))["answers"][0]
                ask_s += time.perf_counter() - t1
                got = {a["id"] for a in ans["advisories"]} if ans["status"] == "affected" else set()
                totals["questions"] += 1
                totals["status"] += (ans["status"] == "affected") == bool(expect)
                totals["ids"] += got == expect
                totals["cited"] += (not expect) or all(a.get("citation") for a in ans["advisories"])
        await rt.aclose()
    return {"records": len(sample), "totals": dict(totals), "ingest_s": ingest_s, "ask_s": ask_s}


def classes(cases: list[dict[str, Any]]) -> Counter[str]:
    """The data class the gateway's default classifier gives each advisory text (public text should stay public)."""
    from fedinf.config import default_config
    from fedinf.privacy import Classifier

    clf = Classifier.from_config(default_config().governance)
    out: Counter[str] = Counter()
    for c in cases:
        out[clf.classify([c["text"]]).data_class.label] += 1
    return out


def _pct(x: int, n: int) -> str:
    return f"{100 * x / n:.1f}% ({x}/{n})" if n else "-"


def report(sets: list[tuple[str, list[dict[str, Any]], dict[str, dict[str, Any]], Counter[str]]],
           ci: bool, official_found: bool) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# advisory_eval ({'CI subsample' if ci else 'full'}), {when}", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared). Produced by "
             "`bench/advisory_eval/run.py`; method and matching rules in its docstring.",
             f"Official OSV schema checked: {'yes' if official_found else 'no (file not found)'}.", ""]
    metrics = [("package (in the OSV record)", "package"), ("package name found (any ecosystem)", "package_found"),
               ("ecosystem", "ecosystem"), ("fixed versions (set, exact)", "fixed"),
               ("ranges (intervals, exact)", "ranges"), ("CVE id kept as id/alias", "cve_alias"),
               ("OSV valid (fedinf schema)", "osv_valid"), ("OSV valid (official schema)", "osv_valid_official")]
    for title, cases, modes, cls in sets:
        lines += [f"## {title}: {len(cases)} records", ""]
        names = list(modes)
        lines += ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for label, key in metrics:
            lines.append(f"| {label} | " + " | ".join(_pct(modes[m]["totals"].get(key, 0), modes[m]["n"])
                                                     for m in names) + " |")
        lines.append("| errors | " + " | ".join(str(modes[m]["totals"].get("errors", 0)) for m in names) + " |")
        lines.append("| ms per record | " + " | ".join(
            f"{1000 * modes[m]['seconds'] / max(1, modes[m]['n']):.1f}" for m in names) + " |")
        for m in names:
            if modes[m]["prose"] and modes[m]["totals"].get("model_calls"):
                lines += ["", f"Prose provenance with the model ({m}): "
                          + ", ".join(f"{k} {v}" for k, v in sorted(modes[m]["prose"].items()))]
        if cls:
            lines += ["", "Data class the default classifier gives these texts: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(cls.items()))]
        lines.append("")
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> str:
    from fedinf.config import default_config
    from fedinf.gateway import Gateway

    base = data_dir()
    official_path = base / "osv_schema_testdata" / "osv_schema.json"
    official = (jsonschema_rs.Draft202012Validator(json.loads(official_path.read_text()), validate_formats=True)
                if official_path.exists() else None)
    ci = os.environ.get("CI") == "true"
    rng = random.Random(12)
    pypa, go, go_yaml, ghsa = pypa_cases(base), go_cases(base), go_cases(base, report_yaml=True), ghsa_cases(base)
    if ci:
        pypa, go = rng.sample(pypa, min(300, len(pypa))), rng.sample(go, min(100, len(go)))
        keep = {c["id"] for c in go}
        go_yaml = [c for c in go_yaml if c["id"] in keep]
    model_n = args.model_n if args.model_n is not None else (4 if ci else 40)
    sets = []

    class NoModel:
        async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("no model in this mode")

    plain = TaskRunner(NoModel())
    cfg = None
    if model_n:
        from bench.extraction_eval.run import bench_config  # the same generous deadlines as the extraction eval

        cfg = bench_config(default_config())
    for title, cases in (("PyPA advisory database (PYSEC, details text)", pypa),
                         ("Go vulndb (report prose: summary, description, CVE text, URLs -> OSV)", go),
                         ("Go vulndb (report YAML -> OSV)", go_yaml),
                         ("GitHub advisory API JSON -> OSV (osv-schema's GHSA converter test pairs)", ghsa)):
        structured = "YAML" in title or "GHSA" in title
        modes = {"extractors": await run_mode(cases, hint=False, runner=plain, use_model=False, official=official)}
        if not structured:
            modes["extractors + ecosystem hint"] = await run_mode(cases, hint=True, runner=plain, use_model=False,
                                                                  official=official)
        sub = random.Random(7).sample(cases, min(model_n if "PyPA" in title else max(1, model_n // 2), len(cases)))
        if model_n and cfg is not None and not structured:
            from fedinf.tasks import GatewayClient

            async with Gateway.local(cfg) as gw:
                runner = TaskRunner(GatewayClient(gw))
                modes[f"extractors only, same {len(sub)}"] = await run_mode(
                    sub, hint=False, runner=plain, use_model=False, official=official)
                modes[f"+ embedded model, {len(sub)}"] = await run_mode(
                    sub, hint=False, runner=runner, use_model=True, official=official)
        cls = classes(cases[:200]) if not structured else Counter()
        sets.append((title, cases, modes, cls))
    qa = await qa_eval(pypa, 100 if ci else 600)
    text = report(sets, ci, official is not None)
    t, q = qa["totals"], max(1, qa["totals"].get("questions", 0))
    text += "\n".join([
        "", f"## Follow-up Q&A: 'is PACKAGE==VERSION affected?' over {qa['records']} ingested PyPA records", "",
        "A version inside each record's range and its first fixed version are asked through "
        "`fedinf.advisories.query.affected` (retrieval search + parsing of the rendered records + `packaging`); the "
        "expected answer is computed directly from the same records.", "",
        "| metric | value |", "|---|---|",
        f"| affected / not affected correct | {_pct(t.get('status', 0), q)} |",
        f"| exact set of advisory ids | {_pct(t.get('ids', 0), q)} |",
        f"| affected answers with a citation per advisory | {_pct(t.get('cited', 0), q)} |",
        f"| ingest | {qa['ingest_s']:.1f} s ({1000 * qa['ingest_s'] / max(1, qa['records']):.0f} ms per record) |",
        f"| ms per question | {1000 * qa['ask_s'] / q:.1f} |", ""])
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-n", type=int, default=None, help="records run with the model (0: none)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "advisory_eval.md"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    text = asyncio.run(amain(args))
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
