"""Bad input gets a clear 4xx in OpenAI's error shape with a stable code: never a 500, never a hang."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import gateway_server

CONFIG = """
server: {max_body_bytes: 20000}
zones:
  onprem: {kind: onprem, clearance: restricted}
  cloud: {kind: cloud, clearance: public}
models:
  - {id: echo, backend: fake, zone: onprem, license: Apache-2.0}
  - {id: cloud-echo, backend: fake, zone: cloud, license: proprietary-api}
  - {id: nostream, backend: fake, zone: onprem, license: Apache-2.0, capabilities: [no_streaming]}
routes:
  auto: [echo]
"""


@pytest.fixture(scope="module")
def server():
    with gateway_server(CONFIG) as s:
        yield s


def post(server: Any, body: bytes | str, *, path: str = "/v1/chat/completions",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(server.url + path, data=data, method="POST",
                                 headers={"content-type": "application/json", **server.auth, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


MSG = [{"role": "user", "content": "hi"}]

CASES = [
    ("malformed json", '{"model": "echo", "messages": [', 400, "invalid_json"),
    ("empty body", "", 400, "invalid_json"),
    ("not utf8", b"\xff\xfe\x00", 400, "invalid_json"),
    ("array body", "[1, 2]", 400, "invalid_body"),
    ("missing messages", json.dumps({"model": "echo"}), 400, "missing_field"),
    ("missing model", json.dumps({"messages": MSG}), 400, "missing_field"),
    ("empty messages", json.dumps({"model": "echo", "messages": []}), 400, "invalid_value"),
    ("messages wrong type", json.dumps({"model": "echo", "messages": "hi"}), 400, "invalid_value"),
    ("bad role", json.dumps({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}), 400,
     "invalid_value"),
    ("empty content", json.dumps({"model": "echo", "messages": [{"role": "user", "content": ""}]}), 400,
     "empty_content"),
    ("temperature wrong type", json.dumps({"model": "echo", "messages": MSG, "temperature": "hot"}), 400,
     "invalid_value"),
    ("temperature out of range", json.dumps({"model": "echo", "messages": MSG, "temperature": 9}), 400,
     "invalid_value"),
    ("n > 1", json.dumps({"model": "echo", "messages": MSG, "n": 3}), 400, "unsupported_n"),
    ("max_tokens zero", json.dumps({"model": "echo", "messages": MSG, "max_tokens": 0}), 400, "invalid_value"),
    ("unknown model", json.dumps({"model": "gpt-9", "messages": MSG}), 404, "model_not_found"),
    ("unknown fedinf key", json.dumps({"model": "echo", "messages": MSG, "fedinf": {"colour": 1}}), 400,
     "invalid_value"),
    ("bad data class", json.dumps({"model": "echo", "messages": MSG, "fedinf": {"data_class": "secret"}}), 400,
     "invalid_value"),
    ("too large", json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x" * 30000}]}), 413,
     "payload_too_large"),
    ("stream unsupported", json.dumps({"model": "nostream", "messages": MSG, "stream": True}), 422,
     "unsupported_parameter"),
    ("grammar unsupported", json.dumps({"model": "echo", "messages": MSG, "fedinf": {"regex": "[a-z]+"}}), 422,
     "unsupported_parameter"),
]


@pytest.mark.parametrize("name,body,status,code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_openai_error_shape(server: Any, name: str, body: Any, status: int, code: str) -> None:
    got_status, payload, _ = post(server, body)
    assert got_status == status, payload
    err = payload["error"]
    assert err["code"] == code
    assert err["message"] and isinstance(err["message"], str)
    assert set(err) >= {"message", "type", "param", "code"}


def test_unknown_openai_fields_are_tolerated(server: Any) -> None:
    status, payload, headers = post(server, json.dumps(
        {"model": "echo", "messages": MSG, "logit_bias": {}, "parallel_tool_calls": False, "some_future_field": 1}))
    assert status == 200
    assert payload["choices"][0]["message"]["content"] == "echo: hi"
    assert headers["x-fedinf-model"] == "echo"


def test_unknown_path_and_method(server: Any) -> None:
    status, payload, _ = post(server, "{}", path="/v1/nothing")
    assert status == 404 and payload["error"]["code"] == "not_found"
    req = urllib.request.Request(server.url + "/v1/chat/completions", method="GET", headers=server.auth)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 405
    assert json.loads(info.value.read())["error"]["code"] == "method_not_allowed"


def test_missing_and_invalid_keys_get_401(server: Any) -> None:
    req = urllib.request.Request(server.url + "/v1/chat/completions", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 401 and json.loads(info.value.read())["error"]["code"] == "missing_api_key"
    status, payload, _ = post(server, json.dumps({"model": "echo", "messages": MSG}),
                              headers={"authorization": "Bearer fk_nope_nope"})
    assert status == 401 and payload["error"]["type"] == "authentication_error"


async def test_a_bug_on_the_chat_fast_lane_is_a_500_in_openai_shape(caplog: Any) -> None:
    """The raw chat endpoint maps an unexpected exception like Starlette's handlers do: a 500 with a reference
    that is in the log, never a dropped connection."""
    import httpx

    from fedinf.config import Config
    from fedinf.gateway import Gateway
    from fedinf.server.app import create_app

    cfg = Config.model_validate({"zones": {"onprem": {"kind": "onprem", "clearance": "restricted"}},
                                 "models": [{"id": "echo", "backend": "fake", "zone": "onprem",
                                             "license": "Apache-2.0"}],
                                 "access": {"require_keys": False}, "audit": {"enabled": False}})
    gw = Gateway.from_config(cfg)

    async def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("boom")

    gw.pipeline.chat = broken  # type: ignore[method-assign]
    app = create_app(gw)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/v1/chat/completions", json={"model": "echo", "messages": MSG})
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["code"] == "internal_error" and "ref " in err["message"]
    assert any("internal error (ref" in rec.getMessage() for rec in caplog.records)
