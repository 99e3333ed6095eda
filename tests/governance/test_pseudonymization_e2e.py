"""Pseudonymization through the whole gateway: the cloud upstream sees placeholders, the caller sees its values,
streamed or not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fedinf.gateway import Gateway
from fedinf.testing.upstream import FakeOpenAIUpstream
from tests.conftest import make_config

CONFIG = """
zones:
  cloud: {{kind: cloud, clearance: internal, pseudonymized_clearance: confidential}}
models:
  - {{id: gpt, backend: openai, zone: cloud, license: proprietary-api, endpoints: [{{url: "{url}"}}]}}
"""

TEXT = "Write to jane.roe@example.com and call +44 20 7946 0958, jane.roe@example.com again"


async def _run(stream: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    async with FakeOpenAIUpstream(reply_tokens=64) as up:
        gw = Gateway.from_config(make_config(CONFIG.format(url=up.url), require_keys=False))
        async with gw:
            reply = await gw.pipeline.chat({"model": "gpt", "stream": stream,
                                        "messages": [{"role": "user", "content": TEXT}]})
            assert reply.status == 200, reply.body
            if stream:
                parts = []
                async for chunk in reply.stream:
                    for ch in chunk.get("choices", []):
                        parts.append(ch["delta"].get("content") or "")
                text = "".join(parts)
            else:
                text = reply.body["choices"][0]["message"]["content"]
            return text, up.bodies[-1], reply.headers


@pytest.mark.parametrize("stream", [False, True])
def test_cloud_sees_placeholders_caller_sees_values(stream: bool) -> None:
    text, received, headers = asyncio.run(_run(stream))
    sent = received["messages"][0]["content"]
    assert "jane.roe" not in sent and "7946" not in sent
    assert sent.count("<EMAIL_ADDRESS_1>") == 2  # the same value gets the same placeholder
    assert "<PHONE_NUMBER_1>" in sent
    assert text == "echo: " + TEXT  # the echo is re-identified before it reaches the caller
    assert headers["x-fedinf-pseudonymized"] == "true"
