"""``/v1/advisories/*``: answers over advisories ingested in collections, and merging several sources.

    POST /v1/advisories/affected  {"collections": "advisories", "requirements": "django==3.2.1\\nrequests==2.0"}
                                  {"collections": ["a", "b"], "packages": [{"name": "django", "version": "3.2.1"}]}
    POST /v1/advisories/fixed     {"collections": "advisories", "package": "django", "version": "3.2.1"}
    POST /v1/advisories/merge     {"documents": [{"name": "nvd.txt", "text": "..."}, {"name": "x.json", "json": {...}}]}

Answers are deterministic (see :mod:`fedinf.advisories.query`), cite their sources, carry ``cited: false`` and a
note when nothing backs them, and report the highest ``data_class`` retrieved (also as ``x-fedinf-data-class``).
Like ``/v1/collections``: the key needs the ``user`` role and every named collection in its ``collections`` scope
(``collection_not_allowed``); an answer built from data above the key's ``max_class`` is refused
(``data_class_not_allowed``); each call writes one audit record (endpoint ``advisories.<verb>``, the collections,
the data class - never content). No model is called.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.advisories.query import MAX_PACKAGES, Wanted, affected, fixed_version, parse_requirements
from fedinf.data_class import DataClass
from fedinf.errors import FedinfError, RequestError
from fedinf.pipeline import Trace
from fedinf.privacy.classifier import Classification
from fedinf.server.body import read_json
from fedinf.server.errors import error_response, json_response
from fedinf.gateway import Gateway

_LIMIT = 4 * 1024 * 1024


def _collections(body: dict[str, Any]) -> list[str]:
    value = body.get("collections", body.get("collection"))
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise RequestError("`collections` must be a collection name or a non-empty list of names",
                           param="collections", code="invalid_body")
    return names


def _packages(body: dict[str, Any]) -> list[Wanted]:
    if isinstance(body.get("requirements"), str):
        return parse_requirements(body["requirements"])
    pkgs = body.get("packages")
    if not isinstance(pkgs, list) or not pkgs or len(pkgs) > MAX_PACKAGES:
        raise RequestError(f"send `requirements` (text) or `packages` (1-{MAX_PACKAGES} of {{name, version}})",
                           param="packages", code="invalid_body")
    out = []
    for i, p in enumerate(pkgs):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"].strip() \
                or not isinstance(p.get("version"), (str, type(None))):
            raise RequestError(f"packages[{i}] must be {{\"name\": str, \"version\": str or null}}",
                               param=f"packages[{i}]", code="invalid_body")
        out.append(Wanted(p["name"].strip(), p.get("version")))
    return out


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, _LIMIT)
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object", code="invalid_body")
    return body


def _documents(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    docs = body.get("documents")
    if not isinstance(docs, list) or not 1 <= len(docs) <= 100:
        raise RequestError("`documents` must be a list of 1-100 {name, text | json}", param="documents",
                           code="invalid_body")
    out = []
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or ("text" in d) == ("json" in d):
            raise RequestError(f"documents[{i}] needs exactly one of `text` or `json`", param=f"documents[{i}]",
                               code="invalid_body")
        name = str(d.get("name") or f"document-{i + 1}")
        if "text" in d:
            if not isinstance(d["text"], str):
                raise RequestError(f"documents[{i}].text must be a string", code="invalid_body")
            out.append((name if "." in name else name + ".txt", d["text"].encode()))
        else:
            out.append((name if name.endswith(".json") else name + ".json", json.dumps(d["json"]).encode()))
    return out


Work = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _run(gateway: Gateway, request: Request, verb: str, work: Work, *, scoped: bool = True) -> Response:
    """Authenticate, admit (role, collection scope), do ``work``, check the answer's class, audit, answer."""
    trace = Trace(request_id=uuid.uuid4().hex, started=time.monotonic(), endpoint=f"advisories.{verb}")
    try:
        trace.principal = principal = await gateway.authenticate(request.headers.get("authorization"))
        body = await _body(request)
        if principal is not None:
            principal.check_infer()
        if scoped:
            names = _collections(body)
            trace.requested = ",".join(names)
            for name in names:
                if principal is not None:
                    principal.check_collection(name)
        result = await work(principal, body)
        level = DataClass.parse(result.get("data_class", "public"))
        trace.classification = Classification(data_class=level, detected_class=level, entities=())
        if principal is not None:
            principal.check_class(level)
    except FedinfError as exc:
        trace.status, trace.error_code = exc.status_code, exc.code
        try:
            await gateway.pipeline.audit(trace)
        except FedinfError as audit_exc:
            exc = audit_exc
        return error_response(exc, trace.headers())
    try:
        await gateway.pipeline.audit(trace)
    except FedinfError as exc:
        return error_response(exc, trace.headers())
    return json_response(result, 200, {**trace.headers(), "x-fedinf-data-class": level.label})


def routes(gateway: Gateway) -> list[Route]:

    async def do_affected(principal: Any, body: dict[str, Any]) -> dict[str, Any]:
        return await affected(gateway.retrieval_service(), _collections(body), _packages(body))

    async def do_fixed(principal: Any, body: dict[str, Any]) -> dict[str, Any]:
        package, version = body.get("package"), body.get("version")
        if not isinstance(package, str) or not package.strip() or not isinstance(version, (str, type(None))):
            raise RequestError("`package` (string) is required; `version` is an optional string",
                               param="package", code="invalid_body")
        return await fixed_version(gateway.retrieval_service(), _collections(body), package.strip(), version=version)

    async def do_merge(principal: Any, body: dict[str, Any]) -> dict[str, Any]:
        from fedinf.advisories.extract import now_timestamp
        from fedinf.advisories.ingest import merge_files

        merged = await merge_files(_documents(body), modified=now_timestamp())
        level = gateway.classifier.classify([json.dumps(m["osv"]) for m in merged]).data_class if merged \
            else DataClass.PUBLIC
        return {"object": "list", "data": merged, "data_class": level.label}

    async def post_affected(request: Request) -> Response:
        return await _run(gateway, request, "affected", do_affected)

    async def post_fixed(request: Request) -> Response:
        return await _run(gateway, request, "fixed", do_fixed)

    async def post_merge(request: Request) -> Response:
        return await _run(gateway, request, "merge", do_merge, scoped=False)

    return [Route("/v1/advisories/affected", post_affected, methods=["POST"]),
            Route("/v1/advisories/fixed", post_fixed, methods=["POST"]),
            Route("/v1/advisories/merge", post_merge, methods=["POST"])]
