"""``POST /v1/embeddings`` in OpenAI's shape (works with the official SDK, whose default ``encoding_format`` is base64).

``model`` is ``all-MiniLM-L6-v2`` (also ``local`` or ``local:all-MiniLM-L6-v2``): the in-process model, nothing leaves
the process; or any model id / route of the network with the ``embeddings`` capability: the inputs are classified
first and only models eligible for their class are tried (:func:`fedinf.retrieval.remote.embed_remote`). Like chat,
every call is authenticated, admitted (role, route scope, rate limits) and audited (endpoint ``embeddings``).
Token-array inputs are refused (fedinf classifies text; it cannot classify token ids).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.errors import FedinfError, RequestError
from fedinf.pipeline import Trace
from fedinf.retrieval.embeddings import LOCAL_MODEL, LocalEmbedder
from fedinf.routing.decide import Decision, Target
from fedinf.server.body import read_json
from fedinf.server.errors import error_response, json_response
from fedinf.gateway import Gateway

LOCAL_NAMES = (LOCAL_MODEL, "local", f"local:{LOCAL_MODEL}", f"sentence-transformers/{LOCAL_MODEL}")
MAX_INPUTS = 2048


def parse_inputs(body: Any) -> tuple[str, list[str], str]:
    """(model, inputs, encoding_format) from an OpenAI embeddings body; RequestError on anything else."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object", code="invalid_body")
    model, raw, fmt = body.get("model"), body.get("input"), body.get("encoding_format") or "float"
    if not isinstance(model, str) or not model:
        raise RequestError("`model` is required", param="model", code="missing_field")
    if fmt not in ("float", "base64"):
        raise RequestError("`encoding_format` must be float or base64", param="encoding_format", code="invalid_value")
    if body.get("dimensions") is not None:
        raise RequestError("`dimensions` is not supported: the models answer their native size", param="dimensions",
                           code="unsupported_parameter")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("`input` must be a non-empty string or list of strings", param="input",
                           code="invalid_value")
    if not all(isinstance(t, str) for t in inputs):
        raise RequestError("`input` must be text: token arrays cannot be classified, send the text", param="input",
                           code="invalid_value")
    if len(inputs) > MAX_INPUTS:
        raise RequestError(f"at most {MAX_INPUTS} inputs per request", param="input", code="invalid_value")
    if any(not t.strip() for t in inputs):
        raise RequestError("`input` contains an empty string", param="input", code="invalid_value")
    return model, inputs, fmt


def encode(vector: list[float] | np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


class EmbeddingsAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._local: LocalEmbedder | None = None

    def local(self) -> LocalEmbedder:
        """The retrieval service's local embedder when it has one (one model in memory), else our own."""
        rt = self.gw.retrieval
        if rt is not None and isinstance(rt.embedder, LocalEmbedder):
            return rt.embedder
        if self._local is None:
            self._local = LocalEmbedder()
        return self._local

    async def embeddings(self, request: Request) -> Response:
        trace = Trace(request_id=uuid.uuid4().hex, started=time.monotonic(), endpoint="embeddings")
        try:
            trace.principal = await self.gw.authenticate(request.headers.get("authorization"))
            model, inputs, fmt = parse_inputs(await read_json(request, self.gw.config.server.max_body_bytes))
            trace.requested = model
            await self._admit(trace.principal, model, inputs)
            trace.classification = self.gw.classifier.classify(inputs)
            rows, model_id, headers = await self._embed(trace, model, inputs)
        except FedinfError as exc:
            trace.status, trace.error_code = exc.status_code, exc.code
            try:
                await self.gw.pipeline.audit(trace)
            except FedinfError as audit_exc:
                exc = audit_exc
            return error_response(exc, trace.headers())
        body = {"object": "list", "model": model_id, "usage": trace.usage,
                "data": [{"object": "embedding", "index": i, "embedding": encode(v, fmt)} for i, v in enumerate(rows)]}
        if self.gw.access is not None and trace.principal is not None:
            await self.gw.pipeline.settle(trace)
        try:
            await self.gw.pipeline.audit(trace)
        except FedinfError as exc:
            return error_response(exc, trace.headers())
        return json_response(body, 200, {**trace.headers(), **headers})

    async def _admit(self, principal: Any, model: str, inputs: list[str]) -> None:
        if self.gw.access is None or principal is None:
            return
        principal.check_infer()
        if model in self.gw.config.routes:
            principal.check_route(model)
        await self.gw.access.admit(principal, est_tokens=sum(len(t) for t in inputs) // 4 + 1)

    async def _embed(self, trace: Trace, model: str, inputs: list[str]) -> tuple[Any, str, dict[str, str]]:
        cls = trace.classification
        assert cls is not None  # classified before embedding
        if model in LOCAL_NAMES and model not in self.gw.network.models:
            principal = trace.principal
            if principal is not None:
                principal.check_class(cls.data_class)
            trace.decision = Decision(requested=model, route=None, strategy="in-process", data_class=cls.data_class,
                                      targets=(Target(LOCAL_MODEL, "in-process"),))
            vectors = await self.local().embed(inputs)
            tokens = sum(max(1, len(t) // 4) for t in inputs)
            trace.usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return vectors, LOCAL_MODEL, {"x-fedinf-model": LOCAL_MODEL, "x-fedinf-zone": "in-process"}
        from fedinf.retrieval.remote import embed_remote
        from fedinf.routing.executor import Result

        out = await embed_remote(self.gw, model, inputs, principal=trace.principal, classification=cls,
                                 request_id=trace.request_id)
        trace.decision = out.decision
        trace.result = Result(target=Target(out.model, out.zone), replica=out.replica, attempts=out.attempts)
        trace.usage = out.usage
        return out.data, out.model, {}


def routes(gateway: Gateway) -> list[Route]:
    api = EmbeddingsAPI(gateway)
    return [Route("/v1/embeddings", api.embeddings, methods=["POST"])]
