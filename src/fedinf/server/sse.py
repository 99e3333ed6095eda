"""Server-sent events: a stream of chat chunks as ``text/event-stream``.

Each chunk is one ``data: {json}`` event; a stream that ends normally ends with ``data: [DONE]`` (the pipeline's
stream only ends normally once the request's audit record is durable); a stream that fails ends with the error
object as its last event (:func:`fedinf.server.errors.sse_error`), never with ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from starlette.responses import StreamingResponse

from fedinf.errors import FedinfError
from fedinf.jsoncodec import dumps
from fedinf.server.errors import sse_error

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"


async def encode(chunks: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    """SSE frames for ``chunks``: ``[DONE]`` after a normal end, the error frame after a failure. Closing this
    stream (client gone) closes ``chunks``, so the pipeline records the disconnect."""
    try:
        async for c in chunks:
            yield b"data: " + dumps(c) + b"\n\n"
    except FedinfError as exc:
        yield sse_error(exc)
        return
    finally:
        await chunks.aclose()
    yield DONE


def sse_response(chunks: AsyncGenerator[dict[str, Any], None], headers: Mapping[str, str]) -> StreamingResponse:
    return StreamingResponse(encode(chunks), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
