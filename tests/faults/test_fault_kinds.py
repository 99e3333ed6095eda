"""Every fault the fake upstream can inject ends each request within its deadline with a success (another eligible
endpoint answered) or a clear error - never a hang, never a 500 from fedinf itself."""

from __future__ import annotations

from typing import Any

import pytest

from fault_harness import ZONES, chat_count, model_yaml, serve, upstreams, user

# a: always first (priority route), b: the healthy fallback. Breakers are kept out of the way (huge min_calls) so
# every request really meets the injected fault.
RELIABILITY = """
reliability:
  health_interval_s: 0
  breaker: {min_calls: 100000}
  retries: {backoff_base_ms: 5, backoff_cap_ms: 20}
"""

FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("status", {"status": 429}),
    ("status", {"status": 500}),
    ("status", {"status": 503}),
    ("reset", {}),
    ("hang", {}),
    ("slow", {"delay_ms": 3000}),
    ("malformed_json", {}),
    ("stall", {"after_tokens": 2}),
    ("cutoff", {"after_tokens": 2}),
    ("malformed_sse", {"after_tokens": 0}),
]


def config(a: Any, b: Any) -> str:
    return (ZONES + "models:" + model_yaml("a", [a], read_s=0.4) + model_yaml("b", [b], read_s=0.4)
            + "routes:\n  m: {models: [a, b]}\n  only-a: {models: [a]}\n" + RELIABILITY)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_every_fault_falls_back_within_deadline(stream: bool) -> None:
    async with upstreams(2) as (a, b), serve(config(a, b)) as gw:
        for kind, params in FAULTS:
            a.clear()
            a.inject(kind, times=1, **params)
            before_b = chat_count(b)
            reply = await gw.chat({**user(f"fault {kind}", timeout_s=3), "stream": stream}, timeout=10)
            assert reply.elapsed < 3.5, (kind, reply.elapsed)
            if stream and kind in ("stall", "cutoff", "malformed_sse"):  # these send the role chunk first
                # the first byte had reached the client: reported as an error, never silently retried
                assert reply.status == 200
                assert reply.error_code == "stream_interrupted", (kind, reply.events)
                assert "[DONE]" not in reply.events
                assert chat_count(b) == before_b, f"{kind}: a started stream must not be retried"
                continue
            assert reply.status == 200, (kind, reply.status, reply.body)
            assert reply.text.startswith("echo: fault"), (kind, reply.text)
            assert reply.headers["x-fedinf-model"] == "b", kind
            assert reply.headers["x-fedinf-attempts"] == "2", (kind, reply.headers.get("x-fedinf-attempt-log"))
            log = reply.headers["x-fedinf-attempt-log"]
            assert log.startswith("first a@r0 ") and "retry b@r0 ok" in log, log
            assert chat_count(b) == before_b + 1


async def test_faults_without_fallback_give_clear_errors_in_time() -> None:
    expected = {"status": (503, "backend_unavailable"), "reset": (503, "backend_unavailable"),
                "hang": (504, "backend_timeout"), "slow": (504, "backend_timeout"),
                "malformed_json": (503, "bad_upstream_response")}
    async with upstreams(2) as (a, b), serve(config(a, b)) as gw:
        for kind, params in FAULTS:
            if kind not in expected:
                continue
            a.clear()
            a.inject(kind, **params)  # every attempt fails
            body = {**user("x", timeout_s=2), "model": "only-a"}
            reply = await gw.chat(body, timeout=10)
            assert reply.elapsed < 2.5, (kind, reply.elapsed)
            status, code = expected[kind]
            assert reply.status == status, (kind, reply.status, reply.body)
            assert reply.body["error"]["code"] in (code, "all_targets_failed"), (kind, reply.body)
            assert reply.body["error"]["message"]
        assert chat_count(b) == 0


async def test_request_deadline_covers_every_attempt() -> None:
    async with upstreams(2) as (a, b), serve(config(a, b)) as gw:
        a.hang()
        b.hang()
        reply = await gw.chat(user("both hang", timeout_s=1.0), timeout=10)
        assert reply.status == 504
        assert 0.9 < reply.elapsed < 1.6, reply.elapsed
        stream = await gw.chat({**user("both hang", timeout_s=1.0), "stream": True}, timeout=10)
        assert stream.status == 504 and stream.elapsed < 1.6


async def test_429_and_4xx_are_treated_differently() -> None:
    async with upstreams(2) as (a, b), serve(config(a, b)) as gw:
        a.fail(400, times=1, message="bad field")
        reply = await gw.chat(user("four hundred"), timeout=10)
        assert reply.status == 502 and reply.body["error"]["code"] == "backend_rejected"
        assert chat_count(b) == 0, "a rejection (4xx) is not retried elsewhere"
        a.fail(429, times=1)
        reply = await gw.chat(user("rate limited"), timeout=10)
        assert reply.status == 200 and reply.headers["x-fedinf-model"] == "b"
