"""SSE encoding: events that are ready together are written together, nothing is held back while waiting, a
failure ends the stream with the error event (no [DONE]), and a client that leaves closes the pipeline's stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from fedinf.errors import BackendTimeout
from fedinf.server.sse import DONE, SSEResponse


def chunk(i: int) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": f"t{i}"}}]}


class Sink:
    def __init__(self, fail_after: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.fail_after = fail_after

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("more_body"):
            if self.fail_after is not None and len(self.bodies) >= self.fail_after:
                raise OSError("client went away")
            self.bodies.append(message["body"])

    def events(self) -> list[str]:
        return [e for e in b"".join(self.bodies).decode().split("\n\n") if e]


async def run(chunks: AsyncGenerator[dict[str, Any], None], sink: Sink) -> None:
    await SSEResponse(chunks, {"x-fedinf-request-id": "r"}).stream_response(sink)


async def test_events_ready_together_are_written_together() -> None:
    async def ready() -> AsyncGenerator[dict[str, Any], None]:
        for i in range(10):
            yield chunk(i)

    sink = Sink()
    await run(ready(), sink)
    assert len(sink.bodies) == 1  # ten events and [DONE] in one write
    events = sink.events()
    assert [json.loads(e.removeprefix("data: "))["choices"][0]["delta"]["content"] for e in events[:-1]] == \
        [f"t{i}" for i in range(10)]
    assert events[-1] + "\n\n" == DONE.decode()


async def test_nothing_is_held_back_while_the_next_chunk_is_awaited() -> None:
    sink = Sink()

    async def slow() -> AsyncGenerator[dict[str, Any], None]:
        for i in range(3):
            yield chunk(i)
            await asyncio.sleep(0.02)
            assert len(sink.bodies) == i + 1  # the event was written before waiting for the next one

    await run(slow(), sink)
    assert len(sink.bodies) == 4 and sink.bodies[-1] == DONE


async def test_a_failure_ends_with_the_error_event_and_no_done() -> None:
    async def broken() -> AsyncGenerator[dict[str, Any], None]:
        yield chunk(0)
        await asyncio.sleep(0.01)
        raise BackendTimeout("upstream stalled", code="backend_timeout")
        yield chunk(1)  # pragma: no cover

    sink = Sink()
    await run(broken(), sink)
    events = sink.events()
    assert json.loads(events[-1].removeprefix("data: "))["error"]["code"] == "backend_timeout"
    assert "[DONE]" not in "".join(events)


async def test_a_client_that_leaves_ends_the_pipelines_stream() -> None:
    ended: list[str] = []

    async def chunks() -> AsyncGenerator[dict[str, Any], None]:
        try:
            for i in range(100):
                yield chunk(i)
                await asyncio.sleep(0.005)
        except BaseException as exc:
            ended.append(type(exc).__name__)
            raise

    with pytest.raises(OSError):
        await run(chunks(), Sink(fail_after=2))
    assert ended  # the pipeline's stream saw the end (and so records the disconnect)
