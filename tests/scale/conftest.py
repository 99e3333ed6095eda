"""Fixtures for scale-out tests: a real Redis URL and a unique key prefix (other test runs share the server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.services import REDIS_URL, unavailable


@pytest.fixture
def redis_url() -> str:
    try:
        import redis
    except ImportError:
        unavailable("redis-py is not installed")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL} unreachable: {exc}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh prefix; every key under it is deleted afterwards."""
    import redis

    prefix = f"fedinf-t-{uuid.uuid4().hex[:10]}"
    yield prefix
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{prefix}:*"))
    if keys:
        r.delete(*keys)
    r.close()
