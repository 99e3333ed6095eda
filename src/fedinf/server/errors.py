"""The single place where errors become HTTP, in OpenAI's error shape: JSON responses, SSE error frames, Retry-After.

``{"error": {"message", "type", "param", "code"}}`` plus an optional ``fedinf`` object with details (attempts,
decision). Route handlers raise :class:`~fedinf.errors.FedinfError` (or return the pipeline's ``Reply.error``
through :func:`error_response`); the handlers in :data:`HANDLERS` catch what they raise, Starlette's own
``HTTPException`` (unknown path, wrong method) included. A stream that fails after it started ends with
:func:`sse_error` instead of ``[DONE]``. Unexpected exceptions become a 500 with code ``internal_error`` and a
reference to find the log line; they are bugs, and the tests make sure bad input never reaches this path.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fedinf.errors import FedinfError, MethodNotAllowed, NotFound, PayloadTooLarge, RateLimited, RequestError
from fedinf.jsoncodec import dumps

log = logging.getLogger("fedinf.server")

Handler = Callable[[Request, Exception], Awaitable[Response]]

_HTTP_ERRORS: dict[int, type[FedinfError]] = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def error_headers(exc: FedinfError, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Response headers for ``exc``: ``headers`` plus ``Retry-After`` (whole seconds, rounded up) when it has one."""
    out = dict(headers or {})
    if isinstance(exc, RateLimited):
        out.setdefault("retry-after", str(max(1, int(exc.retry_after + 0.999))))
    return out


def error_response(exc: FedinfError, headers: Mapping[str, str] | None = None) -> Response:
    """``exc`` as a JSON error response with its status code."""
    return json_response(exc.to_dict(), exc.status_code, error_headers(exc, headers))


def sse_error(exc: FedinfError) -> bytes:
    """The SSE frame that ends a failed stream (the error object, no ``[DONE]`` after it)."""
    return b"data: " + dumps(exc.to_dict()) + b"\n\n"


def from_http_exception(request: Request, exc: HTTPException) -> FedinfError:
    if exc.status_code == 404:
        return NotFound(f"no such endpoint: {request.method} {request.url.path}")
    cls = _HTTP_ERRORS.get(exc.status_code, RequestError)
    return cls(str(exc.detail), code=None if cls is not RequestError else "http_error")


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(from_http_exception(request, exc), exc.headers)


async def fedinf_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FedinfError)
    return error_response(exc)


async def unexpected_exception(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.exception("internal error (ref %s) on %s %s", ref, request.method, request.url.path)
    err = FedinfError(f"internal error (ref {ref}); this is a bug in fedinf, please report it")
    return error_response(err)


HANDLERS: dict[type[Exception] | int, Handler] = {
    HTTPException: http_exception,
    FedinfError: fedinf_exception,
    Exception: unexpected_exception,
}
