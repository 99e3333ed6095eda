"""The embedded SmolLM2 model through xllamacpp (in-process llama.cpp with llguidance), for the benchmarks."""

from __future__ import annotations

import os
from typing import Any


def load_server(*, n_ctx: int = 8192, threads: int | None = None) -> Any:
    """An ``xllamacpp.Server`` on the embedded SmolLM2 GGUF (quiet; ``threads`` defaults to all cores, max 4)."""
    import xllamacpp

    from fedinf.structured.tokenizers import smollm2_path

    p = xllamacpp.CommonParams()
    p.model.path = str(smollm2_path())
    p.n_ctx = n_ctx
    p.n_parallel = 1
    n = threads or min(4, os.cpu_count() or 2)
    p.cpuparams.n_threads = n
    p.cpuparams_batch.n_threads = n
    try:
        p.verbosity = -1
    except (AttributeError, TypeError):
        pass
    return xllamacpp.Server(p)


def chat(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed chat completion; raises RuntimeError on a llama.cpp error object."""
    out = server.handle_chat_completions(body)
    if not isinstance(out, dict) or "error" in out:
        raise RuntimeError(f"llama.cpp error: {str(out)[:300]}")
    return out
