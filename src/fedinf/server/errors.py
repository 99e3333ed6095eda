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
from starlette.types import Send

from fedinf.errors import FedinfError, MethodNotAllowed, NotFound, PayloadTooLarge, RateLimited, RequestError
from fedinf.jsoncodec import dumps

log = logging.getLogger("fedinf.server")

Handler = Callable[[Request, Exception], Awaitable[Response]]

_HTTP_ERRORS: dict[int, type[FedinfError]] = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


async def send_json(send: Send, body: object, status: int, headers: Mapping[str, str]) -> None:
    """What :func:`json_response` sends, written straight to ASGI ``send`` (the chat endpoint's hot path: no
    Response object). Header values are latin-1 (fedinf's own headers are ASCII)."""
    payload = dumps(body)
    raw = [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


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


def internal_error(method: str, path: str) -> FedinfError:
    """An unexpected exception (being handled) logged with a reference, as the 500 the client gets."""
    ref = uuid.uuid4().hex[:12]
    log.exception("internal error (ref %s) on %s %s", ref, method, path)
    return FedinfError(f"internal error (ref {ref}); this is a bug in fedinf, please report it")


async def unexpected_exception(request: Request, exc: Exception) -> Response:
    return error_response(internal_error(request.method, request.url.path))


HANDLERS: dict[type[Exception] | int, Handler] = {
    HTTPException: http_exception,
    FedinfError: fedinf_exception,
    Exception: unexpected_exception,
}
