"""The real services tests use (PostgreSQL, Redis): found, or skipped with a reason - but under CI=true a missing
service is a failure, never a skip."""

from __future__ import annotations

import os

import pytest

PG_DSNS = [os.environ.get("FEDINF_TEST_PG_DSN", ""), "postgresql://postgres@127.0.0.1:5432/test",
           "postgresql://root@127.0.0.1:5432/test"]
REDIS_URL = os.environ.get("FEDINF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: services are required)")
    pytest.skip(reason)


def pg_dsn() -> str:
    """A working DSN for the test database, or skip (fail under CI=true)."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed")
    errors = []
    for dsn in filter(None, PG_DSNS):
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            return dsn
        except Exception as exc:  # noqa: BLE001 - any failure means: try the next one
            errors.append(str(exc).strip().splitlines()[0])
    unavailable(f"PostgreSQL at 127.0.0.1:5432 db test unreachable: {errors}")
    raise AssertionError("unreachable")
