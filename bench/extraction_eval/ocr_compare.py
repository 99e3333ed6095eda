"""OCR engines side by side on the synthetic bill photos: word recall against the PDF's own text layer, and seconds
per page. Every engine of ``fedinf.documents.ocr.OCR_ENGINES`` that is installed runs on the same images in the same
process (engines skipped when missing are named in the report).

    python bench/extraction_eval/ocr_compare.py [N]      # the first N photos (default 4)
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_TOKEN = re.compile(r"[A-Za-z0-9$.,/:#&'-]+")


def recall(reference: str, hypothesis: str) -> tuple[int, int]:
    """Reference tokens found in the OCR text (multiset), and the reference token count."""
    ref = Counter(_TOKEN.findall(reference))
    hyp = Counter(_TOKEN.findall(hypothesis))
    return sum((ref & hyp).values()), sum(ref.values())


def compare(n: int) -> list[dict[str, Any]]:
    import bills
    from PIL import Image

    from fedinf.documents import load_bytes
    from fedinf.documents.ocr import OCR_ENGINES, make_engine, ocr_page

    samples = []
    for seed in range(n):
        pdf, _, layout = bills.bill_pdf(seed)
        reference = load_bytes(pdf, name="b.pdf").text
        samples.append((reference, bills.photo(pdf, seed)))
    rows = []
    for name in OCR_ENGINES:
        engine = make_engine(name)
        found = total = 0
        seconds = 0.0
        try:
            import io

            engine.words(Image.new("RGB", (64, 64), "white"))  # load the models outside the timing
            for reference, jpeg in samples:
                t0 = time.perf_counter()
                text = ocr_page(engine, Image.open(io.BytesIO(jpeg)), number=1).text
                seconds += time.perf_counter() - t0
                f, t = recall(reference, text)
                found, total = found + f, total + t
        except Exception as exc:  # noqa: BLE001 - an engine that is not installed is reported, not fatal
            rows.append({"engine": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append({"engine": name, "pages": len(samples), "recall": found / max(1, total),
                     "s_per_page": seconds / max(1, len(samples))})
    return rows


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| OCR engine | photos | word recall vs the PDF text | seconds/page |", "| --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['engine']} | - | not run ({r['error'][:80]}) | - |")
        else:
            out.append(f"| {r['engine']} | {r['pages']} | {r['recall']:.3f} | {r['s_per_page']:.1f} |")
    return out


if __name__ == "__main__":
    print("\n".join(markdown(compare(int(sys.argv[1]) if len(sys.argv) > 1 else 4))))
