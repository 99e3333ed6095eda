"""fedinf.ready: a result that is already there is taken without the event loop; one that is not is awaited
exactly as usual, cancellation and timeouts included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from fedinf.ready import Waiting, finish, run_until_wait


async def test_a_ready_result_is_taken_at_once_and_a_waiting_one_is_awaited() -> None:
    async def ready() -> int:
        return 7

    assert run_until_wait(ready()) == 7

    async def later() -> int:
        await asyncio.sleep(0.01)
        return 8

    step = later()
    got = run_until_wait(step)
    assert isinstance(got, Waiting)
    assert await finish(step, got) == 8


async def test_stream_steps_end_and_fail_as_when_awaited() -> None:
    async def gen() -> AsyncGenerator[int, None]:
        yield 1
        await asyncio.sleep(0.01)
        yield 2
        raise ValueError("broken")

    it = gen()
    assert run_until_wait(it.__anext__()) == 1
    step = it.__anext__()
    got = run_until_wait(step)
    assert isinstance(got, Waiting) and await finish(step, got) == 2
    with pytest.raises(ValueError):
        run_until_wait(it.__anext__())
    with pytest.raises(StopAsyncIteration):
        run_until_wait(it.__anext__())


async def test_a_timeout_reaches_the_waiting_step() -> None:
    cancelled: list[bool] = []

    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    step = slow()
    got = run_until_wait(step)
    assert isinstance(got, Waiting)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await finish(step, got)
    assert cancelled == [True]


async def test_an_awaitable_that_cannot_be_stepped_is_awaited_normally() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    got = run_until_wait(fut)
    assert isinstance(got, Waiting) and not got.started
    asyncio.get_running_loop().call_later(0.01, fut.set_result, 5)
    assert await finish(fut, got) == 5
