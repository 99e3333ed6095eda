"""The model as a bounded second opinion: which fields it is asked about, and the part of the document it reads.

With ``model_input: snippets`` (the built-in tasks), the model is asked only about the fields the extractors did not
settle - no value, or a value below the task's ``flag_below`` - plus fields no extractor covers (line items), through
a schema holding just those properties. It reads the extractors' candidates and the page lines around them and around
the document's head, not the whole document: a few hundred tokens instead of thousands, so a small local model
answers within its deadline and has less room to wander (arrays are capped by the schema's ``maxItems``). When every
field is settled, no model call is made at all.
"""

from __future__ import annotations

from typing import Any

from fedinf.documents import Document
from fedinf.extractors.base import Found
from fedinf.tasks.spec import TaskSpec

HEAD_LINES = 8  # the top of page 1: provider, addressee, summary box
AROUND = 1  # lines of context above and below each candidate
MAX_CHARS = 2400  # cap on the snippet text (~600 tokens)


def model_scope(spec: TaskSpec, found: dict[str, Found]) -> list[str]:
    """The properties the model is asked about: unruled ones, and ruled ones the extractors did not settle."""
    out = []
    for name in spec.property_names():
        rule = spec.fields.get(name)
        hit = found.get(name)
        if rule is None or rule.extractor is None or hit is None or hit.score < spec.flag_below:
            out.append(name)
    return out


def sub_schema(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``schema`` restricted to ``names`` (all required, so the model writes each key, null when absent)."""
    out = {k: v for k, v in schema.items() if k not in ("properties", "required")}
    out["properties"] = {k: schema["properties"][k] for k in names}
    out["required"] = list(names)
    return out


def snippets(doc: Document, found: dict[str, Found], *, max_chars: int = MAX_CHARS) -> str:
    """The head of page 1 and the lines around every extractor candidate, in document order, gaps marked ``...``."""
    lines = doc.text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    keep = set(range(min(HEAD_LINES, len(lines))))
    for hit in found.values():
        i = _line_of(starts, hit.span.start)
        keep.update(range(max(0, i - AROUND), min(len(lines), i + AROUND + 1)))
    out: list[str] = []
    prev = -1
    size = 0
    for i in sorted(keep):
        text = lines[i].strip("\f")
        if not text.strip():
            continue
        if prev >= 0 and i > prev + 1:
            out.append("...")
        if size + len(text) > max_chars:
            break
        out.append(text)
        size += len(text) + 1
        prev = i
    return "\n".join(out)


def _line_of(starts: list[int], offset: int) -> int:
    import bisect

    return max(0, bisect.bisect_right(starts, offset) - 1)


def candidates_note(found: dict[str, Found], scope: list[str]) -> str:
    """What the extractors proposed for the fields in scope (to confirm or correct); empty when nothing."""
    rows = [f"- {name}: {found[name].raw!r} (unsure)" for name in scope if name in found]
    return ("Values found so far, possibly wrong:\n" + "\n".join(rows) + "\n\n") if rows else ""
