"""Reading request bodies safely: size limit enforced while streaming, JSON errors made clear.

:func:`receive_json` reads from a raw ASGI ``receive`` (the chat endpoint, :mod:`fedinf.server.chat`, skips
Starlette's request object on the hot path); :func:`read_json` is the same for Starlette routes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import Receive

from fedinf.errors import PayloadTooLarge, RequestError
from fedinf.jsoncodec import JSONDecodeError, loads


class Disconnected(Exception):
    """The client went away before its request body arrived (nothing to answer)."""


def check_declared(declared: str | None, limit: int) -> None:
    """Refuse a body whose ``content-length`` already exceeds ``limit``, before reading it."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes "
                              f"(server.max_body_bytes)")


async def read_json(request: Request, limit: int) -> Any:
    return await receive_json(request.receive, request.headers.get("content-length"), limit)


async def receive_json(receive: Receive, declared: str | None, limit: int) -> Any:
    """The JSON body of a raw ASGI request (``declared``: its ``content-length`` header, if any)."""
    check_declared(declared, limit)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (server.max_body_bytes)")
        chunks.append(part)
        if not message.get("more_body", False):
            break
    return decode_json(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise RequestError("the request body is empty: send a JSON object", code="invalid_json")
    try:
        return loads(raw)
    except UnicodeDecodeError:
        raise RequestError("the request body is not UTF-8 text", code="invalid_json") from None
    except JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                           code="invalid_json") from None
