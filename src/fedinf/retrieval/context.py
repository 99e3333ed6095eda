"""Retrieval-augmented chat: the retrieved chunks as a prompt, and the answer's citations.

:func:`augment` puts the hits into the request as one system message placed right before the last user message::

    Answer from the numbered sources below. Cite every fact with its source number in square brackets, e.g. [1].
    If the sources do not contain the answer, say that they do not.

    [1] advisories / PYSEC-2018-104.yaml (chunk 0)
    ...chunk text...

Sources are cut to ``max_chars`` in total (whole chunks first, the last one truncated). :func:`citations` reads the
answer's ``[n]`` markers and returns the cited sources (collection, document, chunk, offsets, page, class); an answer
citing nothing is marked ``cited: false`` (also when nothing was retrieved), so a client can tell a grounded answer
from an unsupported one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fedinf.protocol import ChatRequest, Message
from fedinf.retrieval.model import Hit

INSTRUCTION = ("Answer from the numbered sources below. Cite every fact with its source number in square brackets, "
               "e.g. [1]. If the sources do not contain the answer, say that they do not.")
NO_SOURCES = "No source in the searched collections matched this question; say that you could not find it in them."
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")


@dataclass(frozen=True)
class Retrieved:
    """What a chat request retrieved: the collections searched, the hits (numbered from 1) and their class."""

    collections: tuple[str, ...]
    hits: tuple[Hit, ...]
    data_class: Any

    def sources(self) -> list[dict[str, Any]]:
        return [h.citation(i) for i, h in enumerate(self.hits, 1)]


def context_text(hits: Sequence[Hit], *, max_chars: int) -> str:
    if not hits:
        return NO_SOURCES
    parts, used = [INSTRUCTION, ""], 0
    for i, h in enumerate(hits, 1):
        head = f"[{i}] {h.collection} / {h.document_name} (chunk {h.chunk})"
        room = max_chars - used - len(head)
        if room <= 40:
            break
        body = h.text if len(h.text) <= room else h.text[:room].rstrip() + " ..."
        parts += [head, body, ""]
        used += len(head) + len(body)
    return "\n".join(parts).strip()


def augment(request: ChatRequest, hits: Sequence[Hit], *, max_chars: int) -> ChatRequest:
    """A copy of ``request`` with the sources as a system message before the last user message."""
    messages = list(request.messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    messages.insert(last_user, Message(role="system", content=context_text(hits, max_chars=max_chars)))
    return request.model_copy(update={"messages": messages})


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers cited in ``answer`` (``[2]``, ``[1, 3]``), in order of first mention, within range."""
    out: list[int] = []
    for m in _MARKER.finditer(answer or ""):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(part)
            if 1 <= n <= n_sources and n not in out:
                out.append(n)
    return out


def citations(answer: str, retrieved: Retrieved) -> dict[str, Any]:
    """The ``fedinf`` fields of an answer: ``citations`` (cited sources), ``sources`` (all retrieved), ``cited``."""
    numbers = cited_numbers(answer, len(retrieved.hits))
    sources = retrieved.sources()
    return {"collections": list(retrieved.collections), "citations": [sources[n - 1] for n in numbers],
            "sources": sources, "cited": bool(numbers), "retrieved_class": retrieved.data_class.label}
