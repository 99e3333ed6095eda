"""Precision on public technical text: the PyPA advisory ``details`` texts, classified as a request would be.

Every text is public (CC-BY-4.0 vulnerability descriptions): any classification above ``internal`` is a false
positive that would keep public text from cloud zones. Reads ``$FEDINF_DATA_DIR/advisories/pypa_advisory_database/
vulns/<package>/PYSEC-*.yaml`` (default ``../shared/data``), the ``details`` field only.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def advisory_dir() -> Path:
    base = Path(os.environ.get("FEDINF_DATA_DIR", ROOT.parent / "shared" / "data"))
    return base / "advisories" / "pypa_advisory_database" / "vulns"


def load_details(every: int = 1) -> list[tuple[str, str]]:
    """``(advisory id, details text)`` for every advisory with details, in path order; ``every``: take every n-th."""
    import yaml

    out = []
    for path in sorted(advisory_dir().glob("*/PYSEC-*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        text = doc.get("details")
        if isinstance(text, str) and text.strip():
            out.append((str(doc.get("id") or path.stem), text))
    return out[::every]


def load_go() -> list[tuple[str, str]]:
    """``(id, summary + details)`` of the Go vulnerability database sample (``golang_vulndb/osv``, 300 records)."""
    import json

    out = []
    for path in sorted((advisory_dir().parents[1] / "golang_vulndb" / "osv").glob("GO-*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        text = " ".join(x for x in (doc.get("summary"), doc.get("details")) if isinstance(x, str) and x.strip())
        if text:
            out.append((str(doc.get("id") or path.stem), text))
    return out


@dataclass
class FalsePositives:
    total: int
    # (advisory id, class, entity type -> count, a snippet around the first entity that raised the class)
    flagged: list[tuple[str, str, dict[str, int], str]] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.flagged) / self.total if self.total else 0.0


def false_positives(classifier: Any, texts: list[tuple[str, str]]) -> FalsePositives:
    """Share of texts the classifier puts above ``internal``, with the entity types that raised them."""
    from fedinf.data_class import DataClass

    fp = FalsePositives(total=len(texts))
    t0 = time.perf_counter()
    for ident, text in texts:
        c = classifier.classify([text])
        if c.data_class > DataClass.INTERNAL:
            high = [e for e in c.entities if e.score >= classifier.class_min_score
                    and classifier.class_of(e.type) > DataClass.INTERNAL]
            counts = Counter(e.type for e in high)
            e = high[0] if high else c.entities[0]
            snippet = " ".join(text[max(0, e.start - 40):e.end + 30].split())
            fp.flagged.append((ident, c.data_class.label, dict(counts), snippet))
            fp.by_type.update(counts.keys())
    fp.seconds = time.perf_counter() - t0
    return fp
