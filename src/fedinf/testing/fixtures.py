"""pytest fixtures for the fake upstreams. Enable them in a ``conftest.py`` with
``pytest_plugins = ["fedinf.testing.fixtures"]``.

- ``fake_openai``: a started :class:`~fedinf.testing.upstream.FakeOpenAIUpstream` (``.url`` ends in ``/v1``);
- ``fake_anthropic``: a started :class:`~fedinf.testing.anthropic_upstream.FakeAnthropicUpstream`;
- ``fake_upstreams``: a factory, ``await fake_upstreams(3)`` -> three independent OpenAI fakes (replicas), each
  with its own faults and records; keyword arguments go to the constructor.

All are stopped at the end of the test. They run in the test's event loop, so use them from async tests (or from
a server running in that loop); for a server in another thread or process, run ``python -m
fedinf.testing.upstream`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from fedinf.testing.anthropic_upstream import FakeAnthropicUpstream
from fedinf.testing.upstream import FakeOpenAIUpstream


@pytest_asyncio.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAIUpstream]:
    async with FakeOpenAIUpstream() as server:
        yield server


@pytest_asyncio.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropicUpstream]:
    async with FakeAnthropicUpstream() as server:
        yield server


@pytest_asyncio.fixture
async def fake_upstreams() -> AsyncIterator[Callable[..., Awaitable[list[FakeOpenAIUpstream]]]]:
    started: list[FakeOpenAIUpstream] = []

    async def start(n: int = 1, **kw: Any) -> list[FakeOpenAIUpstream]:
        servers = [FakeOpenAIUpstream(**kw) for _ in range(n)]
        for s in servers:
            await s.start()
            started.append(s)
        return servers

    yield start
    for s in started:
        await s.stop()
