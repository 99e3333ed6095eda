"""Cascade escalation (exactly when the output check fails, never outside the eligible set), graceful shutdown, and
the attempts in the audit trail."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from fault_harness import ZONES, build_gateway, chat_count, model_yaml, serve, upstreams, user
from fedinf.audit import AuditRecord
from fedinf.errors import ServiceUnavailable

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
CAPS = "    capabilities: [json_schema]\n"


def cascade_config(small: Any, big: Any, cloud: Any) -> str:
    return (ZONES + "models:" + model_yaml("small", [small], extra=CAPS)
            + model_yaml("big", [big], zone="vpc", extra=CAPS)
            + model_yaml("cloudm", [cloud], zone="cloud", extra=CAPS)
            + "routes:\n  m: {models: [cloudm, big, small], strategy: cascade}\n"
            + "reliability: {health_interval_s: 0}\n")


def structured(data_class: str = "confidential", **fedinf: Any) -> dict[str, Any]:
    return {**user("give me n", data_class=data_class, **fedinf),
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}}}


async def test_cascade_escalates_exactly_when_the_check_fails() -> None:
    async with upstreams(3) as (small, big, cloud), serve(cascade_config(small, big, cloud)) as gw:
        # the small on-prem model passes the check: nobody else is asked
        small.script('{"n": 1}')
        r = await gw.chat(structured())
        assert r.status == 200 and json.loads(r.text) == {"n": 1}
        assert r.headers["x-fedinf-model"] == "small" and r.headers["x-fedinf-strategy"] == "cascade"
        assert (chat_count(small), chat_count(big), chat_count(cloud)) == (1, 0, 0)

        # it fails the check: escalate once to the next eligible model (no re-ask of the small one)
        big.script('{"n": 2}')
        r = await gw.chat(structured())
        assert r.status == 200 and json.loads(r.text) == {"n": 2}
        assert r.headers["x-fedinf-model"] == "big"
        log = r.headers["x-fedinf-attempt-log"]
        assert log.startswith("first small@r0 output_invalid") and "escalation big@r0 ok" in log, log
        assert (chat_count(small), chat_count(big), chat_count(cloud)) == (2, 1, 0)

        # both eligible models fail: a clear 422; the cloud model (not cleared for confidential) is never asked
        r = await gw.chat(structured())
        assert r.status == 422 and r.body["error"]["code"] == "output_validation_failed"
        assert chat_count(cloud) == 0, "escalation never leaves the eligible set"
        assert chat_count(small) == 3 and chat_count(big) == 1 + 3, "the last eligible model gets its re-asks"
        assert "x-fedinf-excluded" in r.headers and "cloudm:clearance" in r.headers["x-fedinf-excluded"]

        # public data: the cloud model is eligible too and the cascade goes on to it
        cloud.script('{"n": 3}')
        r = await gw.chat(structured("public"))
        assert r.status == 200 and r.headers["x-fedinf-model"] == "cloudm" and json.loads(r.text) == {"n": 3}
        assert [a.split()[0] for a in r.headers["x-fedinf-attempt-log"].split(", ")] == \
            ["first", "escalation", "escalation"]


async def test_cascade_backend_failure_is_a_retry_not_an_escalation() -> None:
    async with upstreams(3) as (small, big, cloud), serve(cascade_config(small, big, cloud)) as gw:
        small.fail(503, times=1)
        big.script('{"n": 5}')
        r = await gw.chat(structured())
        assert r.status == 200 and r.headers["x-fedinf-model"] == "big"
        assert "retry big@r0 ok" in r.headers["x-fedinf-attempt-log"]
        assert chat_count(cloud) == 0


async def test_graceful_shutdown_finishes_in_flight_streams() -> None:
    async with upstreams(1, token_delay_ms=80, reply_tokens=10) as ups:
        cfg = ZONES + "models:" + model_yaml("pool", ups) + "routes:\n  m: [pool]\nreliability: {health_interval_s: 0}\n"
        async with serve(cfg, grace_s=5) as gw:
            body = {**user("one two three four five six seven eight nine"), "stream": True}
            in_flight = asyncio.create_task(gw.chat(body, timeout=10))
            while chat_count(ups[0]) == 0:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            gw.server.should_exit = True  # what SIGTERM does
            await asyncio.sleep(0.2)
            with pytest.raises(aiohttp.ClientError):  # no longer accepting
                async with aiohttp.ClientSession() as fresh:
                    await fresh.get(gw.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2))
            reply = await in_flight
            assert reply.status == 200 and reply.events[-1] == "[DONE]"
            assert reply.text == "echo: one two three four five six seven eight nine"
            await asyncio.wait_for(gw.task, timeout=6)
            assert gw.gateway.pool.closing and gw.gateway.pool.inflight == 0


async def test_python_api_close_drains_in_flight_requests() -> None:
    async with upstreams(1, delay_ms=300) as ups:
        cfg = ZONES + "models:" + model_yaml("pool", ups) + "reliability: {health_interval_s: 0}\n"
        gw = build_gateway(cfg)
        await gw.start()
        body = {"model": "pool", "messages": [{"role": "user", "content": "slow one"}]}
        pending = asyncio.create_task(gw.chat(body))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(gw.aclose())
        await asyncio.sleep(0.05)
        with pytest.raises(ServiceUnavailable):
            await gw.chat(body)
        done = await pending
        assert done["choices"][0]["message"]["content"] == "echo: slow one"
        await closing
        assert gw.pool.inflight == 0


async def test_attempts_reach_the_audit_trail(tmp_path: Any) -> None:
    from fedinf.config import parse_config
    from fedinf.gateway import Gateway

    async with upstreams(2) as (a, b):
        cfg = (ZONES + "models:" + model_yaml("a", [a]) + model_yaml("b", [b])
               + "routes:\n  m: [a, b]\nreliability: {health_interval_s: 0}\n"
               + f"server: {{state_dir: {tmp_path}}}\naccess: {{require_keys: false}}\n")
        records: list[Any] = []

        class Recorder:  # stands in for the durable auditor (an AuditSink): receives the record built from the trace
            async def start(self) -> None:
                return None

            def begin(self, make: Any) -> None:
                return None

            async def write(self, record: Any, intent: Any = None) -> None:
                records.append(AuditRecord.from_dict(record.to_dict()))  # read back as the schema reads it

            async def flush(self) -> None:
                return None

            async def aclose(self) -> None:
                return None

        gw = Gateway.from_config(parse_config(cfg), access=None, auditor=Recorder())
        async with gw:
            a.fail(502, times=1)
            await gw.chat({"model": "m", "messages": [{"role": "user", "content": "audit me"}]})
            a.fail(503)
            b.fail(503)
            with pytest.raises(Exception):
                await gw.chat({"model": "m", "messages": [{"role": "user", "content": "all down"}]})
        ok, failed = records[-2], records[-1]
        assert [(x.model, x.outcome, x.error_code) for x in ok.decision.attempts] == \
            [("a", "error", "backend_unavailable"), ("b", "ok", None)]
        assert ok.decision.chosen_model == "b"
        assert failed.status == 503 and failed.decision.chosen_model is None
        assert [x.model for x in failed.decision.attempts if x.outcome == "error"][:2] == ["a", "b"], \
            "a failed request still records every attempt"


async def test_latency_strategy_moves_to_the_fastest_observed_model() -> None:
    async with upstreams(2, delay_ms=0) as (slow, fast):
        slow.delay_ms = 150
        fast.delay_ms = 5
        cfg = (ZONES + "models:" + model_yaml("slowm", [slow]) + model_yaml("fastm", [fast])
               + "routes:\n  m: {models: [slowm, fastm], strategy: latency}\nreliability: {health_interval_s: 0}\n")
        async with serve(cfg) as gw:
            served = [(await gw.chat(user(f"which {i}"))).headers["x-fedinf-model"] for i in range(6)]
            # unmeasured models are tried first (optimistic), then the fastest observed one keeps the traffic
            assert set(served[:2]) == {"slowm", "fastm"}, served
            assert served[2:] == ["fastm"] * 4, served


async def test_models_cli_shows_replica_state(tmp_path: Any) -> None:
    import subprocess
    import sys

    async with upstreams(2) as (up, down):
        down.fail(503, scope="all")
        cfg = tmp_path / "f.yaml"
        cfg.write_text(ZONES + "models:" + model_yaml("pool", [up, down]) + "reliability: {unhealthy_after: 1}\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fedinf", "models", "--config", str(cfg), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env={**__import__("os").environ, "COLUMNS": "250"})
        out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
        assert proc.returncode == 0, out
        assert "1/2 healthy" in out and "r1: unhealthy" in out, out
