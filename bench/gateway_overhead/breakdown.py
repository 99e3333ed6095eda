"""Where fedinf's per-request CPU goes, step by step, measured in-process (no sockets, no other processes).

Each step of the non-streamed hot path is timed alone with ``timeit`` (best of several repeats, so other load on the
machine matters little), on the same ~200-token request the gateway bench sends, then the whole pipeline
(``Pipeline.chat``) is timed against the in-process ``fake`` backend. The difference between the gateway's CPU per
request in the HTTP bench and the pipeline total is the HTTP layers (uvicorn + httptools, Starlette, the aiohttp
client and the kernel's loopback sockets).

    PYTHONPATH=src .venv/bin/python bench/gateway_overhead/breakdown.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIG = """
server: {host: 127.0.0.1, state_dir: %(state)s}
zones: {cloud: {kind: cloud, clearance: public}}
models:
  - {id: mock, backend: fake, zone: cloud, license: proprietary-api, options: {reply: "echo: a short answer"}}
access: {require_keys: false}
audit: {enabled: false}
"""

#: A typical upstream answer (what the mock returns for the bench request), for the decode/encode steps.
COMPLETION = {"id": "chatcmpl-fake-1", "created": 1790000000, "model": "mock", "object": "chat.completion",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: Our customer support team "
                                                   "received the following message this morning and needs a"},
                           "finish_reason": "length", "logprobs": None}],
              "usage": {"prompt_tokens": 190, "completion_tokens": 16, "total_tokens": 206}}


def best_us(fn: Callable[[], Any], number: int = 300, repeat: int = 5) -> float:
    """Best-of-``repeat`` mean time of ``fn`` in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def steps(body_bytes: bytes, work: Path) -> list[tuple[str, float]]:
    """(step, microseconds) for each hot-path step, then the whole pipeline with the fake backend."""
    from fedinf.backends.http import dumps, loads
    from fedinf.config import load_config
    from fedinf.gateway import Gateway
    from fedinf.pipeline import Trace, needs, parse_chat
    from fedinf.routing.decide import decide
    from fedinf.server.errors import json_response

    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "breakdown.yaml"
    cfg_path.write_text(CONFIG % {"state": work / "state-breakdown"})
    gw = Gateway.from_config(load_config(cfg_path))
    body = json.loads(body_bytes)
    request = parse_chat(body)
    pipe = gw.pipeline
    cls = pipe.classify(request, Trace(request_id="x", started=0.0))
    decision = decide("mock", network=gw.network, data_class=cls.data_class, needs=needs(request))
    raw_completion = json.dumps(COMPLETION).encode()
    trace = Trace(request_id="x" * 32, started=time.monotonic(), decision=decision, classification=cls)
    out = [
        ("json.loads(request body)", best_us(lambda: json.loads(body_bytes))),
        ("parse_chat (pydantic ChatRequest)", best_us(lambda: parse_chat(body))),
        ("classify (PII detectors)", best_us(lambda: pipe.classify(request, Trace(request_id="x", started=0.0)), number=100)),
        ("decide", best_us(lambda: decide("mock", network=gw.network, data_class=cls.data_class,
                                          needs=needs(request)))),
        ("upstream_body + dumps", best_us(lambda: dumps(request.upstream_body(model="mock", stream=False)))),
        ("loads(upstream answer)", best_us(lambda: loads(raw_completion))),
        ("Trace.headers", best_us(trace.headers)),
        ("json_response(completion)", best_us(lambda: json_response(COMPLETION, 200, {"x": "y"}))),
    ]
    out.append(("metrics.observe", best_us(lambda: gw.metrics.observe(trace))))

    async def pipeline(n: int, repeat: int) -> float:
        await gw.start()
        try:
            for _ in range(50):
                await pipe.chat(body)
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(n):
                    await pipe.chat(body)
                best = min(best, (time.perf_counter() - t0) / n * 1e6)
            return best
        finally:
            await gw.aclose()

    total = asyncio.run(pipeline(100, 7))
    out.append(("**Pipeline.chat total (fake backend, in-process)**", total))
    return out


def markdown(rows: list[tuple[str, float]]) -> str:
    from bench.common import results

    return results.table(["step (non-streamed hot path)", "µs per request (best of 5)"],
                         [[name, f"{us:.1f}"] for name, us in rows])


def main() -> None:
    from bench.gateway_overhead.run import WORK, request_body

    print(markdown(steps(request_body(False), WORK)))


if __name__ == "__main__":
    main()
