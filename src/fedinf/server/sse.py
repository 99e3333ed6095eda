"""Server-sent events: a stream of chat chunks as ``text/event-stream``, with writes coalesced.

Each chunk is one ``data: {json}`` event; a stream that ends normally ends with ``data: [DONE]`` (the pipeline's
stream only ends normally once the request's audit record is durable); a stream that fails ends with the error
object as its last event (:func:`fedinf.server.errors.sse_error`), never with ``[DONE]``.

Coalescing: an upstream usually delivers several events per network read, and the pipeline then has the next chunk
ready without waiting. :class:`SSEResponse` asks for the next chunk and, when it is ready at once, adds its event to
the pending write; only when the next chunk would have to wait (or :data:`MAX_PENDING` events are pending) are the
pending events written, as one ASGI message. No event is ever held back while waiting: latency is unchanged, and
the number of writes (and their per-write cost) drops from one per token to about one per upstream read.

"Ready at once" is found out with :func:`fedinf.ready.run_until_wait`; a step that would wait is then driven to its
end through the event loop (:func:`fedinf.ready.finish`), so it behaves exactly as if it had been awaited.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Send

from fedinf.errors import FedinfError
from fedinf.jsoncodec import dumps
from fedinf.ready import Waiting, finish, run_until_wait
from fedinf.server.errors import sse_error

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"
MAX_PENDING = 64  # events written together at most

Chunks = AsyncGenerator[dict[str, Any], None]


def event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + dumps(chunk) + b"\n\n"


class SSEResponse(StreamingResponse):
    """A streaming response over chat chunk dicts (see the module docstring). ``chunks`` is closed in the end."""

    def __init__(self, chunks: Chunks, headers: Mapping[str, str]) -> None:
        self.chunks = chunks
        super().__init__(self._never(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})

    @staticmethod
    async def _never() -> AsyncGenerator[bytes, None]:  # the body comes from stream_response, not body_iterator
        return
        yield b""  # pragma: no cover

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        pending: list[bytes] = []

        async def write(data: bytes, step: Any = None, waiting: Waiting | None = None) -> None:
            try:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            except BaseException as exc:  # client gone while the next chunk was half-fetched: end that step too
                if step is not None and waiting is not None:
                    try:
                        await finish(step, waiting, exc)
                    except BaseException:  # noqa: BLE001 - the original exception is the one that matters
                        pass
                raise

        try:
            while True:
                step = self.chunks.__anext__()
                try:
                    got = run_until_wait(step)
                    if isinstance(got, Waiting):
                        if pending:  # the next chunk is not there yet: write what is ready first
                            await write(b"".join(pending), step, got)
                            pending = []
                        got = await finish(step, got)
                except StopAsyncIteration:
                    break
                pending.append(event(got))
                if len(pending) >= MAX_PENDING:
                    await write(b"".join(pending))
                    pending = []
            pending.append(DONE)
        except FedinfError as exc:
            pending.append(sse_error(exc))
        finally:
            await _aclose(self.chunks)
        await write(b"".join(pending))
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _aclose(chunks: Chunks) -> None:
    try:
        await chunks.aclose()
    except RuntimeError:  # still running: a step was interrupted mid-way and has already been ended
        pass


def sse_response(chunks: Chunks, headers: Mapping[str, str]) -> SSEResponse:
    return SSEResponse(chunks, headers)


__all__ = ["DONE", "SSE_HEADERS", "SSEResponse", "event", "sse_response"]
