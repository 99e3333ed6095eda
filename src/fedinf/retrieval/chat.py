"""The retrieval step of a chat request (runs after classify, before decide).

A request names collections in its ``fedinf`` object (``{"fedinf": {"collections": ["advisories"], "top_k": 5}}``).
:func:`retrieve_for_chat` then, in order:

1. checks the caller may read each collection (``collections`` scope; ``collection_not_allowed``);
2. searches them with the last user message as the query (the query's own class routes a remote query embedding);
3. classifies the retrieved text with the same classifier as the request, and raises the request's class to the
   highest of: its own, the retrieved documents' stored classes, the retrieved text's detected class - so
   :func:`~fedinf.routing.decide.decide` sees the class of everything the model will read (fail closed);
4. returns the request with the sources added (:func:`fedinf.retrieval.context.augment`).

A declared lower class (``fedinf.data_class`` with permission to lower) applies to the caller's own text only:
retrieved content is never lowered.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fedinf.errors import RequestError
from fedinf.protocol import ChatRequest
from fedinf.retrieval.context import Retrieved, augment


def _query(request: ChatRequest) -> str:
    for m in reversed(request.messages):
        if m.role == "user" and m.text().strip():
            return m.text()
    raise RequestError("retrieval needs a user message to search with", param="messages", code="invalid_value")


def _raise(classification: Any, retrieved_cls: Any, stored: Any) -> Any:
    level = max(classification.data_class, retrieved_cls.data_class, stored)
    if level == classification.data_class:
        return classification
    offset = 1 + max((e.source for e in classification.entities), default=-1)
    extra = tuple(replace(e, source=e.source + offset) for e in retrieved_cls.entities)
    return replace(classification, data_class=level, detected_class=max(classification.detected_class, level),
                   entities=classification.entities + extra)


async def retrieve_for_chat(rt: Any, classifier: Any, request: ChatRequest, classification: Any, principal: Any,
                            *, max_chars: int) -> tuple[ChatRequest, Any, Retrieved | None]:
    """(request with sources, raised classification, what was retrieved); unchanged when no collection is named."""
    names = list(dict.fromkeys(request.fedinf.collections or ()))
    if not names:
        return request, classification, None
    if principal is not None:
        for name in names:
            principal.check_collection(name)
    result = await rt.search(names, _query(request), k=request.fedinf.top_k, mode=request.fedinf.search_mode,
                             data_class=classification.data_class)
    retrieved_cls = classifier.classify([h.text for h in result.hits])
    raised = _raise(classification, retrieved_cls, result.data_class)
    retrieved = Retrieved(collections=tuple(names), hits=result.hits, data_class=max(result.data_class,
                                                                                     retrieved_cls.data_class))
    return augment(request, result.hits, max_chars=max_chars), raised, retrieved
