"""The lean HTTP/1.1 client (fedinf.backends.h1) against real sockets: raw asyncio servers that answer exactly the
bytes a test needs (framings, encodings, stalls, resets), on both the default loop and uvloop (what uvicorn runs)."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fedinf.backends import h1
from fedinf.backends.http import HttpUpstream
from fedinf.errors import BackendRejected, BackendTimeout, BackendUnavailable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class RawServer:
    """A loopback TCP server running ``handler`` per connection; counts connections and keeps request heads."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.connections, self.heads = handler, 0, []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> str:
        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def keep_alive(body: bytes, *, extra: bytes = b"", heads: list[bytes] | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if heads is not None:
                heads.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
                         % (len(body), extra, body))
            await writer.drain()
    return handle


def upstream(**kw: float) -> HttpUpstream:
    return HttpUpstream(name="m@test", base_headers={"authorization": "Bearer k"},
                        connect_s=kw.get("connect_s", 2.0), read_s=kw.get("read_s", 2.0))


async def test_keep_alive_reuse_and_headers_sent() -> None:
    heads: list[bytes] = []
    srv = RawServer(keep_alive(b'{"ok": 1}', heads=heads))
    async with srv as url:
        up = upstream()
        for _ in range(3):
            assert await up.post_json(url + "/v1/x?a=1", b"{}", time.monotonic() + 5, headers={"x-t": "1"}) == {"ok": 1}
        await up.aclose()
    assert srv.connections == 1
    first = heads[0].decode()
    assert first.startswith("POST /v1/x?a=1 HTTP/1.1\r\n")
    assert "authorization: Bearer k\r\n" in first and "x-t: 1\r\n" in first and "content-length: 2\r\n" in first


def test_keep_alive_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> int:
        srv = RawServer(keep_alive(b'{"ok": 2}'))
        async with srv as url:
            up = upstream()
            for _ in range(3):
                assert await up.post_json(url + "/", b"{}", time.monotonic() + 5) == {"ok": 2}
            await up.aclose()
        return srv.connections

    assert uvloop.run(main()) == 1


@pytest.mark.parametrize("framing", ["chunked", "until-close", "gzip"])
async def test_body_framings(framing: str) -> None:
    payload = b'{"answer": "' + b"x" * 5000 + b'"}'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if framing == "chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(0, len(payload), 1000):
                part = payload[i:i + 1000]
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif framing == "until-close":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + payload)
            await writer.drain()
            writer.close()
            return
        else:
            z = gzip.compress(payload)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(z), z))
        await writer.drain()
        await reader.read()  # hold the connection until the client closes it

    async with RawServer(handle) as url:
        up = upstream()
        got = await up.post_json(url + "/", b"{}", time.monotonic() + 5)
        await up.aclose()
    assert got == {"answer": "x" * 5000}


async def test_malformed_response_is_a_bad_upstream_response() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 2OO NOT A STATUS\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handle) as url:
        with pytest.raises(BackendUnavailable) as err:
            await upstream().post_json(url + "/", b"{}", time.monotonic() + 5)
    assert err.value.code == "bad_upstream_response"


async def test_silence_is_a_read_timeout_and_the_deadline_bounds_the_call() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")  # then nothing
        await writer.drain()
        await reader.read()

    async with RawServer(stall) as url:
        t0 = time.monotonic()
        with pytest.raises(BackendTimeout, match=r"read timeout"):
            await upstream(read_s=0.2).post_json(url + "/", b"{}", time.monotonic() + 5)
        assert time.monotonic() - t0 < 2
        with pytest.raises(BackendTimeout, match="deadline"):
            await upstream(read_s=5).post_json(url + "/", b"{}", time.monotonic() + 0.2)


async def test_reset_before_answer_and_refused_connection() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()

    async with RawServer(reset) as url:
        with pytest.raises(BackendUnavailable, match="connection to upstream m@test failed"):
            await upstream().post_json(url + "/", b"{}", time.monotonic() + 5)
    with pytest.raises(BackendUnavailable, match="cannot connect to upstream m@test"):
        await upstream().post_json(url + "/", b"{}", time.monotonic() + 5)  # the server is gone now


async def test_server_closing_an_idle_connection_is_not_reused() -> None:
    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()  # keep-alive implied, but the server closes the idle connection at once

    srv = RawServer(one_shot)
    async with srv as url:
        up = upstream()
        for _ in range(3):
            assert await up.post_json(url + "/", b"{}", time.monotonic() + 5) == {}
            await asyncio.sleep(0.05)
        await up.aclose()
    assert srv.connections == 3


async def test_connection_limit_queues_callers() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    srv = RawServer(slow)
    async with srv as url:
        up = HttpUpstream(name="m", base_headers={}, connect_s=2, read_s=2, max_connections=1)
        got = await asyncio.gather(*(up.post_json(url + "/", b"{}", time.monotonic() + 5) for _ in range(4)))
        await up.aclose()
    assert got == [{}] * 4 and srv.connections == 1


async def test_status_errors_keep_their_mapping() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"error": {"message": "bad model", "code": "model_not_found"}}'
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        await reader.read()

    async with RawServer(handle) as url:
        with pytest.raises(BackendRejected, match="bad model") as err:
            await upstream().post_json(url + "/", b"{}", time.monotonic() + 5)
    assert err.value.details["upstream_code"] == "model_not_found"


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        h1.header_block({"x-a": "1\r\nx-evil: 2"})
    with pytest.raises(ValueError):
        h1.header_block({"x a": "1"})
    assert h1.header_block({"x-a": "1"}) == b"x-a: 1\r\n"


def test_origin_parsing() -> None:
    o, target = h1.Origin.parse("https://api.example.com/v1/chat?x=1")
    assert (o.scheme, o.host, o.port, o.host_header, target) == ("https", "api.example.com", 443, "api.example.com",
                                                                 "/v1/chat?x=1")
    o, target = h1.Origin.parse("http://[::1]:8080")
    assert (o.port, o.host_header, target) == (8080, "[::1]:8080", "/")
    with pytest.raises(ValueError):
        h1.Origin.parse("ftp://x")


def _self_signed(tmp: Any) -> tuple[str, str]:
    """A self-signed certificate for localhost/127.0.0.1 made with the openssl CLI (skips when it is missing)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (needed to make a test certificate)")
    cert, key = str(tmp / "cert.pem"), str(tmp / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


async def test_https_verifies_the_server_certificate(tmp_path: Any, monkeypatch: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(keep_alive(b'{"tls": true}'), "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(BackendUnavailable, match="cannot connect to upstream m@test"):  # not a trusted CA
            await upstream().post_json(f"https://localhost:{port}/", b"{}", time.monotonic() + 5)
        monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust it (what an operator does for a private CA)
        up = upstream()
        assert await up.post_json(f"https://localhost:{port}/", b"{}", time.monotonic() + 5) == {"tls": True}
        await up.aclose()
    finally:
        server.close()
