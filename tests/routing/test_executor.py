"""The executor on its own, over in-process fake backends: it calls only the decision's targets, falls back on
retryable failures and stops on the others, bounds attempts and time, hands a started stream over, and bounds
structured-output re-asks. (The fault tests cover the same rules end to end against misbehaving HTTP upstreams.)"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from fedinf.backends.fake import FakeBackend
from fedinf.config import parse_config
from fedinf.data_class import DataClass
from fedinf.errors import (AllTargetsFailed, BackendRejected, BackendTimeout, OutputValidationError,
                           ServiceUnavailable)
from fedinf.network import Network
from fedinf.protocol import ChatRequest
from fedinf.routing.decide import Decision, decide
from fedinf.routing.executor import Executor, Result
from fedinf.routing.pool import BackendPool
from fedinf.structured import OutputSpec

ZONES = """
zones:
  onprem: {kind: onprem, clearance: restricted}
  cloud: {kind: cloud, clearance: public}
reliability: {health_interval_s: 0, retries: {max_attempts: %(attempts)d, backoff_base_ms: 0, backoff_cap_ms: 0}}
"""


def build(models: str, routes: str, *, attempts: int = 3) -> tuple[Executor, BackendPool]:
    cfg = parse_config(ZONES % {"attempts": attempts} + "models:\n" + models + "routes:\n" + routes, source="t.yaml")
    pool = BackendPool.build(Network.build(cfg))
    return Executor(pool), pool


def backend(pool: BackendPool, model_id: str) -> FakeBackend:
    b = pool.replicas[model_id][0].backend
    assert isinstance(b, FakeBackend)
    return b


def request(**extra: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "r", "messages": [{"role": "user", "content": "hi there"}], **extra})


def plan(pool: BackendPool, data_class: DataClass = DataClass.PUBLIC, route: str = "r") -> Decision:
    return decide(route, network=pool.network, data_class=data_class)


async def run(ex: Executor, req: ChatRequest, decision: Decision, *, budget_s: float = 5.0,
              output: OutputSpec | None = None) -> Result:
    return await ex.run(req, decision, request_id="req-1", deadline=time.monotonic() + budget_s, output=output)


async def test_only_the_decisions_targets_are_ever_called() -> None:
    ex, pool = build("  - {id: cloud-m, backend: fake, zone: cloud, license: MIT}\n"
                     "  - {id: local-m, backend: fake, zone: onprem, license: MIT, options: {reply: safe}}\n",
                     "  r: [cloud-m, local-m]\n")
    decision = plan(pool, DataClass.RESTRICTED)
    assert [t.model_id for t in decision.targets] == ["local-m"]
    result = await run(ex, request(), decision)
    assert result.target.model_id == "local-m" and result.completion is not None
    assert not backend(pool, "cloud-m").received  # never called, not even as a fallback
    assert [(a.model, a.outcome, a.kind) for a in result.attempts] == [("local-m", "ok", "first")]


async def test_a_retryable_failure_falls_back_to_the_next_target() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT, options: {fail: unavailable}}\n"
                     "  - {id: b, backend: fake, zone: cloud, license: MIT, options: {reply: from b}}\n",
                     "  r: [a, b]\n")
    result = await run(ex, request(), plan(pool))
    assert result.target.model_id == "b"
    assert result.completion is not None and result.completion["choices"][0]["message"]["content"] == "from b"
    assert [(a.model, a.outcome, a.kind) for a in result.attempts] == [
        ("a", "backend_unavailable", "first"), ("b", "ok", "retry")]
    assert pool.inflight == 0


async def test_a_non_retryable_failure_stops_at_once() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT, options: {fail: rejected}}\n"
                     "  - {id: b, backend: fake, zone: cloud, license: MIT}\n",
                     "  r: [a, b]\n")
    with pytest.raises(BackendRejected) as err:
        await run(ex, request(), plan(pool))
    assert not backend(pool, "b").received
    assert [a["model"] for a in err.value.details["attempts_made"]] == ["a"]


async def test_attempts_are_bounded_and_every_failure_is_reported() -> None:
    models = "".join(f"  - {{id: m{i}, backend: fake, zone: cloud, license: MIT, options: {{fail: timeout}}}}\n"
                     for i in range(4))
    ex, pool = build(models, "  r: [m0, m1, m2, m3]\n", attempts=2)
    with pytest.raises(BackendTimeout) as err:
        await run(ex, request(), plan(pool))
    called = [m for m in ("m0", "m1", "m2", "m3") if backend(pool, m).received]
    assert called == ["m0", "m1"]
    assert len(err.value.details["attempts_made"]) == 2


async def test_different_failures_become_all_targets_failed() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT, options: {fail: unavailable}}\n"
                     "  - {id: b, backend: fake, zone: cloud, license: MIT, options: {fail: timeout}}\n",
                     "  r: [a, b]\n", attempts=2)
    with pytest.raises(AllTargetsFailed) as err:
        await run(ex, request(), plan(pool))
    assert [a["code"] for a in err.value.details["attempts"]] == ["backend_unavailable", "backend_timeout"]
    assert err.value.status_code == 504  # the last failure decides the status


async def test_the_deadline_covers_every_attempt() -> None:
    ex, pool = build("  - {id: slow, backend: fake, zone: cloud, license: MIT, options: {delay_s: 5}}\n"
                     "  - {id: b, backend: fake, zone: cloud, license: MIT}\n",
                     "  r: [slow, b]\n")
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout) as err:
        await run(ex, request(), plan(pool), budget_s=0.3)
    assert time.monotonic() - t0 < 1.5  # the slow call was cut at the deadline, not after its 5 s
    assert not backend(pool, "b").received  # no time was left for the fallback: skipped, not sent
    assert [(a["model"], a["outcome"]) for a in err.value.details["attempts_made"]] == [
        ("slow", "backend_timeout"), ("b", "skipped:deadline")]


async def test_nothing_is_sent_after_the_deadline() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT}\n", "  r: [a]\n")
    with pytest.raises(BackendTimeout):
        await ex.run(request(), plan(pool), request_id="late", deadline=time.monotonic() - 1)
    assert not backend(pool, "a").received


async def test_a_stream_is_handed_over_after_its_first_chunk() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT, options: {reply: one two three}}\n",
                     "  r: [a]\n")
    decision = decide("r", network=pool.network, data_class=DataClass.PUBLIC)
    result = await run(ex, request(stream=True), decision)
    assert result.stream is not None and result.completion is None
    assert pool.inflight == 1  # the request is in flight until its stream ends
    chunks = [c async for c in result.stream]
    text = "".join((c.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for c in chunks
                   if c.get("choices"))
    assert text == "one two three" and chunks[-1]["usage"]["completion_tokens"] == 3
    assert pool.inflight == 0


def _schema_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "n", "schema": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}}}


async def test_structured_output_is_validated_and_re_asks_are_bounded() -> None:
    ex, pool = build("  - {id: good, backend: fake, zone: cloud, license: MIT, capabilities: [json_schema],"
                     " options: {reply: '{\"n\": 3}'}}\n"
                     "  - {id: bad, backend: fake, zone: cloud, license: MIT, capabilities: [json_schema],"
                     " options: {reply: 'not json'}}\n",
                     "  r: [good]\n  r2: [bad]\n")
    spec = OutputSpec.from_request(_schema_format(), None, None)
    result = await run(ex, request(response_format=_schema_format()), plan(pool), output=spec)
    assert result.completion is not None and json.loads(result.completion["choices"][0]["message"]["content"]) == {
        "n": 3}
    assert result.structured is not None and result.structured["attempts"] == 1
    req = request(response_format=_schema_format(), fedinf={"max_reasks": 1})
    with pytest.raises(OutputValidationError) as err:
        await run(ex, req, plan(pool, route="r2"), output=spec)
    assert len(backend(pool, "bad").received) == 2  # the first answer and one re-ask, no more
    assert [a["outcome"] for a in err.value.details["attempts_made"]] == ["output_invalid", "output_invalid"]


async def test_a_closing_pool_refuses_new_requests() -> None:
    ex, pool = build("  - {id: a, backend: fake, zone: cloud, license: MIT}\n", "  r: [a]\n")
    await pool.drain(0.1)
    with pytest.raises(ServiceUnavailable) as err:
        await run(ex, request(), plan(pool))
    assert err.value.code == "shutting_down"
    await asyncio.sleep(0)
