"""Server-sent events: a stream of chat chunks as ``text/event-stream``, with writes coalesced.

Each chunk is one ``data: {json}`` event; a stream that ends normally ends with ``data: [DONE]`` (the pipeline's
stream only ends normally once the request's audit record is durable); a stream that fails ends with the error
object as its last event (:func:`fedinf.server.errors.sse_error`), never with ``[DONE]``.

Coalescing: an upstream usually delivers several events per network read, and the pipeline then has the next chunk
ready without waiting. :class:`SSEResponse` asks for the next chunk and, when it is ready at once, adds its event to
the pending write; only when the next chunk would have to wait (or :data:`MAX_PENDING` events are pending) are the
pending events written, as one ASGI message. No event is ever held back while waiting: latency is unchanged, and
the number of writes (and their per-write cost) drops from one per token to about one per upstream read.

"Ready at once" is found out by running the step that fetches the next chunk until it either finishes or yields to
the event loop (:func:`_run_until_wait`); a step that yields is then driven to its end through the event loop
(:func:`_finish`), so it behaves exactly as if it had been awaited (cancellation included).
"""

from __future__ import annotations

import types
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Send

from fedinf.errors import FedinfError
from fedinf.jsoncodec import dumps
from fedinf.server.errors import sse_error

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"
MAX_PENDING = 64  # events written together at most

Chunks = AsyncGenerator[dict[str, Any], None]


def event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + dumps(chunk) + b"\n\n"


class _Waiting:
    """The step would wait: ``yielded`` is what it handed to the event loop."""

    __slots__ = ("yielded",)

    def __init__(self, yielded: object) -> None:
        self.yielded = yielded


def _run_until_wait(step: Any) -> dict[str, Any] | _Waiting:
    """Run an ``__anext__`` awaitable until it finishes (its chunk) or would wait (:class:`_Waiting`). Raises what
    the step raises (``StopAsyncIteration`` at the end, a ``FedinfError`` ...)."""
    try:
        yielded = step.send(None)
    except StopIteration as done:
        value: dict[str, Any] = done.value
        return value
    return _Waiting(yielded)


@types.coroutine
def _finish(step: Any, yielded: object, error: BaseException | None = None) -> Generator[Any, Any, Any]:
    """Drive a step that yielded ``yielded`` (or, with ``error``, throw that into it first) to its end through the
    event loop, passing what the loop sends or throws on to the step; returns its result."""
    try:
        if error is not None:
            yielded = step.throw(error)
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # cancellation (or close) from the loop: the step must see it
                yielded = step.throw(exc)
            else:
                yielded = step.send(sent)
    except StopIteration as done:
        return done.value


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

        async def write(data: bytes, step: Any = None, waiting: _Waiting | None = None) -> None:
            try:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            except BaseException as exc:  # client gone while the next chunk was half-fetched: end that step too
                if step is not None and waiting is not None:
                    try:
                        await _finish(step, waiting.yielded, exc)
                    except BaseException:  # noqa: BLE001 - the original exception is the one that matters
                        pass
                raise

        try:
            while True:
                step = self.chunks.__anext__()
                try:
                    got = _run_until_wait(step)
                    if isinstance(got, _Waiting):
                        if pending:  # the next chunk is not there yet: write what is ready first
                            await write(b"".join(pending), step, got)
                            pending = []
                        got = await _finish(step, got.yielded)
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
