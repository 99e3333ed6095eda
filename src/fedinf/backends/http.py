"""Shared plumbing of the HTTP backends (``openai``, ``anthropic``): one connection pool per backend, deadlines,
a fast Server-Sent-Events reader and the mapping of transport failures to :mod:`fedinf.errors`.

Contract of :class:`HttpUpstream`:

- the :class:`~fedinf.backends.h1.Pool` (a lean HTTP/1.1 client, see :mod:`fedinf.backends.h1` for why not aiohttp)
  is created lazily on first use (inside the running loop) and reused: keep-alive connections are pooled per backend
  instance; :meth:`HttpUpstream.aclose` releases them;
- every call takes an absolute ``deadline`` (``time.monotonic()``); the call never outlives it. ``connect_s`` bounds
  the TCP/TLS connect, ``read_s`` bounds any silence while waiting for bytes;
- redirects are not followed (API keys in custom headers must not travel to another host): a 3xx is an error;
- failures become fedinf errors, never the transport's: connection refused/reset and upstream 429/5xx ->
  :class:`BackendUnavailable`; timeouts -> :class:`BackendTimeout`; upstream 4xx -> :class:`BackendRejected`;
  messages name the upstream and the status, never the request content.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fedinf import jsoncodec
from fedinf.backends import h1
from fedinf.errors import (
    BackendError, BackendRejected, BackendTimeout, BackendUnavailable, ConfigError, StreamInterrupted,
)

if TYPE_CHECKING:
    from fedinf.config import Endpoint, ModelSpec

#: Longest SSE line accepted before the stream counts as malformed.
MAX_SSE_LINE = 8 * 1024 * 1024

#: Upstream statuses that mean "try again / elsewhere" (besides every 5xx).
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})

_json_loads = jsoncodec.loads


def loads(data: bytes | str) -> Any:
    """Decode JSON; bytes are decoded as UTF-8 first (faster than json's encoding sniffing). Raises ValueError."""
    return _json_loads(data)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (no ASCII escaping: upstreams take UTF-8)."""
    return jsoncodec.dumps(obj)


BAD_RESPONSE = "bad_upstream_response"


def bad_response(name: str, what: str) -> BackendUnavailable:
    """The error for an upstream answer fedinf cannot parse: retryable, code ``bad_upstream_response``."""
    return BackendUnavailable(f"upstream {name} {what}", code=BAD_RESPONSE, details={"upstream": name})


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def upstream_error_info(raw: bytes) -> tuple[str, str | None, str | None]:
    """(message, code, type) from an upstream error body in any common shape.

    Shapes: OpenAI/vLLM ``{"error": {"message", "code", "type"}}``, vLLM ``{"object": "error", "message", "code"}``,
    TGI ``{"error": "text", "error_type": ...}``, Anthropic ``{"type": "error", "error": {"type", "message"}}``, or
    plain text.
    """
    try:
        body = loads(raw)
    except ValueError:
        return _clip(raw.decode("utf-8", "replace")) or "(empty body)", None, None
    if not isinstance(body, dict):
        return _clip(str(body)), None, None
    err = body.get("error", body)
    if isinstance(err, str):
        return _clip(err), None, _str(body.get("error_type"))
    if not isinstance(err, dict):
        return _clip(str(err)), None, None
    message = err.get("message") or err.get("detail") or body.get("message") or "(no message)"
    return _clip(str(message)), _str(err.get("code")), _str(err.get("type"))


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def status_error(name: str, status: int, raw: bytes, *, headers: Any = None, hint: str = "") -> BackendError:
    """Map a non-2xx upstream answer to the fedinf error a caller should see.

    429 and 5xx (and 408/409/425) are retryable (:class:`BackendUnavailable`), carrying ``retry_after`` in details
    when the upstream sent one; other 4xx are :class:`BackendRejected` with the upstream's message and code.
    """
    message, code, etype = upstream_error_info(raw)
    details: dict[str, Any] = {"upstream": name, "upstream_status": status}
    if code is not None:
        details["upstream_code"] = code
    if etype is not None:
        details["upstream_type"] = etype
    if status >= 500 or status in RETRYABLE_STATUSES:
        retry_after = headers.get("retry-after") if headers is not None else None
        if retry_after:
            details["retry_after"] = retry_after
        # 5xx/429 messages may echo input; only the status and error type leave fedinf.
        kind = f" ({etype})" if etype else ""
        return BackendUnavailable(f"upstream {name} answered HTTP {status}{kind}", details=details)
    return BackendRejected(f"upstream {name} rejected the request (HTTP {status}): {message}{hint}", details=details)


def transport_error(name: str, exc: BaseException, *, started: bool) -> BackendError:
    """Map a transport (:mod:`fedinf.backends.h1`) exception; ``started`` = a chunk already reached the caller
    (never retry then)."""
    if isinstance(exc, BackendError):
        if started and not isinstance(exc, StreamInterrupted):
            return StreamInterrupted(f"stream from upstream {name} failed after it started: {exc.message}",
                                     details={**exc.details, "cause": exc.code})
        return exc
    if isinstance(exc, (h1.Timeout, asyncio.TimeoutError)):
        what = exc.what if isinstance(exc, h1.Timeout) else "deadline"
        if what == "deadline":
            msg = f"upstream {name} did not finish before the request deadline"
        else:
            msg = f"upstream {name} timed out ({what} timeout)"
        if started:
            return StreamInterrupted(msg + " after the stream started", details={"upstream": name,
                                                                                 "cause": "backend_timeout"})
        return BackendTimeout(msg, details={"upstream": name})
    if isinstance(exc, h1.ConnectFailed):
        return BackendUnavailable(f"cannot connect to upstream {name}: {exc.strerror}", details={"upstream": name})
    kind = type(exc).__name__
    if isinstance(exc, h1.BadResponse):
        return bad_response(name, f"sent a malformed HTTP response: {exc}")
    if started:
        return StreamInterrupted(f"stream from upstream {name} broke after it started ({kind})",
                                 details={"upstream": name})
    return BackendUnavailable(f"connection to upstream {name} failed ({kind})", details={"upstream": name})


def check_options(spec: "ModelSpec", allowed: dict[str, type], backend: str) -> dict[str, Any]:
    """``spec.options`` checked against ``allowed`` (name -> type); unknown names or wrong types -> ConfigError.
    Integers must be >= 1; ``headers`` must map names to strings."""
    unknown = set(spec.options) - set(allowed)
    if unknown:
        raise ConfigError(f"model {spec.id!r}: unknown option(s) {sorted(unknown)} for the {backend} backend; "
                          f"known options: {sorted(allowed)}")
    names = {bool: "true or false", int: "a positive integer", str: "a string", dict: "a mapping"}
    for key, value in spec.options.items():
        kind = allowed[key]
        ok = isinstance(value, kind) and not (isinstance(value, int) and kind is int
                                              and (isinstance(value, bool) or value < 1))
        if kind is dict and ok:
            ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        if not ok:
            what = "a mapping of header names to strings" if key == "headers" else names[kind]
            raise ConfigError(f"model {spec.id!r}: options.{key} must be {what}")
    return spec.options


def replica_name(spec: "ModelSpec", endpoint: "Endpoint | None") -> str:
    """``model@replica`` for messages: the endpoint's ``name``, else its host:port (never credentials)."""
    if endpoint is not None and endpoint.name:
        return f"{spec.id}@{endpoint.name}"
    if endpoint is not None and endpoint.url:
        host = urlsplit(endpoint.url).netloc.rpartition("@")[2]
        return f"{spec.id}@{host}"
    return spec.id


def key_hint(endpoint: "Endpoint | None") -> str:
    if endpoint is not None and endpoint.api_key_env and endpoint.api_key() is None:
        return f" (the API key variable {endpoint.api_key_env} is not set)"
    return ""



class HttpUpstream:
    """A pooled HTTP client for one upstream endpoint (one replica).

    ``base_headers`` go on every request (auth, versions, user-configured extras). ``name`` identifies the upstream
    in error messages (the model id and replica, never a secret).
    """

    def __init__(
        self, *, name: str, base_headers: dict[str, str], connect_s: float, read_s: float,
        max_connections: int = 256,
    ) -> None:
        self.name = name
        self.base_headers = {"content-type": "application/json", "accept": "application/json", **base_headers}
        self._head = h1.header_block(self.base_headers)  # checked and encoded once, sent with every call
        self.connect_s = connect_s
        self.read_s = read_s
        self.max_connections = max_connections
        self._pool: h1.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def pool(self) -> h1.Pool:
        """The connection pool of the running event loop (a new loop, e.g. a second ``asyncio.run``, gets a new
        one; the old one's idle connections are closed)."""
        pool = self._pool
        loop = asyncio.get_running_loop()
        if pool is None or loop is not self._loop:
            if pool is not None:
                _abandon(pool)
            self._loop = loop
            pool = self._pool = h1.Pool(limit=self.max_connections, keepalive_s=30.0)
        return pool

    def _headers(self, extra: Mapping[str, str] | None) -> bytes:
        return self._head + h1.header_block(extra) if extra else self._head

    async def _send(self, method: str, url: str, body: bytes, deadline: float,
                    headers: Mapping[str, str] | None, read_s: float | None = None) -> h1.Response:
        if deadline - time.monotonic() <= 0:
            raise BackendTimeout(f"request deadline passed before calling upstream {self.name}",
                                 details={"upstream": self.name})
        return await self.pool().request(method, url, headers=self._headers(headers), body=body, deadline=deadline,
                                         connect_s=self.connect_s, read_s=read_s or self.read_s)

    async def post_json(self, url: str, body: bytes, deadline: float, *, hint: str = "",
                        headers: Mapping[str, str] | None = None) -> Any:
        """POST ``body`` and return the decoded JSON answer (any 2xx); map every failure to a fedinf error.
        ``headers`` are added to the base headers for this call only."""
        try:
            resp = await self._send("POST", url, body, deadline, headers)
            raw = await resp.read()
        except BackendError:
            raise
        except (h1.TransportError, asyncio.TimeoutError, OSError) as exc:
            raise transport_error(self.name, exc, started=False) from None
        if resp.status >= 300:
            raise status_error(self.name, resp.status, raw, headers=resp.headers, hint=hint)
        return self._decode(raw, resp.status)

    def _decode(self, raw: bytes, status: int) -> Any:
        try:
            return loads(raw)
        except ValueError:
            raise bad_response(self.name, f"sent malformed JSON (HTTP {status})") from None

    async def sse(
        self, url: str, body: bytes, deadline: float, *, translate: Callable[[bytes], Iterable[dict[str, Any]]],
        finish: Callable[[], dict[str, Any]], hint: str = "",
        on_json: Callable[[Any], Iterable[dict[str, Any]]] | None = None, headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """POST ``body`` and stream the answer: each SSE payload goes through ``translate`` (which returns the
        chunks to yield, possibly none, and raises fedinf errors on bad events); at the end of the stream
        ``finish()`` gives the last chunk (or raises :class:`BackendUnavailable` if the upstream stopped early).
        An upstream that ignores ``stream`` and answers one JSON document is handled by ``on_json`` (when given).

        Failures before the first yielded chunk keep their retryable class; after it they become
        :class:`StreamInterrupted`. Closing the iterator early closes the connection (the upstream stops).
        """
        started = False
        resp = None
        try:
            resp = await self._send("POST", url, body, deadline, headers)
            if resp.status >= 300:
                raise status_error(self.name, resp.status, await resp.read(), headers=resp.headers, hint=hint)
            if on_json is not None and resp.content_type == "application/json":
                chunks: Iterable[dict[str, Any]] = on_json(self._decode(await resp.read(), resp.status))
            else:
                chunks = ()
            for chunk in chunks:
                started = True
                yield chunk
            # read to the end, even past [DONE]: keeps the connection reusable
            async for data in sse_data(resp.pieces(), self.name):
                for chunk in translate(data):
                    started = True
                    yield chunk
            yield finish()
        except BackendError as exc:
            raise transport_error(self.name, exc, started=started) from None
        except (h1.TransportError, asyncio.TimeoutError, OSError) as exc:
            raise transport_error(self.name, exc, started=started) from None
        finally:
            if resp is not None:  # a body read to its end was released already; otherwise drop the connection
                resp.close()     # (client gone, error: the upstream stops generating)

    async def get_ok(self, url: str, timeout_s: float) -> bool:
        """True when GET ``url`` answers 2xx within ``timeout_s``."""
        try:
            resp = await self.pool().request("GET", url, headers=self._head, body=b"",
                                             deadline=time.monotonic() + timeout_s,
                                             connect_s=min(self.connect_s, timeout_s), read_s=timeout_s)
            await resp.read()
            return 200 <= resp.status < 300
        except (h1.TransportError, asyncio.TimeoutError, OSError):
            return False

    async def aclose(self) -> None:
        """Close the pooled connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            _abandon(pool)


def _abandon(pool: h1.Pool) -> None:
    """Close a pool's idle connections (from any loop: closing a transport of a finished loop is a no-op)."""
    try:
        pool.close()
    except RuntimeError:  # pragma: no cover - the old loop is closed
        pass


async def sse_data(pieces: AsyncIterator[bytes], name: str = "") -> AsyncIterator[bytes]:
    """Yield the ``data`` payload of each Server-Sent Event in the body ``pieces`` (multi-line data joined with
    ``\\n``).

    Comments, ``event:``/``id:``/``retry:`` fields and unknown lines are skipped (the JSON payloads of OpenAI and
    Anthropic carry their own type). A line longer than :data:`MAX_SSE_LINE` raises
    ``BackendUnavailable(code="bad_upstream_response")``. Ends at end of stream; a trailing event without its blank line is still yielded.
    """
    buf = b""
    data: list[bytes] = []
    async for piece in pieces:
        buf = buf + piece if buf else piece
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
        buf = buf[start:]
        if len(buf) > MAX_SSE_LINE:
            raise bad_response(name, "sent an over-long SSE line")
    if buf.startswith(b"data:"):
        data.append(buf[6:] if buf[5:6] == b" " else buf[5:])
    if data:
        yield b"\n".join(data)


def estimate_tokens(text: str) -> int:
    """Rough token count used only when an upstream reports no usage: ~4 characters per token, at least 1."""
    return max(1, (len(text) + 3) // 4) if text else 0
