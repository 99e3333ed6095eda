"""OCR: images (PNG, JPEG, TIFF, BMP, WebP) and image-only PDF pages to words with boxes, offline.

An :class:`OcrEngine` turns one RGB image into :class:`~fedinf.documents.layout.Word` s (pixel boxes, per-word
confidence); :func:`~fedinf.documents.layout.assemble` makes lines and page text of them, so OCR'd pages feed the same
layout-aware extraction as PDF text. Engines (``OCR_ENGINES``; adding one = one class + one entry):

- ``rapidocr`` (default): PP-OCR detection + recognition models run by onnxruntime, from the ``rapidocr`` wheel that
  ships its ONNX models (Apache-2.0; ``pip install 'fedinf[ocr]'``, installed by ``make``). Chosen by measurement on
  rendered and photographed bills (bench/results/extraction_eval.md): better word recall than Tesseract on photos.
- ``tesseract``: the Debian ``tesseract-ocr`` binary (Apache-2.0) through its TSV output, when installed.

Engines load their models on first use (about a second) and are kept by whoever owns them (a
:class:`~fedinf.tasks.TaskRunner` holds one per engine name); calls are serialised per engine with a lock (the
session is CPU-bound anyway, and onnxruntime already uses the cores).
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import threading
from typing import Any, Protocol

from fedinf.documents.layout import PageLayout, Word, assemble
from fedinf.errors import ConfigError, InvalidDocument

MAX_SIDE = 2400  # larger images are scaled down first (phone photos are 3000-4000 px; text stays legible)
MIN_SIDE = 900  # smaller ones are scaled up (tiny screenshots)


class OcrEngine(Protocol):
    name: str

    def words(self, image: Any) -> list[Word]:
        """Words with pixel boxes (top-left origin) and confidences in [0, 1] for one RGB PIL image."""
        ...


class RapidOcrEngine:
    """PP-OCR through the ``rapidocr`` package (models inside the wheel; nothing is downloaded)."""

    name = "rapidocr"

    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError:
                raise ConfigError("OCR needs the rapidocr package: pip install 'fedinf[ocr]' (or set the task's "
                                  "ocr: off)") from None
            import logging

            self._engine = RapidOCR(params={"Global.log_level": "error"})
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._engine

    def words(self, image: Any) -> list[Word]:
        import numpy as np

        with self._lock:
            engine = self._load()
            result = engine(np.asarray(image)[:, :, ::-1], return_word_box=True)  # it expects BGR like OpenCV
        quads = [(str(item[0]), float(item[1]), item[2]) for line in getattr(result, "word_results", None) or ()
                 if isinstance(line, (list, tuple)) for item in line
                 if isinstance(item, (list, tuple)) and len(item) == 3 and item[2] is not None
                 and str(item[0]).strip()]
        return deskew(quads, getattr(result, "boxes", None))


class TesseractEngine:
    """The ``tesseract`` binary (Debian ``tesseract-ocr``), words from its TSV output."""

    name = "tesseract"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def words(self, image: Any) -> list[Word]:
        exe = shutil.which("tesseract")
        if exe is None:
            raise ConfigError("OCR engine tesseract is not installed (apt-get install tesseract-ocr)")
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        proc = subprocess.run([exe, "stdin", "stdout", "--psm", "3", "tsv"], input=buf.getvalue(),
                              capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise InvalidDocument("OCR (tesseract) could not read the image")
        out: list[Word] = []
        for row in proc.stdout.decode("utf-8", "replace").splitlines()[1:]:
            f = row.split("\t")
            if len(f) == 12 and f[11].strip() and float(f[10]) >= 0:
                x, y, w, h = (float(v) for v in f[6:10])
                out.append(Word(f[11].strip(), x, y, x + w, y + h, float(f[10]) / 100))
        return out


def deskew(quads: list[tuple[str, float, Any]], line_boxes: Any) -> list[Word]:
    """Axis-aligned words from rotated quadrilaterals: the page's skew is the median angle of the text-line boxes;
    each word's centre is rotated back by it, and its box is rebuilt from its own width and height. A photo taken
    two degrees off would otherwise shift a line by more than its height across the page."""
    angles = []
    for q in line_boxes if line_boxes is not None else ():
        (x0, y0), (x1, y1) = q[0], q[1]
        if x1 - x0 > 20:
            angles.append(math.atan2(y1 - y0, x1 - x0))
    theta = sorted(angles)[len(angles) // 2] if angles else 0.0
    cos, sin = math.cos(-theta), math.sin(-theta)
    out = []
    for text, score, q in quads:
        cx = sum(p[0] for p in q) / 4
        cy = sum(p[1] for p in q) / 4
        w = math.dist(q[0], q[1])
        h = math.dist(q[1], q[2])
        rx, ry = cx * cos - cy * sin, cx * sin + cy * cos
        out.append(Word(text, rx - w / 2, ry - h / 2, rx + w / 2, ry + h / 2, score))
    return out


OCR_ENGINES: dict[str, type[RapidOcrEngine] | type[TesseractEngine]] = {
    "rapidocr": RapidOcrEngine, "tesseract": TesseractEngine,
}


def make_engine(name: str) -> OcrEngine:
    try:
        return OCR_ENGINES[name]()
    except KeyError:
        raise ConfigError(f"unknown OCR engine {name!r}; known: {', '.join(sorted(OCR_ENGINES))}") from None


def prepare(image: Any) -> Any:
    """RGB, EXIF orientation applied, scaled into [MIN_SIDE, MAX_SIDE] on the long side."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(image).convert("RGB")
    side = max(img.size)
    if side > MAX_SIDE or side < MIN_SIDE:
        f = (MAX_SIDE if side > MAX_SIDE else MIN_SIDE) / side
        img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))))
    return img


def ocr_page(engine: OcrEngine, image: Any, *, number: int) -> PageLayout:
    """One image -> one page layout (words in pixel units of the prepared image)."""
    img = prepare(image)
    return assemble(engine.words(img), number=number, width=float(img.width), height=float(img.height),
                    source="ocr")
