"""Reading request bodies safely: size limit enforced while streaming, JSON errors made clear."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fedinf.errors import PayloadTooLarge, RequestError
from fedinf.jsoncodec import JSONDecodeError, loads


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes "
                              f"(server.max_body_bytes)")
    chunks = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (server.max_body_bytes)")
        chunks.append(part)
    raw = b"".join(chunks)
    if not raw.strip():
        raise RequestError("the request body is empty: send a JSON object", code="invalid_json")
    try:
        return loads(raw)
    except UnicodeDecodeError:
        raise RequestError("the request body is not UTF-8 text", code="invalid_json") from None
    except JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                           code="invalid_json") from None
