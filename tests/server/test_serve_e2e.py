"""What a user does: `fedinf serve` as a real process, the official openai SDK as the client, over loopback.

Backends: the real embedded local model (SmolLM2, tiny prompts), the `openai` backend to fake OpenAI-compatible
upstreams run as real servers (error mapping, upstream timeouts, fallback along a route), and the `anthropic`
backend to a fake Messages-API server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import ServeProcess, UpstreamProcess

CONFIG = """
server: {{state_dir: {state}}}
zones:
  onprem: {{kind: onprem, clearance: restricted}}
  cloud: {{kind: cloud, clearance: internal}}
models:
  - {{id: smollm2, backend: local, zone: onprem, license: Apache-2.0, options: {{n_ctx: 1024, parallel: 2}}}}
  - id: up-a
    backend: openai
    zone: onprem
    license: Apache-2.0
    upstream_model: served-a
    endpoints: [{{url: "{a}/v1"}}]
    timeouts: {{connect_s: 1, read_s: 2, total_s: 3}}
  - id: up-b
    backend: openai
    zone: onprem
    license: Apache-2.0
    endpoints: [{{url: "{b}/v1"}}]
    timeouts: {{connect_s: 1, read_s: 2, total_s: 3}}
  - id: claude
    backend: anthropic
    zone: cloud
    license: proprietary-api
    upstream_model: claude-test
    endpoints: [{{url: "{anth}", api_key_env: FAKE_ANTHROPIC_KEY}}]
routes:
  auto: [up-a, up-b]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("e2e")
    with UpstreamProcess() as a, UpstreamProcess() as b, \
            UpstreamProcess("fedinf.testing.anthropic_upstream") as anth:
        cfg = tmp / "fedinf.yaml"
        cfg.write_text(CONFIG.format(state=tmp / "state", a=a.origin, b=b.origin, anth=anth.origin))
        with ServeProcess(cfg, env={"FAKE_ANTHROPIC_KEY": "sk-ant-test"}, log_dir=tmp) as srv:
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key=srv.admin_key(), max_retries=0, timeout=60)
            yield {"client": client, "a": a, "b": b, "anth": anth, "srv": srv}


@pytest.fixture(autouse=True)
def _clear_faults(stack: dict[str, Any]) -> None:
    for up in (stack["a"], stack["b"], stack["anth"]):
        up.control(action="clear")


def _text(stream: Any) -> tuple[str, list[Any]]:
    chunks = list(stream)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


@pytest.mark.model
def test_local_model_plain_and_streamed(stack: dict[str, Any]) -> None:
    client = stack["client"]
    r = client.chat.completions.create(model="smollm2", max_tokens=8,
                                       messages=[{"role": "user", "content": "Say hi"}])
    assert r.choices[0].message.content and r.usage.completion_tokens > 0 and r.model == "smollm2"
    text, chunks = _text(client.chat.completions.create(
        model="smollm2", max_tokens=8, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count: 1, 2,"}]))
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_backend_plain_and_streamed(stack: dict[str, Any]) -> None:
    client = stack["client"]
    raw = client.chat.completions.with_raw_response.create(
        model="up-a", messages=[{"role": "user", "content": "ping pong"}])
    assert raw.parse().choices[0].message.content.startswith("echo: ping pong")
    assert raw.headers["x-fedinf-model"] == "up-a"
    seen = stack["a"].stats()
    assert "served-a" in str(seen)  # the upstream got the upstream model name, not fedinf's id
    text, _ = _text(client.chat.completions.create(model="up-a", stream=True,
                                                   messages=[{"role": "user", "content": "stream it"}]))
    assert text.startswith("echo: stream it")


def test_route_falls_back_to_next_model_on_upstream_503(stack: dict[str, Any]) -> None:
    stack["a"].control(action="inject", kind="status", status=503)
    raw = stack["client"].chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "fall back"}])
    assert raw.parse().choices[0].message.content.startswith("echo: fall back")
    assert raw.headers["x-fedinf-model"] == "up-b"


def test_upstream_errors_are_mapped(stack: dict[str, Any]) -> None:
    client = stack["client"]
    stack["a"].control(action="inject", kind="status", status=400, message="bad thing")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="up-a", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "backend_rejected"
    stack["a"].control(action="clear")
    stack["a"].control(action="inject", kind="malformed_json")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="up-a", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code in (502, 503)


def test_upstream_timeout_ends_within_deadline(stack: dict[str, Any]) -> None:
    stack["a"].control(action="inject", kind="hang")
    stack["b"].control(action="inject", kind="hang")
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        stack["client"].chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    elapsed = time.monotonic() - t0
    assert info.value.status_code == 504, info.value.body
    assert elapsed < 8, elapsed


def test_anthropic_backend_plain_and_streamed(stack: dict[str, Any]) -> None:
    client = stack["client"]
    r = client.chat.completions.create(model="claude", max_tokens=30, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello model"}])
    assert r.choices[0].message.content.startswith("echo: hello model")
    assert r.usage.prompt_tokens > 0
    text, chunks = _text(client.chat.completions.create(
        model="claude", max_tokens=30, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream this"}]))
    assert text.startswith("echo: stream this")
    assert chunks[-1].usage is not None


def test_models_endpoint_lists_zone_and_license(stack: dict[str, Any]) -> None:
    models = {m.id: m for m in stack["client"].models.list().data}
    assert models["smollm2"].fedinf["zone"] == "onprem" and models["claude"].fedinf["license"] == "proprietary-api"


def test_serve_with_two_workers(tmp_path: Path) -> None:
    """`--workers 2` starts two processes sharing one port, one key store and one audit chain."""
    cfg = tmp_path / "w.yaml"
    cfg.write_text(f"server: {{state_dir: {tmp_path / 'state'}}}\nzones:\n  z: {{kind: onprem, clearance: restricted}}"
                   "\nmodels:\n  - {id: echo, backend: fake, zone: z, license: MIT}\n")
    with ServeProcess(cfg, args=["--workers", "2"], log_dir=tmp_path) as srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key=srv.admin_key(), max_retries=0, timeout=30)
        for i in range(6):
            r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": f"n{i}"}])
            assert r.choices[0].message.content == f"echo: n{i}"
        assert srv.output().count("fk_") == 1  # the bootstrap key is created and printed once
