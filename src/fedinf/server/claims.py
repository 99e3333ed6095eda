"""The claims endpoints (X12 pre-validation and rule review). Thin: wire format here, logic in
:class:`fedinf.claims.service.ClaimsService`.

    POST /v1/claims/validate                  X12 as the raw body (text/plain, application/edi-x12), a multipart
                                              `file`, or JSON {"x12": "..."} -> the report (200 even when rejected;
                                              400 invalid_x12 with the segment position when it is not X12)
    POST /v1/claims/derive                    JSON {"documents": [{"name", "x12"}], "submitted": [...],
                                              "describe": false} -> candidate rules (admin role)
    GET  /v1/claims/rules?status=             rules with review state
    GET  /v1/claims/rules/{id}                one rule
    POST /v1/claims/rules/{id}/{action}       approve | reject | retire; JSON {note, expression, description}
                                              (admin role)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.errors import FedinfError, PayloadTooLarge, RequestError
from fedinf.server.body import read_json
from fedinf.server.errors import error_response, json_response
from fedinf.gateway import Gateway

_JSON_OVERHEAD = 64 * 1024


async def _raw(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the X12 limit of {limit} bytes "
                              "(claims.max_document_bytes)", details={"limit": limit})
    chunks, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the X12 limit of {limit} bytes (claims.max_document_bytes)",
                                  details={"limit": limit})
        chunks.append(part)
    return b"".join(chunks)


async def _document(request: Request, limit: int) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await read_json(request, limit * 2 + _JSON_OVERHEAD)
        if not isinstance(body, dict) or not isinstance(body.get("x12"), str) or set(body) - {"x12", "name"}:
            raise RequestError("send {\"x12\": \"ISA*...\"} (and optionally `name`), or the X12 text as the body",
                               code="invalid_body", param="x12")
        return str(body["x12"]).encode("latin-1", "replace")
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        try:
            upload = form.get("file")
            if upload is None or not hasattr(upload, "read"):
                raise RequestError("the multipart body has no `file` part", code="missing_file")
            data: bytes = await upload.read(limit + 1)
        finally:
            await form.close()
        if len(data) > limit:
            raise PayloadTooLarge(f"the X12 document exceeds the limit of {limit} bytes", details={"limit": limit})
        return data
    return await _raw(request, limit)


def _docs(body: dict[str, Any], key: str) -> list[tuple[str, bytes]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("x12"), str) for i in items):
        raise RequestError(f"`{key}` must be a list of {{\"name\", \"x12\"}} objects", code="invalid_body", param=key)
    return [(str(i.get("name") or f"{key}[{n}]"), i["x12"].encode("latin-1", "replace")) for n, i in enumerate(items)]


class ClaimsApi:
    """The endpoints over one lazily built ClaimsService (the rule store opens on first use)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._service: Any = None

    def service(self) -> Any:
        if self._service is None:
            from fedinf.claims.service import ClaimsService

            self._service = ClaimsService(self.gateway)
        return self._service

    async def validate(self, request: Request) -> Response:
        try:
            svc = self.service()
            data = await _document(request, svc.settings.max_document_bytes)
            outcome = await svc.validate(data, authorization=request.headers.get("authorization"))
        except FedinfError as exc:
            return error_response(exc)
        return json_response(outcome.report.to_dict(), 200, outcome.headers)

    async def derive(self, request: Request) -> Response:
        try:
            svc = self.service()
            body = await read_json(request, svc.settings.max_document_bytes * 4 + _JSON_OVERHEAD)
            if not isinstance(body, dict) or set(body) - {"documents", "submitted", "describe"}:
                raise RequestError("send {\"documents\": [{\"name\", \"x12\"}], \"submitted\": [...], "
                                   "\"describe\": false}", code="invalid_body")
            docs = _docs(body, "documents")
            if not docs:
                raise RequestError("`documents` is empty: send the 999/277CA/835 rejections", code="invalid_body",
                                   param="documents")
            outcome = await svc.derive(docs, submitted=_docs(body, "submitted"), describe=bool(body.get("describe")),
                                       authorization=request.headers.get("authorization"))
        except FedinfError as exc:
            return error_response(exc)
        d = outcome.derivation
        return json_response({"added": outcome.added, "updated": outcome.updated,
                              "rules": [r.model_dump() for r in d.rules],
                              "unmapped": [{"source": r.source, "codes": r.codes, "reason": why}
                                           for r, why in d.unmapped]}, 200, outcome.headers)

    async def rules(self, request: Request) -> Response:
        try:
            status = request.query_params.get("status")
            if status not in (None, "candidate", "approved", "rejected", "retired"):
                raise RequestError("status must be candidate, approved, rejected or retired", code="invalid_value",
                                   param="status")
            rules = await self.service().list_rules(status=status, authorization=request.headers.get("authorization"))
        except FedinfError as exc:
            return error_response(exc)
        return json_response({"object": "list", "data": [r.model_dump() for r in rules]})

    async def rule(self, request: Request) -> Response:
        try:
            rule = await self.service().get_rule(request.path_params["rule_id"],
                                                 authorization=request.headers.get("authorization"))
        except FedinfError as exc:
            return error_response(exc)
        return json_response(rule.model_dump())

    async def review(self, request: Request) -> Response:
        try:
            body: Any = {}
            if int(request.headers.get("content-length") or 0) > 0:
                body = await read_json(request, 256 * 1024)
            if not isinstance(body, dict) or set(body) - {"note", "expression", "description"} or \
                    not all(isinstance(v, str) for v in body.values()):
                raise RequestError("optional JSON body: {\"note\", \"expression\", \"description\"} (strings)",
                                   code="invalid_body")
            rule = await self.service().review(request.path_params["rule_id"], request.path_params["action"],
                                               authorization=request.headers.get("authorization"),
                                               note=body.get("note", ""), expression=body.get("expression"),
                                               description=body.get("description"))
        except FedinfError as exc:
            return error_response(exc)
        return json_response(rule.model_dump())


def routes(gateway: Gateway) -> list[Route]:
    api = ClaimsApi(gateway)
    return [
        Route("/v1/claims/validate", api.validate, methods=["POST"]),
        Route("/v1/claims/derive", api.derive, methods=["POST"]),
        Route("/v1/claims/rules", api.rules, methods=["GET"]),
        Route("/v1/claims/rules/{rule_id}", api.rule, methods=["GET"]),
        Route("/v1/claims/rules/{rule_id}/{action}", api.review, methods=["POST"]),
    ]
