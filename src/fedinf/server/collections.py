"""``/v1/collections``: retrieval collections over HTTP (see docs/retrieval.md).

    GET    /v1/collections                                  list (those in the key's collection scope)
    POST   /v1/collections                                  create {name, data_class?, description?}
    GET    /v1/collections/{name}                           one collection
    DELETE /v1/collections/{name}                           delete it with its documents
    GET    /v1/collections/{name}/documents?limit=&after=   list documents
    POST   /v1/collections/{name}/documents                 add: multipart file(s), or JSON {text|html|json|file,
                                                            name?, data_class?, metadata?}
    GET    /v1/collections/{name}/documents/{id}            one document
    DELETE /v1/collections/{name}/documents/{id}            delete it
    POST   /v1/collections/{name}/search                    {query, k?, mode?} -> hits with offsets

Every call needs the ``user`` role and the collection in the key's ``collections`` scope, and writes one audit record
(endpoint ``collections.<verb>``, the collection as ``model_requested``, data class and entity counts - never
content). Reading or adding data above the key's ``max_class`` is refused (``data_class_not_allowed``).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.data_class import DataClass
from fedinf.errors import FedinfError, Forbidden, PayloadTooLarge, RequestError
from fedinf.pipeline import Trace
from fedinf.server.body import read_json
from fedinf.server.errors import error_response, json_response
from fedinf.gateway import Gateway

_OVERHEAD = 64 * 1024
Work = Callable[[Any], Awaitable[tuple[Any, int, "ClassSummary | None"]]]


@dataclass(frozen=True)
class ClassSummary:
    """What the audit record needs about the data an operation touched (duck-types a Classification)."""

    data_class: DataClass
    entities: dict[str, int] = field(default_factory=dict)
    adjustment: None = None

    @property
    def detected_class(self) -> DataClass:
        return self.data_class

    def counts(self) -> dict[str, int]:
        return dict(self.entities)


def _admit(principal: Any, collection: str | None) -> None:
    if principal is None:
        return
    principal.check_infer()
    if collection is not None:
        principal.check_collection(collection)


def _check_class(principal: Any, level: DataClass) -> None:
    if principal is not None and level > principal.max_class:
        raise Forbidden(f"the data is classified {level.label}; this API key may receive data up to "
                        f"{principal.max_class.label}", code="data_class_not_allowed")


class CollectionsAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @property
    def rt(self) -> Any:
        return self.gw.retrieval_service()

    async def run(self, request: Request, endpoint: str, collection: str | None, work: Work) -> Response:
        """Authenticate, admit, do ``work``, audit (also on failure), answer."""
        trace = Trace(request_id=uuid.uuid4().hex, started=time.monotonic(), endpoint=endpoint, requested=collection)
        try:
            trace.principal = await self.gw.authenticate(request.headers.get("authorization"))
            _admit(trace.principal, collection)
            body, status, trace.classification = await work(trace.principal)
        except FedinfError as exc:
            trace.status, trace.error_code = exc.status_code, exc.code
            try:
                await self.gw.pipeline.audit(trace)
            except FedinfError as audit_exc:
                exc = audit_exc
            return error_response(exc, trace.headers())
        trace.status = status
        try:
            await self.gw.pipeline.audit(trace)
        except FedinfError as exc:
            return error_response(exc, trace.headers())
        return json_response(body, status, trace.headers())

    # ------------------------------------------------------------------ collections

    async def list_all(self, request: Request) -> Response:
        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            infos = await self.rt.list_collections()
            if principal is not None:
                infos = [i for i in infos if principal.may_use_collection(i.name) is None]
            return {"object": "list", "data": [i.to_dict() for i in infos]}, 200, None
        return await self.run(request, "collections.list", None, work)

    async def create(self, request: Request) -> Response:
        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            body = await self._json(request)
            _only(body, {"name", "data_class", "description"})
            name = body.get("name")
            if not isinstance(name, str):
                raise RequestError("`name` is required (a string)", param="name", code="missing_field")
            _admit(principal, name)
            info = await self.rt.create_collection(name, data_class=body.get("data_class"),
                                                   description=str(body.get("description") or ""),
                                                   owner=getattr(principal, "tenant", None))
            return info.to_dict(), 201, ClassSummary(info.data_class)
        return await self.run(request, "collections.create", None, work)

    async def get(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            info = await self.rt.get_collection(name)
            return info.to_dict(), 200, ClassSummary(info.data_class)
        return await self.run(request, "collections.get", name, work)

    async def delete(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            info = await self.rt.get_collection(name)
            await self.rt.delete_collection(name)
            return {"object": "collection.deleted", "name": name, "deleted": True}, 200, ClassSummary(info.data_class)
        return await self.run(request, "collections.delete", name, work)

    # ------------------------------------------------------------------ documents

    async def documents(self, request: Request) -> Response:
        name = request.path_params["name"]
        limit = _int(request.query_params.get("limit"), 100, "limit", 1, 1000)
        after = request.query_params.get("after")

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            docs = await self.rt.list_documents(name, limit=limit, after=after)
            return {"object": "list", "data": [d.to_dict() for d in docs],
                    "has_more": len(docs) == limit, "last_id": docs[-1].id if docs else None}, 200, None
        return await self.run(request, "collections.documents.list", name, work)

    async def add(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            uploads, data_class, metadata = await self._uploads(request)
            results = []
            for data, doc_name, media in uploads:
                results.append(await self.rt.add(name, data, name=doc_name, media_type=media, data_class=data_class,
                                                 metadata=metadata, max_class=getattr(principal, "max_class", None)))
            level = max(r.document.data_class for r in results)
            entities: dict[str, int] = {}
            for r in results:
                for k, v in r.document.entities.items():
                    entities[k] = entities.get(k, 0) + v
            status = 201 if any(r.created for r in results) else 200
            body = results[0].to_dict() if len(results) == 1 else \
                {"object": "list", "data": [r.to_dict() for r in results]}
            return body, status, ClassSummary(level, entities)
        return await self.run(request, "collections.documents.add", name, work)

    async def document(self, request: Request) -> Response:
        name, doc_id = request.path_params["name"], request.path_params["doc"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            doc = await self.rt.get_document(name, doc_id)
            return doc.to_dict(), 200, ClassSummary(doc.data_class, doc.entities)
        return await self.run(request, "collections.documents.get", name, work)

    async def delete_document(self, request: Request) -> Response:
        name, doc_id = request.path_params["name"], request.path_params["doc"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            doc = await self.rt.get_document(name, doc_id)
            await self.rt.delete_document(name, doc_id)
            return {"object": "collection.document.deleted", "id": doc_id, "deleted": True}, 200, \
                ClassSummary(doc.data_class)
        return await self.run(request, "collections.documents.delete", name, work)

    # ------------------------------------------------------------------ search

    async def search(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def work(principal: Any) -> tuple[Any, int, ClassSummary | None]:
            body = await self._json(request)
            _only(body, {"query", "k", "mode"})
            query = body.get("query")
            if not isinstance(query, str):
                raise RequestError("`query` is required (a string)", param="query", code="missing_field")
            k = body.get("k")
            if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
                raise RequestError("`k` must be an integer", param="k", code="invalid_value")
            query_class = self.gw.classifier.classify([query])
            result = await self.rt.search(name, query, k=k, mode=body.get("mode"),
                                          data_class=query_class.data_class)
            level = max(result.data_class, query_class.data_class)
            _check_class(principal, level)
            return result.to_dict(), 200, ClassSummary(level, query_class.counts())
        return await self.run(request, "collections.search", name, work)

    # ------------------------------------------------------------------ bodies

    async def _json(self, request: Request) -> dict[str, Any]:
        body = await read_json(request, self.gw.config.server.max_body_bytes)
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object", code="invalid_body")
        return body

    async def _uploads(self, request: Request) -> tuple[list[tuple[bytes, str, str | None]], Any, dict[str, Any]]:
        limit = self.gw.config.retrieval.max_document_bytes
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await _multipart(request, limit)
        body = await read_json(request, limit * 4 // 3 + _OVERHEAD)
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object", code="invalid_body")
        _only(body, {"text", "html", "json", "file", "name", "data_class", "metadata"})
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise RequestError("`metadata` must be an object", param="metadata", code="invalid_value")
        return [_json_document(body)], body.get("data_class"), metadata


async def _multipart(request: Request, limit: int) -> tuple[list[tuple[bytes, str, str | None]], Any, dict[str, Any]]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > 16 * (limit + _OVERHEAD):
        raise PayloadTooLarge(f"upload of {declared} bytes is too large", details={"limit": limit})
    form = await request.form(max_files=16, max_fields=16)
    try:
        files = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
        if not files:
            raise RequestError("the multipart body has no file part: send documents as `file`", code="missing_file")
        out = []
        for upload in files:
            fname, media = str(getattr(upload, "filename", "") or "upload"), getattr(upload, "content_type", None)
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"{fname} exceeds the document limit of {limit} bytes "
                                      "(retrieval.max_document_bytes)", details={"limit": limit})
            out.append((data, fname, media))
        dc = form.get("data_class")
        meta_raw = form.get("metadata")
        try:
            metadata = json.loads(meta_raw) if isinstance(meta_raw, str) and meta_raw else {}
        except ValueError:
            raise RequestError("`metadata` must be a JSON object", param="metadata", code="invalid_value") from None
        if not isinstance(metadata, dict):
            raise RequestError("`metadata` must be a JSON object", param="metadata", code="invalid_value")
        return out, dc if isinstance(dc, str) else None, metadata
    finally:
        await form.close()


def _json_document(body: dict[str, Any]) -> tuple[bytes, str, str | None]:
    given = [k for k in ("text", "html", "json", "file") if k in body]
    if len(given) != 1:
        raise RequestError("send exactly one of `text`, `html`, `json` or `file`", code="invalid_body")
    key, name = given[0], body.get("name")
    if name is not None and not isinstance(name, str):
        raise RequestError("`name` must be a string", param="name", code="invalid_value")
    if key in ("text", "html"):
        if not isinstance(body[key], str):
            raise RequestError(f"`{key}` must be a string", param=key, code="invalid_value")
        return body[key].encode(), name or f"document.{'txt' if key == 'text' else 'html'}", \
            "text/plain" if key == "text" else "text/html"
    if key == "json":
        return json.dumps(body["json"], ensure_ascii=False).encode(), name or "document.json", "application/json"
    f = body["file"]
    if not isinstance(f, dict) or not isinstance(f.get("content_base64"), str):
        raise RequestError("`file` must be {name, content_base64, media_type?}", param="file", code="invalid_body")
    try:
        data = base64.b64decode(f["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("`file.content_base64` is not valid base64", param="file.content_base64",
                           code="invalid_body") from None
    return data, str(f.get("name") or name or "document"), f.get("media_type")


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(f"unknown keys: {unknown}; allowed: {sorted(allowed)}", code="invalid_body")


def _int(raw: str | None, default: int, param: str, lo: int, hi: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise RequestError(f"`{param}` must be an integer from {lo} to {hi}", param=param, code="invalid_value")
    return int(raw)


def routes(gateway: Gateway) -> list[Route]:
    api = CollectionsAPI(gateway)
    return [
        Route("/v1/collections", api.list_all, methods=["GET"]),
        Route("/v1/collections", api.create, methods=["POST"]),
        Route("/v1/collections/{name}", api.get, methods=["GET"]),
        Route("/v1/collections/{name}", api.delete, methods=["DELETE"]),
        Route("/v1/collections/{name}/documents", api.documents, methods=["GET"]),
        Route("/v1/collections/{name}/documents", api.add, methods=["POST"]),
        Route("/v1/collections/{name}/documents/{doc}", api.document, methods=["GET"]),
        Route("/v1/collections/{name}/documents/{doc}", api.delete_document, methods=["DELETE"]),
        Route("/v1/collections/{name}/search", api.search, methods=["POST"]),
    ]
