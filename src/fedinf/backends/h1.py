"""A lean pooled HTTP/1.1 client for the upstream hot path: asyncio protocols with httptools (llhttp) parsing.

Why not aiohttp's client here (it was used until issue 14): on this gateway's hot path it cost ~250 µs of CPU per
upstream call on a 2-core machine, about a quarter of the whole gateway's budget, most of it generic machinery
(request/response objects, multidicts, cookie and tracing hooks, several timers) that a proxy calling a few
configured upstreams never uses. The same call over a bare asyncio protocol with llhttp parsing costs ~120 µs
(``bench/gateway_overhead/NOTES.md``, "Session 3"). The parsing itself is the well-kept library (httptools, the parser
uvicorn uses); this module only holds connections and timers.

Scope (what the HTTP backends need, nothing more): ``http``/``https`` origins, keep-alive connection pools with a
connection limit and an idle expiry, request bodies given as bytes (``content-length``), responses with
``content-length``, chunked or read-until-close bodies, ``gzip``/``deflate`` content encodings, no redirects (a 3xx is
returned to the caller like any other status), no cookies, no proxies (as before: environment proxies were never
used). Every wait is bounded: ``connect_s`` for the TCP/TLS connect, ``read_s`` for any silence while waiting for
bytes, and the caller's absolute ``deadline`` (``time.monotonic()``) for the whole call.

Errors are this module's own (:class:`TransportError` and subclasses); :mod:`fedinf.backends.http` maps them to
fedinf errors. A connection whose exchange did not end cleanly (timeout, cancellation, early close, parse error) is
closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

#: Body bytes buffered from the socket before reading pauses (a slow consumer of a stream applies back-pressure).
HIGH_WATER = 1 << 20


class TransportError(Exception):
    """The exchange with the upstream failed below HTTP (connect, reset, malformed response)."""


class ConnectFailed(TransportError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""

    def __init__(self, message: str, strerror: str | None = None) -> None:
        super().__init__(message)
        self.strerror = strerror or message


class Disconnected(TransportError):
    """The upstream closed or reset the connection before the response was complete."""


class BadResponse(TransportError):
    """The upstream's bytes are not a valid HTTP/1.1 response."""


class Timeout(TransportError, TimeoutError):
    """A bound passed: ``what`` is ``connect``, ``read`` (silence longer than ``read_s``) or ``deadline``."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} timeout")
        self.what = what


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL's requests go: scheme, host, port, and the request target (path + query)."""

    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def parse(cls, url: str) -> tuple["Origin", str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        default = (parts.scheme == "https" and port == 443) or (parts.scheme == "http" and port == 80)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, host if default else f"{host}:{port}"), target


