"""``GET /v1/tasks`` and ``POST /v1/tasks/{name}``: list tasks, run one on a document.

``POST /v1/tasks/{name}`` takes either a multipart upload (one file part, any field name; ``file`` preferred) or a
JSON body with exactly one of::

    {"text": "..."}                     plain text
    {"html": "<html>..."}               HTML
    {"json": {...}}                     a JSON document
    {"file": {"name": "a.pdf", "content_base64": "...", "media_type": "application/pdf"}}

and answers with the task result (``record``, per-field ``fields`` with provenance, ``checks``, ``warnings``,
``metadata``) plus the ``x-fedinf-model`` / ``x-fedinf-zone`` / ``x-fedinf-data-class`` headers. The model call goes
through the gateway's pipeline with the caller's credential, so access control, classification, routing policy and
audit apply to it as to any chat request.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedinf.errors import PayloadTooLarge, RequestError
from fedinf.gateway import Gateway
from fedinf.server.body import read_json
from fedinf.server.errors import json_response
from fedinf.tasks import GatewayClient, TaskRunner
from fedinf.tasks.spec import TaskSpec

_MULTIPART_OVERHEAD = 64 * 1024


async def _upload(request: Request, spec: TaskSpec) -> tuple[bytes, str, str | None]:
    limit = spec.limits.max_document_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"upload of {declared} bytes exceeds task {spec.name!r}'s document limit of {limit} "
                              "bytes", details={"limit": limit})
    form = await request.form(max_files=1, max_fields=8)
    try:
        files = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
        if not files:
            raise RequestError("the multipart body has no file part: send the document as `file`",
                               code="missing_file")
        upload = form.get("file") if hasattr(form.get("file"), "read") else files[0]
        data = await upload.read(limit + 1)  # type: ignore[union-attr]
        if len(data) > limit:
            raise PayloadTooLarge(f"the document exceeds task {spec.name!r}'s limit of {limit} bytes",
                                  details={"limit": limit})
        return data, upload.filename or "upload", upload.content_type  # type: ignore[union-attr]
    finally:
        await form.close()


async def _json_document(request: Request, spec: TaskSpec) -> tuple[bytes, str, str | None]:
    limit = spec.limits.max_document_bytes * 4 // 3 + _MULTIPART_OVERHEAD
    body = await read_json(request, limit)
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object with one of: text, html, json, file", code="invalid_body")
    given = [k for k in ("text", "html", "json", "file") if k in body]
    unknown = sorted(set(body) - {"text", "html", "json", "file", "name"})
    if len(given) != 1 or unknown:
        raise RequestError("send exactly one of `text`, `html`, `json` or `file` (and optionally `name`)"
                           + (f"; unknown keys: {unknown}" if unknown else ""), code="invalid_body")
    key, name = given[0], str(body.get("name") or "document")
    if key == "text":
        return _str(body, key).encode(), name, "text/plain"
    if key == "html":
        return _str(body, key).encode(), name, "text/html"
    if key == "json":
        return json.dumps(body["json"], ensure_ascii=False).encode(), name, "application/json"
    f = body["file"]
    if not isinstance(f, dict) or not isinstance(f.get("content_base64"), str):
        raise RequestError("`file` must be {name, content_base64, media_type?}", param="file", code="invalid_body")
    try:
        data = base64.b64decode(f["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("`file.content_base64` is not valid base64", param="file.content_base64",
                           code="invalid_body") from None
    return data, str(f.get("name") or name), f.get("media_type")


def _str(body: dict[str, Any], key: str) -> str:
    if not isinstance(body[key], str):
        raise RequestError(f"`{key}` must be a string", param=key, code="invalid_body")
    return body[key]


def routes(gateway: Gateway) -> list[Route]:
    """The task endpoints over the gateway's task registry."""
    registry = gateway.tasks

    async def list_tasks(request: Request) -> Response:
        await gateway.authenticate(request.headers.get("authorization"))
        return json_response({"object": "list", "data": [t.describe() for t in registry]})

    async def run_task(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        await gateway.authenticate(authorization)
        spec = registry.get(request.path_params["name"])
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            data, name, media_type = await _upload(request, spec)
        else:
            data, name, media_type = await _json_document(request, spec)
        runner = TaskRunner(GatewayClient(gateway, authorization=authorization))
        result = await runner.run_bytes(spec, data, name=name, media_type=media_type)
        meta = result.metadata
        headers = {k: str(v) for k, v in (("x-fedinf-model", meta.get("model")), ("x-fedinf-zone", meta.get("zone")),
                                          ("x-fedinf-data-class", meta.get("data_class"))) if v}
        return json_response(result.to_dict(), 200, headers)

    return [
        Route("/v1/tasks", list_tasks, methods=["GET"]),
        Route("/v1/tasks/{name}", run_task, methods=["POST"]),
    ]
