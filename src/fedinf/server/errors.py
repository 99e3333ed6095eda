"""The single place where errors become HTTP responses, in OpenAI's error shape.

``{"error": {"message", "type", "param", "code"}}`` plus an optional ``fedinf`` object with details (attempts,
decision). Unexpected exceptions become a 500 with code ``internal_error`` and a request id to find the log line;
they are bugs, and the tests make sure bad input never reaches this path.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fedinf.errors import FedinfError, NotFound, RequestError
from fedinf.jsoncodec import dumps

log = logging.getLogger("fedinf.server")

_HTTP_CODES = {404: ("not_found", "invalid_request_error"), 405: ("method_not_allowed", "invalid_request_error")}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = dumps(body)
    return Response(data, status_code=status, headers=headers, media_type="application/json")


def error_response(exc: FedinfError, headers: dict[str, str] | None = None) -> Response:
    hdrs = dict(headers or {})
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        hdrs.setdefault("retry-after", str(max(1, int(retry_after + 0.999))))
    return json_response(exc.to_dict(), exc.status_code, hdrs)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, typ = _HTTP_CODES.get(exc.status_code, ("http_error", "invalid_request_error"))
    if exc.status_code == 404:
        return error_response(NotFound(f"no such endpoint: {request.method} {request.url.path}", code=code))
    err = RequestError(str(exc.detail), code=code)
    err.status_code, err.type = exc.status_code, typ
    return error_response(err)


async def fedinf_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FedinfError)
    return error_response(exc)


async def unexpected_exception(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.exception("internal error (ref %s) on %s %s", ref, request.method, request.url.path)
    err = FedinfError(f"internal error (ref {ref}); this is a bug in fedinf, please report it")
    return error_response(err)


HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception,
    FedinfError: fedinf_exception,
    Exception: unexpected_exception,
}