def header_block(headers: Mapping[str, str]) -> bytes:
    """``Name: value\\r\\n`` lines; refuses names or values that would break the framing (CR, LF, NUL)."""
    out = []
    for name, value in headers.items():
        if any(c in name for c in "\r\n\0: ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid HTTP header {name!r}")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one exchange at a time. Parser callbacks fill the current response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop, self.origin = loop, origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.error: TransportError | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._name = b""

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (uvloop's transports are not asyncio.Transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = BadResponse(f"malformed HTTP response ({type(exc).__name__})")
            self.close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and self._until_close():
                self.complete = True  # a body delimited by the end of the connection
            else:
                self.error = Disconnected("the upstream closed the connection"
                                          + (f" ({type(exc).__name__})" if exc else ""))
        self._wake()

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()  # (llhttp forgets it once the message is complete)
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim response (100 Continue): the real one follows
            self._reset()
            return
        self.complete = True

    # -- used by the client
    def _until_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get("transfer-encoding", "")

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def reusable(self) -> bool:
        return (self.complete and not self.closed and self.error is None and self.keep_alive
                and self.transport is not None and not self.transport.is_closing())

    def send(self, head: bytes, body: bytes) -> None:
        self._reset()
        assert self.transport is not None
        if len(body) < 16384:  # one write (one TCP segment) for the usual small request
            self.transport.write(head + body)
        else:  # a large body is not copied
            self.transport.write(head)
            self.transport.write(body)

    def take(self) -> bytes:
        """The body bytes received so far (and resume reading if it was paused)."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def has_data(self) -> bool:
        return bool(self._chunks)

    async def wait(self, deadline: float, read_s: float) -> None:
        """Until the parser made progress, the connection ended, or a bound passed (raises :class:`Timeout`)."""
        if self.error is not None:
            raise self.error
        now = time.monotonic()
        silence_end = now + read_s
        when, what = (deadline, "deadline") if deadline <= silence_end else (silence_end, "read")
        if when <= now:
            raise Timeout(what)
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(when - now, _expire, waiter)
        try:
            await waiter
        except _TimedOut:
            raise Timeout(what) from None
        finally:
            timer.cancel()
            self._waiter = None
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_TimedOut())


class _TimedOut(Exception):
    """Internal: a wait's timer fired (turned into :class:`Timeout` by the waiter)."""


class Response:
    """A response whose head has arrived. ``read()`` the whole body or iterate ``pieces()``; then ``release()``
    (keeps the connection if the exchange ended cleanly) or ``close()``."""

    def __init__(self, pool: "Pool", conn: _Connection, deadline: float, read_s: float) -> None:
        self._pool, self._conn = pool, conn
        self._deadline, self._read_s = deadline, read_s
        self.status = conn.status
        self.headers = conn.headers
        self._done = False
        enc = conn.headers.get("content-encoding", "identity").strip().lower()
        if enc in ("gzip", "x-gzip", "deflate"):
            self._decoder: zlib._Decompress | None = zlib.decompressobj(wbits=47 if "gzip" in enc else 15)
        elif enc in ("identity", ""):
            self._decoder = None
        else:  # never asked for (no accept-encoding is sent); the caller closes the connection
            raise BadResponse(f"unsupported content-encoding {enc!r}")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def read(self) -> bytes:
        """The whole body (decoded), then the connection goes back to the pool."""
        parts = [piece async for piece in self.pieces()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def pieces(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (each ``yield`` is what one or more socket reads brought); releases the
        connection at the end of the body."""
        conn = self._conn
        try:
            while True:
                if conn.has_data():
                    data = conn.take()
                    if self._decoder is not None:
                        data = self._decoder.decompress(data)
                    if data:
                        yield data
                    continue
                if conn.complete:
                    break
                await conn.wait(self._deadline, self._read_s)
            if self._decoder is not None and (tail := self._decoder.flush()):
                yield tail
        except BaseException:
            self.close()
            raise
        self.release()

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._pool.put_back(self._conn)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conn.close()
            self._pool.put_back(self._conn)


class Pool:
    """Keep-alive connections per origin, at most ``limit`` in use at once. Bound to the event loop it is first used
    in (the owner makes a new pool for a new loop)."""

    def __init__(self, *, limit: int = 256, keepalive_s: float = 30.0) -> None:
        self.limit, self.keepalive_s = limit, keepalive_s
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, tuple[Origin, str]] = {}  # URL -> (origin, request target), parsed once
        self._in_use = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(self, method: str, url: str, *, headers: bytes, body: bytes, deadline: float,
                      connect_s: float, read_s: float) -> Response:
        """Send one request (``headers``: a pre-built :func:`header_block`) and return once the response head
        arrived."""
        parsed = self._targets.get(url)
        if parsed is None:
            if len(self._targets) > 1024:
                self._targets.clear()
            parsed = self._targets[url] = Origin.parse(url)
        origin, target = parsed
        conn = await self._acquire(origin, deadline, connect_s)
        head = (f"{method} {target} HTTP/1.1\r\nhost: {origin.host_header}\r\ncontent-length: {len(body)}\r\n"
                .encode("latin-1") + headers + b"\r\n")
        try:
            conn.send(head, body)
            while not conn.headers_done:
                await conn.wait(deadline, read_s)
            return Response(self, conn, deadline, read_s)
        except BaseException:
            conn.close()
            self.put_back(conn)
            raise

    async def _acquire(self, origin: Origin, deadline: float, connect_s: float) -> _Connection:
        if self._closed:
            raise Disconnected("the client is closed")
        while self._in_use >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(_loop_time(deadline)):
                    await waiter
            except TimeoutError:
                raise Timeout("deadline") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._in_use += 1
        try:
            return self._idle_connection(origin) or await self._connect(origin, deadline, connect_s)
        except BaseException:
            self._in_use -= 1
            self._wake_one()
            raise

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable() and now - conn.idle_since < self.keepalive_s:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, deadline: float, connect_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        remaining = deadline - time.monotonic()
        budget, what = (connect_s, "connect") if connect_s < remaining else (remaining, "deadline")
        if budget <= 0:
            raise Timeout("deadline")
        tls = self._tls() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(budget):
                _, conn = await loop.create_connection(lambda: _Connection(loop, origin), origin.host, origin.port,
                                                       ssl=tls, server_hostname=origin.host if tls else None)
        except TimeoutError:
            raise Timeout(what) from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake failed: {exc.reason or exc}", exc.reason) from None
        except OSError as exc:
            raise ConnectFailed(str(exc), exc.strerror) from None
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def put_back(self, conn: _Connection) -> None:
        """Return a connection after its exchange: pooled if reusable, closed otherwise."""
        self._in_use -= 1
        if not self._closed and conn.reusable():
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
        else:
            conn.close()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.pop(0)
            if not w.done():
                w.set_result(None)
                return

    def close(self) -> None:
        """Close every idle connection; connections in use close when their exchange ends."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())
