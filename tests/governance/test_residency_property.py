"""The core guarantee, property-tested: no upstream ever receives data above its zone's clearance.

Generated requests (3,000 derandomized examples by default; FEDINF_PROPERTY_EXAMPLES=10000 for the full run) mix
sensitive values of known type into every field of the OpenAI chat schema that carries text (message content and
names, tool calls, tool definitions, legacy function calls, refusals, ``user``, ``stop``, ``metadata``,
``prediction``, ``response_format`` schemas), split over two messages or encoded (base64, hex, URL encoding), in
different formats, casing, zero-width and fullwidth tricks, JSON (escaped or not) - and go through the real pipeline
to a network of on-prem, VPC and cloud models. Each model is a real HTTP fake upstream that fails at random (503s,
connection resets, malformed JSON), so fallbacks happen all the time. The assertions are on what the upstreams
*received* (every string of the body, encodings decoded), never on fedinf's internal state.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedinf.data_class import DataClass
from fedinf.gateway import Gateway
from fedinf.privacy.normalize import Normalizer
from fedinf.forwarding import strings
from fedinf.privacy.encodings import decoded_blobs
from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import make_config
from tests.governance.sensitive import sensitive_request

# CI runs a fixed, derandomized 3,000 examples (a few minutes on 2 cores); the full run on demand:
# FEDINF_PROPERTY_EXAMPLES=10000 (or more)
EXAMPLES = int(os.environ.get("FEDINF_PROPERTY_EXAMPLES", "3000"))

ZONES = {
    "onprem": (DataClass.RESTRICTED, None),
    "vpc": (DataClass.CONFIDENTIAL, None),
    "cloud": (DataClass.INTERNAL, None),
    "cloudp": (DataClass.INTERNAL, DataClass.CONFIDENTIAL),  # confidential only once pseudonymized
}
ROUTES = {
    "cloud-first": ["m-cloud", "m-cloudp", "m-vpc", "m-onprem"],
    "cheap": ["m-onprem", "m-vpc", "m-cloudp", "m-cloud"],
    "cloud-only": ["m-cloud", "m-cloudp"],
    "pseudo": ["m-cloudp"],
    "vpc-cloud": ["m-vpc", "m-cloud"],
}


def _config(urls: dict[str, str]) -> str:
    zones = "\n".join(
        f"  {z}: {{kind: {'onprem' if z == 'onprem' else 'vpc' if z == 'vpc' else 'cloud'}, "
        f"clearance: {c.label}{', pseudonymized_clearance: ' + p.label if p else ''}}}"
        for z, (c, p) in ZONES.items())
    models = "\n".join(
        f"  - {{id: m-{z}, backend: openai, zone: {z}, license: Apache-2.0, endpoints: [{{url: '{urls[z]}'}}], "
        f"timeouts: {{connect_s: 1, read_s: 2, total_s: 3}}, capabilities: [tools]}}" for z in ZONES)
    routes = "\n".join(f"  {r}: {{models: [{', '.join(ms)}], strategy: {'cost' if r == 'cheap' else 'priority'}}}"
                       for r, ms in ROUTES.items())
    return f"audit: {{enabled: false}}\nzones:\n{zones}\nmodels:\n{models}\nroutes:\n{routes}\n"


@pytest.fixture(scope="module")
def network() -> Iterator[dict[str, Any]]:
    runner = asyncio.Runner()
    ups = {z: FakeOpenAIUpstream(reply_tokens=4) for z in ZONES}

    async def start() -> Gateway:
        for up in ups.values():
            await up.start()
            up.fail(503, probability=0.25)
            up.reset_connection(probability=0.05)
            up.inject("malformed_json", probability=0.05)
        gw = Gateway.from_config(make_config(_config({z: u.url for z, u in ups.items()}), require_keys=False))
        await gw.start()
        return gw

    gw = runner.run(start())
    yield _Quiet({"runner": runner, "gw": gw, "ups": ups, "stats": {"requests": 0, "received": 0, "refused": 0,
                                                               "pseudonymized": 0, "statuses": {}}})

    async def stop() -> None:
        await gw.aclose()
        for up in ups.values():
            await up.stop()

    runner.run(stop())
    runner.close()


class _Quiet(dict):
    """The fixture's dict, with a short repr so a failing example stays readable."""

    def __repr__(self) -> str:
        return "<network>"


_NORM = Normalizer()


def _received_text(body: dict[str, Any]) -> str:
    """Every string the upstream received (all fields, keys too), normalised, with encoded blobs decoded."""
    pieces = strings(body)
    pieces += [b.decoded for p in pieces for b in decoded_blobs(p)]
    return "\n".join(_NORM.normalize(t).text for t in pieces).lower()


def _leaks(text: str, values: list[str]) -> list[str]:
    flat = re.sub(r"[\s\-]", "", text)
    return [v for v in values if v.lower() in text or re.sub(r"[\s\-]", "", v.lower()) in flat]


@pytest.mark.timeout(max(300, EXAMPLES // 4))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=sensitive_request(), route=st.sampled_from(sorted(ROUTES) + ["m-cloud", "m-vpc", "m-onprem"]),
       declare=st.sampled_from([None, "internal", "confidential", "restricted"]), stream=st.booleans())
def test_no_upstream_receives_data_above_its_clearance(network: dict[str, Any], case: Any, route: str,
                                                       declare: str | None, stream: bool) -> None:
    body, true_class, values = case
    body = {**body, "model": route, "max_tokens": 4, "stream": stream}
    if declare is not None:
        body["fedinf"] = {"data_class": declare}
        if DataClass.parse(declare) > true_class:
            true_class = DataClass.parse(declare)
    ups: dict[str, FakeOpenAIUpstream] = network["ups"]
    for up in ups.values():
        up.forget()

    async def call() -> int:
        reply = await network["gw"].pipeline.chat(body)
        if reply.stream is not None:
            async for _ in reply.stream:
                pass
        return reply.status

    status = network["runner"].run(call())
    stats = network["stats"]
    stats["requests"] += 1
    stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
    assert status < 500 or status in (502, 503, 504), status  # never an internal error
    if status == 403:
        stats["refused"] += 1
    for zone, up in ups.items():
        for received in up.bodies:
            stats["received"] += 1
            clearance, pseudo_clearance = ZONES[zone]
            if true_class <= clearance:
                continue
            # above the zone's own clearance: only allowed pseudonymized, and then no raw value may arrive
            assert pseudo_clearance is not None and true_class <= pseudo_clearance, (
                f"zone {zone} (cleared {clearance.label}) received a {true_class.label} request")
            stats["pseudonymized"] += 1
            leaked = _leaks(_received_text(received), values)
            assert not leaked, f"zone {zone} received raw values of a {true_class.label} request"


def test_property_run_exercised_every_path(network: dict[str, Any]) -> None:
    """Runs after the property test (same module): the random network really did refuse, fall back and pseudonymize."""
    stats = network["stats"]
    if stats["requests"] < EXAMPLES:
        pytest.skip("property test did not run in this session")
    # how much reaches an upstream depends on the random faults (503s, resets) opening breakers and ejecting
    # replicas, and most generated requests are refused (values in every field): a share, not an exact count
    assert stats["refused"] > 0 and stats["pseudonymized"] > 0 and stats["received"] > stats["requests"] // 10
    assert any(s >= 502 for s in stats["statuses"]) and stats["statuses"].get(200, 0) > 0
